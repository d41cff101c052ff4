// Package lease is the controllers' side of the masters' quorum lease
// (design.md, "The host agent" and safety rule 3). Every controller renews
// the lease of each cluster's recorded master with that host's agent on
// every probe cycle (Keeper), gossips what it granted with its verdicts, and
// the leader's fence step asks Witness whether a majority of the voters'
// grants have provably lapsed, so the agent has fenced its server or the
// host is gone. The package never speaks SQL.
package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumha/quorumha/agent"
	"github.com/quorumha/quorumha/detector"
	"github.com/quorumha/quorumha/fsm"
)

// ErrBadConfig reports an unusable KeeperConfig or WitnessConfig.
var ErrBadConfig = errors.New("lease: bad config")

// Agent is what the keeper needs from a master's host agent;
// *agent.Client implements it.
type Agent interface {
	Lease(ctx context.Context, req agent.LeaseRequest) (agent.LeaseResponse, error)
}

// Dialer builds the client of one cluster's agent (its URL as configured in
// clusters[].instances[].agent); timeout bounds each call. The keeper calls
// it once per agent and keeps the client.
type Dialer func(cluster, url string, timeout time.Duration) (Agent, error)

// State is the replicated state the keeper follows; *fsm.FSM implements it.
type State interface {
	Cluster(name string) (fsm.ClusterState, bool)
	OpenRecord(cluster string) (fsm.Record, bool)
	Record(id uint64) (fsm.Record, bool)
}

// Cluster is one configured cluster: which instances have an agent.
type Cluster struct {
	Name string
	// Agents maps an instance address (host:port) to its agent's URL.
	Agents map[string]string
}

// agentOf returns the URL of addr's agent ("" when none); addresses
// compare case-insensitively, as everywhere else.
func (c Cluster) agentOf(addr string) string {
	for a, u := range c.Agents {
		if strings.EqualFold(a, addr) {
			return u
		}
	}
	return ""
}

// KeeperConfig configures a Keeper.
type KeeperConfig struct {
	// Controller is this controller's node id, sent with every renewal.
	Controller string
	// Clusters are the configured clusters; those without any agent are
	// never renewed.
	Clusters []Cluster
	// AgentOf, when set, names the agent of a cluster's instance instead of
	// Clusters[].Agents: the instances live in the replicated state and
	// change while the keeper runs ("" when none).
	AgentOf func(cluster, addr string) string
	// Interval is the renewal period (detector.probe_interval).
	Interval time.Duration
	// ProbeTimeout bounds an attempt, together with TTL/2.
	ProbeTimeout time.Duration
	// TTL is how long one renewal counts at the agent (recovery.lease_ttl).
	TTL time.Duration
	// Term returns the raft term this controller knows.
	Term func() uint64
	// Voters returns the ids of the raft voters as this controller knows
	// them; a controller that is not one of them renews nothing (the agent
	// would count its renewal toward a majority it has no share of).
	Voters func() ([]string, error)
	// CaughtUp reports whether the replicated state has caught up with the
	// group since this process started; the keeper renews nothing before
	// (nil: from the start). A state restored from an older snapshot may
	// name a master the group has since replaced, and a majority of
	// restarted controllers renewing it would arm its agent, which then
	// fences that server once they catch up and stop. Once true, it is
	// never asked again: later elections must not pause renewals.
	CaughtUp func() bool
	// Clock drives the loops and stamps bounds; default detector.RealClock.
	Clock detector.Clock
	// Logger receives renewal changes; nil discards.
	Logger *slog.Logger
	// Registerer receives the keeper's collectors; nil registers none.
	Registerer prometheus.Registerer
}

// AttemptTimeout is how long one renewal may take: min(probe timeout,
// TTL/2), so a hanging agent costs at most half a lease.
func (c KeeperConfig) AttemptTimeout() time.Duration {
	t := c.TTL / 2
	if c.ProbeTimeout > 0 && c.ProbeTimeout < t {
		t = c.ProbeTimeout
	}
	return t
}

// Keeper renews, on every probe interval, the quorum lease of every
// cluster's recorded master with that master's agent, and remembers for
// each master what it granted (Grant) for gossip and the lease witness.
// It renews regardless of leader contact: an election must not fence a
// healthy master, and the agent's majority rule already stops a minority
// side from holding the lease. It stops renewing a master for good once
// an open failover record names it as the old master (or a failover has
// replaced it), and renews nothing until the replicated state has caught
// up once after start.
type Keeper struct {
	cfg     KeeperConfig
	log     *slog.Logger
	state   State
	dial    Dialer
	started time.Time
	metrics *keeperMetrics

	mu      sync.Mutex
	masters map[masterKey]*masterState
	targets map[string]masterKey // cluster -> the master it renews now (zero: none)
	clients map[string]Agent     // cluster and agent URL -> client
	running bool
	caught  bool // CaughtUp has returned true
}

type masterKey struct{ cluster, instance string }

func keyOf(cluster, instance string) masterKey {
	return masterKey{cluster, strings.ToLower(instance)}
}

// masterState is what this controller knows of its share of one master's
// lease.
type masterState struct {
	instance string
	agent    string
	tracked  time.Time // when this controller began renewing it (age metric)
	// bound is the latest time the agent may have received one of our
	// renewals: the end of the last attempt, and never before this process
	// started (an earlier run of this controller may have renewed until its
	// end, and its bound died with it).
	bound       time.Time
	lastAttempt time.Time
	lastOK      time.Time
	lastErr     string
	last        agent.LeaseResponse // the last successful answer
	stoppedFor  uint64
	notVoter    bool
}

// NewKeeper validates cfg and builds a Keeper; Run starts it.
func NewKeeper(cfg KeeperConfig, state State, dial Dialer) (*Keeper, error) {
	switch {
	case cfg.Controller == "":
		return nil, fmt.Errorf("%w: controller id is empty", ErrBadConfig)
	case state == nil || dial == nil || cfg.Term == nil || cfg.Voters == nil:
		return nil, fmt.Errorf("%w: keeper needs the replicated state, an agent dialer, the term and the voters", ErrBadConfig)
	case cfg.Interval <= 0 || cfg.TTL <= 0:
		return nil, fmt.Errorf("%w: interval %s and ttl %s must be positive", ErrBadConfig, cfg.Interval, cfg.TTL)
	}
	if cfg.Clock == nil {
		cfg.Clock = detector.RealClock{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k := &Keeper{cfg: cfg, log: log.With("component", "lease"), state: state, dial: dial, started: cfg.Clock.Now(),
		masters: map[masterKey]*masterState{}, targets: map[string]masterKey{}, clients: map[string]Agent{}}
	m, err := newKeeperMetrics(cfg.Registerer, k)
	if err != nil {
		return nil, err
	}
	k.metrics = m
	if cfg.TTL < 2*cfg.Interval {
		k.log.Warn("the lease ttl allows no missed renewal: one late renewal lets an enforcing agent fence a healthy master",
			"ttl", cfg.TTL, "renewal_interval", cfg.Interval)
	}
	return k, nil
}

// Run renews until ctx ends, one goroutine per cluster that has an agent
// (so a hanging agent delays no other cluster), then waits for them and
// returns nil. It may be called once.
func (k *Keeper) Run(ctx context.Context) error {
	k.mu.Lock()
	if k.running {
		k.mu.Unlock()
		return fmt.Errorf("%w: Run called twice", ErrBadConfig)
	}
	k.running = true
	k.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range k.cfg.Clusters {
		if len(c.Agents) == 0 {
			continue
		}
		wg.Go(func() { k.loop(ctx, c) })
	}
	wg.Wait()
	return nil
}

// loop runs one cycle per interval, measured from each cycle's start so a
// slow attempt does not stretch the renewal period.
func (k *Keeper) loop(ctx context.Context, c Cluster) {
	for {
		start := k.cfg.Clock.Now()
		k.cycle(ctx, c)
		wait := k.cfg.Interval - k.cfg.Clock.Now().Sub(start)
		select {
		case <-ctx.Done():
			return
		case <-k.cfg.Clock.After(max(wait, 0)):
		}
	}
}

// caughtUp reports whether the keeper may renew: the replicated state has
// caught up with the group once.
func (k *Keeper) caughtUp() bool {
	k.mu.Lock()
	caught := k.caught
	k.mu.Unlock()
	if caught || k.cfg.CaughtUp == nil || k.cfg.CaughtUp() {
		k.mu.Lock()
		k.caught = true
		k.mu.Unlock()
		return true
	}
	return false
}

// cycle renews c's recorded master once, or records why it does not.
func (k *Keeper) cycle(ctx context.Context, c Cluster) {
	if !k.caughtUp() {
		return
	}
	cs, ok := k.state.Cluster(c.Name)
	url := ""
	if ok && cs.Master != "" {
		url = c.agentOf(cs.Master)
		if k.cfg.AgentOf != nil {
			url = k.cfg.AgentOf(c.Name, cs.Master)
		}
	}
	k.leave(cs)
	if url == "" {
		k.setTarget(c.Name, "", "") // no recorded master, or no agent at its host
		return
	}
	key := k.setTarget(c.Name, cs.Master, url)
	if rec, open := k.state.OpenRecord(c.Name); open && rec.Kind == fsm.KindFailover && strings.EqualFold(rec.OldMaster, cs.Master) {
		k.stop(key, rec.ID)
		return
	}
	k.resume(key)
	req, ok := k.request(key, cs.Master)
	if !ok {
		return
	}
	cli, err := k.client(c.Name, url)
	if err != nil {
		k.finish(key, agent.LeaseResponse{}, fmt.Errorf("agent client for %s: %w", url, err), false)
		return
	}
	actx, cancel := context.WithTimeout(ctx, k.cfg.AttemptTimeout())
	defer cancel()
	type answer struct {
		resp agent.LeaseResponse
		err  error
	}
	done := make(chan answer, 1)
	go func() { // owned by this cycle: drained on every path below
		resp, err := cli.Lease(actx, req)
		done <- answer{resp, err}
	}()
	for {
		select {
		case a := <-done:
			if ctx.Err() != nil && a.err != nil {
				// Shutting down: the attempt may still have reached the agent.
				k.finish(key, a.resp, a.err, true)
				return
			}
			k.finish(key, a.resp, a.err, false)
			return
		case <-k.cfg.Clock.After(stopPoll):
			// A failover of this master committed while the attempt hangs
			// (its host vanished): give the attempt up and stop now, so
			// the grant that says "stopped for good" is out within
			// stopPoll of the decision instead of after the attempt's
			// timeout. The attempt's end still becomes the bound if it
			// connected (agent.ErrNotSent otherwise).
			if rec, open := k.state.OpenRecord(c.Name); open && rec.Kind == fsm.KindFailover && strings.EqualFold(rec.OldMaster, cs.Master) {
				cancel()
				a := <-done
				k.finish(key, a.resp, a.err, true)
				k.stop(key, rec.ID)
				return
			}
		}
	}
}

// stopPoll is how often a renewal in flight looks for a committed failover
// of its master.
const stopPoll = 50 * time.Millisecond

// setTarget records the master c now renews (instance "" for none) and
// returns its key, creating its state when it is new.
func (k *Keeper) setTarget(cluster, instance, url string) masterKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	if instance == "" {
		delete(k.targets, cluster)
		return masterKey{}
	}
	key := keyOf(cluster, instance)
	st, ok := k.masters[key]
	if !ok {
		st = &masterState{instance: instance, bound: k.started}
		k.masters[key] = st
	}
	if prev, had := k.targets[cluster]; !had || prev != key {
		// A master renewed anew: what its agent answered before (another
		// era of this server as master) says nothing about it now.
		st.last, st.lastOK, st.lastErr = agent.LeaseResponse{}, time.Time{}, ""
		st.tracked = k.cfg.Clock.Now()
		k.log.Info("renewing the master's lease", "cluster", cluster, "master", instance, "agent", url)
	}
	st.agent = url
	k.targets[cluster] = key
	return key
}

// leave notes that c's previous target is no longer its recorded master:
// this controller renews it no more. When the failover that replaced it
// closed before a cycle saw it open, its grant still names that record.
func (k *Keeper) leave(cs fsm.ClusterState) {
	k.mu.Lock()
	prev, had := k.targets[cs.Name]
	k.mu.Unlock()
	if !had || prev == keyOf(cs.Name, cs.Master) || cs.LastFailoverID == 0 {
		return
	}
	rec, ok := k.state.Record(cs.LastFailoverID)
	if !ok || rec.Kind != fsm.KindFailover || keyOf(cs.Name, rec.OldMaster) != prev {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if st := k.masters[prev]; st.stoppedFor < rec.ID {
		st.stoppedFor = rec.ID
		k.log.Warn("stopped renewing the master's lease: a failover replaced it", "cluster", cs.Name,
			"master", st.instance, "record", rec.ID, "last_renewal_bound", st.bound)
	}
}

// stop marks key's master as no longer renewed because of record id. Its
// bound is final: no attempt is in flight (cycles of a cluster run one at
// a time, and this one runs after the previous attempt ended).
func (k *Keeper) stop(key masterKey, id uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	st := k.masters[key]
	if st.stoppedFor == id {
		return
	}
	st.stoppedFor = id
	k.log.Warn("stopped renewing the master's lease: a failover of it is committed", "cluster", key.cluster,
		"master", st.instance, "record", id, "last_renewal_bound", st.bound, "lapses_by", st.bound.Add(k.cfg.TTL))
}

// resume renews a master again after the record that stopped it closed
// without replacing it (aborted or rolled back).
func (k *Keeper) resume(key masterKey) {
	k.mu.Lock()
	defer k.mu.Unlock()
	st := k.masters[key]
	if st.stoppedFor == 0 {
		return
	}
	k.log.Warn("renewing the master's lease again: the failover record that stopped it is closed and it is still the recorded master",
		"cluster", key.cluster, "master", st.instance, "record", st.stoppedFor)
	st.stoppedFor = 0
}

// request builds the renewal, or says why there is none: this controller
// must be a raft voter, with the voters known.
func (k *Keeper) request(key masterKey, master string) (agent.LeaseRequest, bool) {
	voters, err := k.cfg.Voters()
	isVoter := err == nil && slices.Contains(voters, k.cfg.Controller)
	k.mu.Lock()
	st := k.masters[key]
	changed := st.notVoter != !isVoter
	st.notVoter = !isVoter
	k.mu.Unlock()
	if !isVoter {
		if changed {
			k.log.Warn("not renewing leases: this controller is not a raft voter (or the voters are unknown)",
				"cluster", key.cluster, "master", master, "voters", voters, "err", err)
		}
		return agent.LeaseRequest{}, false
	}
	return agent.LeaseRequest{Controller: k.cfg.Controller, Term: k.cfg.Term(), Voters: len(voters),
		TTLMillis: k.cfg.TTL.Milliseconds(), Master: master}, true
}

// client returns the cached client of an agent, dialing it the first time.
func (k *Keeper) client(cluster, url string) (Agent, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	key := cluster + " " + url // credentials are per cluster
	if c, ok := k.clients[key]; ok {
		return c, nil
	}
	c, err := k.dial(cluster, url, k.cfg.AttemptTimeout())
	if err != nil {
		return nil, err
	}
	k.clients[key] = c
	return c, nil
}

// finish records an attempt's end: its time is the new bound whatever the
// outcome, since a renewal that timed out or failed may still have
// reached the agent; except a renewal that never got a connection
// (agent.ErrNotSent: nothing was written), which cannot have. So the bound
// of a master whose host vanished stays at its last delivered renewal,
// and its lease provably lapses lease_ttl + lease_drift after that, not
// after the last attempt before the failover was committed.
func (k *Keeper) finish(key masterKey, resp agent.LeaseResponse, err error, quiet bool) {
	now := k.cfg.Clock.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	st := k.masters[key]
	if now.After(st.bound) && !errors.Is(err, agent.ErrNotSent) {
		st.bound = now
	}
	st.lastAttempt = now
	if quiet {
		return
	}
	if err != nil {
		if st.lastErr == "" {
			k.log.Warn("lease renewal failed", "cluster", key.cluster, "master", st.instance, "agent", st.agent, "err", err)
		}
		st.lastErr = err.Error()
		k.metrics.renewal(key.cluster, st.instance, "error")
		return
	}
	if st.lastErr != "" || st.last.State != resp.State {
		k.log.Info("lease renewed", "cluster", key.cluster, "master", st.instance, "state", resp.State,
			"enforced", resp.Enforced, "held", resp.Held, "holders", resp.Holders)
	}
	st.lastErr, st.lastOK, st.last = "", now, resp
	k.metrics.renewal(key.cluster, st.instance, "ok")
}

// armed reports whether an agent's answer says a lapse would fence: a
// majority has held the lease since the agent was last cleared.
func armed(r agent.LeaseResponse) bool {
	switch r.State {
	case agent.FenceHeld, agent.FenceFencing, agent.FenceFenced:
		return r.Enforced
	default:
		return false
	}
}

// Grant returns this controller's grant of instance's lease in cluster,
// for its gossiped verdict; nil when it has never renewed it.
func (k *Keeper) Grant(cluster, instance string) *detector.LeaseGrant {
	now := k.cfg.Clock.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	st, ok := k.masters[keyOf(cluster, instance)]
	if !ok {
		return nil
	}
	return &detector.LeaseGrant{Bound: st.bound, BoundAge: max(now.Sub(st.bound), 0), Enforced: st.last.Enforced,
		Armed: armed(st.last), StoppedFor: st.stoppedFor}
}
