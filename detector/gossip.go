package detector

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// DefaultGossipLabel keeps two quorumha groups on one network from mixing,
// and keeps other memberlist users (consul, nomad) out of ours.
const DefaultGossipLabel = "quorumha"

// rejoinInterval is how often a lone member retries its join addresses; the
// first controller up has nobody to join and memberlist never retries itself.
const rejoinInterval = 5 * time.Second

// minRetransmitMult is the floor of the verdict queue's retransmit multiplier.
const minRetransmitMult = 6

// GossipConfig configures a Gossip member.
type GossipConfig struct {
	// NodeName is the controller id; it must be unique in the group.
	NodeName string
	// Zone is advertised in the node meta; Assess counts zones.
	Zone string
	// HTTPAddr is this controller's API address, advertised in the node
	// meta so operators' tools can ask every controller (optional).
	HTTPAddr string
	// BindAddr is host:port for both UDP and TCP; port 0 picks a free port.
	BindAddr string
	// AdvertiseAddr is host:port peers should use, when it differs from BindAddr.
	AdvertiseAddr string
	// Join lists peers' gossip addresses; unreachable ones are retried.
	Join []string
	// SecretKey enables memberlist's AES-GCM encryption (16, 24 or 32 bytes).
	SecretKey []byte
	// Label is the cluster label on every packet; default DefaultGossipLabel.
	Label string
	// Profile selects memberlist timings: "lan" (default), "wan" or "local"
	// (loopback tests).
	Profile string
	// SigningKey signs this controller's verdicts (LoadOrCreateKey); nil
	// sends them unsigned, which only a member without Trust accepts.
	SigningKey ed25519.PrivateKey
	// Trust, when set, admits only verdicts signed by the controller they
	// name with the key it returns: a current raft voter's published key.
	// Everything else (unsigned, forged, from a non-voter) is dropped.
	Trust Trust
	// KnownInstance, when set, admits only verdicts about configured
	// instances, so peers cannot grow the store without bound.
	KnownInstance func(instance string) bool
	// MaxSkew is how far ahead of this clock a verdict may be dated;
	// default DefaultMaxSkew.
	MaxSkew time.Duration
	// Clock stamps when verdicts arrive; default RealClock.
	Clock Clock
	// Logger receives memberlist's log lines; nil discards them.
	Logger *slog.Logger

	// tcpTimeout replaces the profile's TCP timeout (tests: a join to a
	// frozen peer that would hold Shutdown for an hour without abort).
	tcpTimeout time.Duration
}

// Member is one gossip member as the API and the quorum rule see it.
type Member struct {
	// Name is the controller id.
	Name string `json:"name"`
	// Addr is its gossip address, host:port.
	Addr string `json:"addr"`
	// Zone is the zone it advertises.
	Zone string `json:"zone"`
	// State is alive, suspect, dead or left.
	State string `json:"state"`
	// HTTPAddr is the API address it advertises ("" from older controllers).
	HTTPAddr string `json:"http_addr,omitempty"`
}

// Gossip shares verdicts between controllers over hashicorp/memberlist:
// broadcasts for news, push/pull for repair. It never writes Raft state; the
// leader reads Verdicts and decides.
type Gossip struct {
	cfg   GossipConfig
	log   *slog.Logger
	ml    *memberlist.Memberlist
	store *verdictStore
	// live is ml for the broadcast queue, which memberlist may call before
	// Create has returned and ml is set.
	live atomic.Pointer[memberlist.Memberlist]

	cancel context.CancelFunc
	wg     sync.WaitGroup
	// abortNet ends TCP dials and streams in flight, so a join towards a
	// vanished host does not hold Shutdown (see abortableTransport).
	abortNet func()
	// leaving is set by Leave; leaveWait bounds Leave's wait (see Leave).
	leaving   atomic.Bool
	leaveWait time.Duration
	once      sync.Once
}

// NewGossip starts a member and joins cfg.Join in the background, retrying
// while it is alone: a join towards hosts that are gone takes TCPTimeout
// per address, and must not hold up the controller's start. Call Shutdown
// to leave and stop.
func NewGossip(cfg GossipConfig) (*Gossip, error) {
	if cfg.NodeName == "" {
		return nil, fmt.Errorf("%w: gossip node name is empty", ErrBadConfig)
	}
	if cfg.Label == "" {
		cfg.Label = DefaultGossipLabel
	}
	if cfg.Clock == nil {
		cfg.Clock = RealClock{}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "gossip")

	var mc *memberlist.Config
	switch strings.ToLower(cfg.Profile) {
	case "", "lan":
		mc = memberlist.DefaultLANConfig()
	case "wan":
		mc = memberlist.DefaultWANConfig()
	case "local":
		mc = memberlist.DefaultLocalConfig()
	default:
		return nil, fmt.Errorf("%w: gossip profile %q (want lan, wan or local)", ErrBadConfig, cfg.Profile)
	}
	mc.Name = cfg.NodeName
	mc.Label = cfg.Label
	mc.SecretKey = cfg.SecretKey
	host, port, err := splitHostPort(cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("%w: gossip bind address: %w", ErrBadConfig, err)
	}
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertiseAddr, mc.AdvertisePort = "", port
	if cfg.AdvertiseAddr != "" {
		if mc.AdvertiseAddr, mc.AdvertisePort, err = splitHostPort(cfg.AdvertiseAddr); err != nil {
			return nil, fmt.Errorf("%w: gossip advertise address: %w", ErrBadConfig, err)
		}
	}
	mc.Logger = log.New(logBridge{logger}, "", 0)
	if cfg.tcpTimeout > 0 {
		mc.TCPTimeout = cfg.tcpTimeout
	}

	meta, err := json.Marshal(nodeMeta{Zone: cfg.Zone, HTTPAddr: cfg.HTTPAddr})
	if err != nil {
		return nil, fmt.Errorf("encode node meta: %w", err)
	}
	// Ten gossip rounds: a peer that is alive gets the announcement in
	// the first one or two (2 s on a LAN, 5 s with the WAN profile).
	g := &Gossip{cfg: cfg, log: logger, leaveWait: max(2*time.Second, 10*mc.GossipInterval)}
	g.store = &verdictStore{self: cfg.NodeName, meta: meta, clock: cfg.Clock, log: logger,
		key: cfg.SigningKey, trust: cfg.Trust, known: cfg.KnownInstance, maxSkew: cfg.MaxSkew,
		verdicts: map[string]map[string]Verdict{}, changed: make(chan struct{}, 1)}
	// Broadcasts are probabilistic (memberlist may hand the same message to the
	// same peer twice); a verdict is tiny and each one replaces the previous,
	// so retransmit more than memberlist does for its own messages.
	g.store.queue = &memberlist.TransmitLimitedQueue{RetransmitMult: max(mc.RetransmitMult, minRetransmitMult),
		NumNodes: func() int { return g.numMembers() }}
	mc.Delegate = g.store

	trans, err := newAbortableTransport(mc)
	if err != nil {
		return nil, fmt.Errorf("start gossip on %s: %w", cfg.BindAddr, err)
	}
	mc.Transport = trans
	g.abortNet = trans.dialer.Abort
	g.ml, err = memberlist.Create(mc)
	if err != nil {
		_ = trans.Shutdown()
		return nil, fmt.Errorf("start gossip on %s: %w", cfg.BindAddr, err)
	}
	g.live.Store(g.ml)
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	g.wg.Add(1)
	go g.rejoinLoop(ctx)
	return g, nil
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%q: bad port", addr)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

func (g *Gossip) numMembers() int {
	ml := g.live.Load()
	if ml == nil {
		return 1
	}
	return ml.NumMembers()
}

func (g *Gossip) join() {
	if len(g.cfg.Join) == 0 {
		return
	}
	n, err := g.ml.Join(g.cfg.Join)
	if err != nil {
		g.log.Warn("gossip join incomplete", "joined", n, "err", err)
		return
	}
	g.log.Info("gossip joined", "contacted", n)
}

// rejoinLoop joins the join addresses, and retries them while this
// member is alone.
func (g *Gossip) rejoinLoop(ctx context.Context) {
	defer g.wg.Done()
	g.join()
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.cfg.Clock.After(rejoinInterval):
			// A member that left counts itself out of NumMembers; it
			// must not rejoin while it shuts down.
			if g.ml.NumMembers() <= 1 && !g.leaving.Load() {
				g.join()
			}
		}
	}
}

// Addr returns the address this member gossips on (useful with port 0).
func (g *Gossip) Addr() string {
	n := g.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// Publish stores this controller's verdicts and broadcasts those that are
// newer than what was published before. It never blocks on the network.
func (g *Gossip) Publish(vs []Verdict) {
	prev := g.store.ownStates(vs)
	for _, v := range g.store.setOwn(vs) {
		msg, err := g.store.encodeOwn([]Verdict{v})
		if err != nil {
			g.log.Error("encode verdict", "err", err)
			continue
		}
		g.store.queue.QueueBroadcast(&verdictBroadcast{name: v.Controller + "/" + v.Instance, msg: msg})
		if ps, ok := prev[v.Instance]; !ok || ps != v.State {
			g.sendNow(msg)
		}
	}
}

// Verdicts returns the latest verdict of every controller (this one
// included) per instance, sorted by controller. Old verdicts of departed
// controllers stay; Assess recognises them as stale by their age.
func (g *Gossip) Verdicts() map[string][]Verdict { return g.store.all() }

// VerdictsOf returns every controller's latest verdict on one instance.
func (g *Gossip) VerdictsOf(instance string) []Verdict { return g.store.of(instance) }

// Changed delivers a coalesced wake-up whenever a peer's verdict changed.
func (g *Gossip) Changed() <-chan struct{} { return g.store.changed }

// Dropped counts gossip messages or verdicts dropped as malformed or forged.
func (g *Gossip) Dropped() uint64 { return g.store.dropped.Load() }

// Members returns the live (alive or suspect) members, sorted by name.
func (g *Gossip) Members() []Member {
	nodes := g.ml.Members()
	out := make([]Member, 0, len(nodes))
	for _, n := range nodes {
		var meta nodeMeta
		if len(n.Meta) > 0 {
			if err := json.Unmarshal(n.Meta, &meta); err != nil {
				g.log.Debug("undecodable node meta", "node", n.Name, "err", err)
			}
		}
		out = append(out, Member{Name: n.Name, Addr: n.Address(), Zone: meta.Zone, State: nodeState(n.State), HTTPAddr: meta.HTTPAddr})
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func nodeState(s memberlist.NodeStateType) string {
	switch s {
	case memberlist.StateAlive:
		return "alive"
	case memberlist.StateSuspect:
		return "suspect"
	case memberlist.StateDead:
		return "dead"
	case memberlist.StateLeft:
		return "left"
	default:
		return "unknown"
	}
}

// Leave announces a graceful departure, so peers drop this member at once
// instead of after the suspicion timeout. It waits until the announcement
// went out, at most leaveWait (or until ctx ends): memberlist waits for
// it to be sent to enough live peers, and when the peers leave at the
// same moment (a whole group stopped at once) there is nobody left to
// send it to, so an unbounded wait lasted the caller's whole shutdown
// budget (15 s). The rejoin loop stops rejoining from here on.
func (g *Gossip) Leave(ctx context.Context) error {
	g.leaving.Store(true)
	dl, _ := ctx.Deadline()
	if err := g.ml.Leave(leaveTimeout(dl, g.leaveWait, time.Now())); err != nil {
		return fmt.Errorf("gossip leave: %w", err)
	}
	return nil
}

// leaveTimeout is how long Leave waits: limit, or until deadline (zero:
// none) when that comes sooner, and at least a millisecond, since
// memberlist waits without a limit for a timeout of zero or less and the
// caller's deadline may have passed already.
func leaveTimeout(deadline time.Time, limit time.Duration, now time.Time) time.Duration {
	if !deadline.IsZero() {
		limit = min(limit, deadline.Sub(now))
	}
	return max(limit, time.Millisecond)
}

// Shutdown leaves (best effort within ctx), stops the rejoin loop and closes
// the listeners. It is safe to call more than once.
func (g *Gossip) Shutdown(ctx context.Context) error {
	var err error
	g.once.Do(func() {
		if lerr := g.Leave(ctx); lerr != nil {
			g.log.Warn("gossip leave", "err", lerr)
		}
		g.cancel()
		g.abortNet()
		g.wg.Wait()
		if serr := g.ml.Shutdown(); serr != nil {
			err = fmt.Errorf("gossip shutdown: %w", serr)
		}
	})
	return err
}
