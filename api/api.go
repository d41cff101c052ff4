// Package api is the HTTP face of a controller: JSON endpoints for operators
// and scripts, health endpoints for proxies, Prometheus metrics, bearer
// token auth (writes, and optionally reads and metrics) and HTTPS. It holds no state of its own: reads come from the
// replicated FSM and the consensus node, writes become raft commands applied
// on the leader (a follower forwards them there).
package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/quorumha/quorumha/consensus"
	"github.com/quorumha/quorumha/detector"
	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/recovery"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultMaxBodyBytes       int64 = 64 << 10
	DefaultForwardHoldTimeout       = 5 * time.Second
)

// ForwardedHeader marks a write forwarded by a follower; its value is the
// forwarding controller's ID. A non-leader never forwards such a request
// again, which keeps forwarding loop-free.
const ForwardedHeader = "X-Quorumha-Forwarded"

// Config holds the plain settings of the API server.
type Config struct {
	// NodeID is this controller's raft server ID.
	NodeID string
	// Zone is this controller's zone, reported by /v1/status.
	Zone string
	// HTTPAddr is the address this controller advertises for its API.
	HTTPAddr string
	// Token is the bearer token required by mutating endpoints; "" disables auth.
	Token string
	// ReadToken, when set, is required (or Token) by every GET under /v1/;
	// it never authorises a write. /healthz and /readyz stay open.
	ReadToken string
	// MetricsAuth makes /metrics require Token or ReadToken.
	MetricsAuth bool
	// TLS, when set, makes Serve speak HTTPS with it (TLS 1.2 at least).
	TLS *tls.Config
	// MaxBodyBytes limits request bodies (default 64 KiB); larger bodies get 413.
	MaxBodyBytes int64
	// ForwardHoldTimeout is how long a follower waits for a leader (and its
	// HTTP address) before answering a write with 503 (default 5s).
	ForwardHoldTimeout time.Duration
	// LeaderContactWindow is how recently a follower must have heard from
	// the leader to name a cluster's master (default 5s; see master.go).
	LeaderContactWindow time.Duration
	// Logger receives request logs; nil discards them.
	Logger *slog.Logger
	// Registry receives the API's metrics; nil creates a new one that also
	// carries the Go and process collectors.
	Registry *prometheus.Registry
}

// Raft is what the API needs from the consensus node.
type Raft interface {
	// Apply commits an encoded fsm command; the FSM's business error, if
	// any, comes back as the error.
	Apply(ctx context.Context, cmd []byte) (any, error)
	// IsLeader reports whether this node is the leader now.
	IsLeader() bool
	// Leader returns the known leader, or empty strings.
	Leader() (id, raftAddr string)
	// Term returns the current raft term.
	Term() uint64
	// Join adds a voter (leader only).
	Join(ctx context.Context, id, raftAddr string) error
	// Remove removes a server (leader only).
	Remove(ctx context.Context, id string) error
	// Status returns a point-in-time view of the node.
	Status() consensus.Status
}

// State is what the API reads from the replicated state machine.
type State interface {
	// Record returns one record by ID.
	Record(id uint64) (fsm.Record, bool)
	// History returns records, newest first, optionally for one cluster.
	History(cluster string, limit int) []fsm.Record
	// Cluster returns what the FSM knows about one cluster.
	Cluster(name string) (fsm.ClusterState, bool)
	// Clusters returns every cluster the FSM knows.
	Clusters() []fsm.ClusterState
	// Node returns a controller's metadata (HTTP address, zone).
	Node(id string) (fsm.NodeMeta, bool)
	// AppliedIndex is the raft index of the last applied command.
	AppliedIndex() uint64
	// RecordCount is the number of records held.
	RecordCount() int
}

// ClusterView is the live topology and assessment of the clusters, as the
// detector sees them. It is optional: without it the API serves what the FSM
// knows.
type ClusterView interface {
	// KnownCluster reports whether name is a configured cluster.
	KnownCluster(name string) bool
	// ClusterNames lists the configured clusters.
	ClusterNames() []string
	// ClusterInfo returns this controller's live view of one cluster.
	ClusterInfo(name string) (ClusterTopology, bool)
	// MasterDead reports whether this controller's assessment says addr,
	// the cluster's recorded master, is dead (confirmed by the quorum
	// rule). It is never a source of the master's name: that comes from the
	// replicated state only.
	MasterDead(name, addr string) bool
}

// MemberLister is what /v1/status needs from gossip: the controllers this
// one can hear, with their zones.
type MemberLister interface {
	Members() []detector.Member
}

// Recovery is what the failover endpoint needs from the recovery executor.
// It runs on the leader; on a follower it returns consensus.ErrNotLeader
// (the write wrapper then forwards the request), and it must return that
// error only when it has changed nothing.
type Recovery interface {
	// ManualFailover plans (DryRun) or starts an operator-requested
	// failover of a cluster whose master is dead. A started failover
	// returns once its record is open (RecordID set); it runs on.
	ManualFailover(ctx context.Context, req recovery.ManualFailoverRequest) (recovery.ManualFailoverResult, error)
}

// Deps holds the collaborators of the API server.
type Deps struct {
	// Raft is the consensus node (required).
	Raft Raft
	// State is the replicated FSM (required).
	State State
	// Clusters is the detector's live view (optional).
	Clusters ClusterView
	// Replicas is the detector's latest observation of the replicas, for
	// the proxy replica endpoint (optional: without it that endpoint
	// answers 503).
	Replicas ReplicaView
	// Members lists the gossip members with their zones (optional).
	Members MemberLister
	// Recovery runs manual failovers (optional): without it the failover
	// endpoint answers 501.
	Recovery Recovery
	// Switchover runs planned switchovers (optional): without it the
	// switchover endpoint answers 501.
	Switchover Switchover
	// Rejoin rejoins former masters as replicas (optional): without it
	// the rejoin endpoint answers 501.
	Rejoin Rejoin
	// Client forwards writes to the leader; nil uses a client with sane timeouts.
	Client *http.Client
	// Now is the clock used for times in commands; nil uses time.Now.
	Now func() time.Time
	// TopologyDiff lists how this controller's config file differs from the
	// replicated topology (optional; GET /v1/topology's local_diff).
	TopologyDiff func() []string
}

// Server serves the HTTP API of one controller.
type Server struct {
	cfg      Config
	raft     Raft
	state    State
	view     ClusterView
	replicas ReplicaView
	members  MemberLister
	rec      Recovery
	sw       Switchover
	rj       Rejoin
	client   *http.Client
	now      func() time.Time
	log      *slog.Logger
	metrics  *metrics
	handler  http.Handler
	topoDiff func() []string
}

// New validates the config, fills defaults and builds the routes.
func New(cfg Config, deps Deps) (*Server, error) {
	if deps.Raft == nil || deps.State == nil {
		return nil, errors.New("api: Deps.Raft and Deps.State are required")
	}
	if cfg.NodeID == "" {
		return nil, errors.New("api: Config.NodeID is required")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.ForwardHoldTimeout <= 0 {
		cfg.ForwardHoldTimeout = DefaultForwardHoldTimeout
	}
	if cfg.LeaderContactWindow <= 0 {
		cfg.LeaderContactWindow = DefaultLeaderContactWindow
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
		if err := cfg.Registry.Register(collectors.NewGoCollector()); err != nil {
			return nil, fmt.Errorf("api: register go collector: %w", err)
		}
		if err := cfg.Registry.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
			return nil, fmt.Errorf("api: register process collector: %w", err)
		}
	}
	s := &Server{
		cfg:      cfg,
		raft:     deps.Raft,
		state:    deps.State,
		view:     deps.Clusters,
		replicas: deps.Replicas,
		members:  deps.Members,
		topoDiff: deps.TopologyDiff,
		rec:      deps.Recovery,
		sw:       deps.Switchover,
		rj:       deps.Rejoin,
		client:   deps.Client,
		now:      deps.Now,
		log:      cfg.Logger,
	}
	if s.client == nil {
		// No proxy: HTTP_PROXY must not see the write token.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil
		s.client = &http.Client{Timeout: 30 * time.Second, Transport: tr}
	}
	if s.now == nil {
		s.now = time.Now
	}
	var clusterNames func() []string
	if s.view != nil {
		clusterNames = s.view.ClusterNames
	}
	m, err := newMetrics(cfg.Registry, s.raft, s.state, clusterNames)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.handler = s.routes()
	return s, nil
}

// Handler returns the routed handler, for tests and for embedding.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	open := func(pattern string, h handlerFunc) { mux.Handle(pattern, s.wrap(pattern, h)) }
	read := func(pattern string, h handlerFunc) { mux.Handle(pattern, s.wrap(pattern, s.guard(accessRead, h))) }
	write := func(pattern string, h writeFunc) { mux.Handle(pattern, s.wrap(pattern, s.write(h))) }

	open("GET /healthz", s.healthz)
	open("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.guardMetrics(s.metrics.handler(s.cfg.Registry)))

	read("GET /v1/leader", s.leader)
	read("GET /v1/status", s.status)
	read("GET /v1/raft/peers", s.peers)
	write("POST /v1/raft/join", s.join)
	write("DELETE /v1/raft/peers/{id}", s.removePeer)
	write("POST /v1/raft/register", s.nodeKey)

	read("GET /v1/history", s.history)
	read("GET /v1/history/{id}", s.record)

	read("GET /v1/clusters", s.clusters)
	read("GET /v1/clusters/{name}", s.cluster)
	read("GET /v1/clusters/{name}/master", s.master)
	// Proxy health checks (proxy.go): HAProxy's httpchk, under the read
	// token when one is set, like every read.
	read("GET /v1/clusters/{name}/primary/{address}", s.primaryHealth)
	read("GET /v1/clusters/{name}/replica/{address}", s.replicaHealth)
	write("POST /v1/clusters/{name}/ack", s.ack)
	write("POST /v1/clusters/{name}/maintenance", s.maintenanceStart)
	write("DELETE /v1/clusters/{name}/maintenance", s.maintenanceEnd)
	write("POST /v1/clusters/{name}/failover", s.failover)
	write("POST /v1/clusters/{name}/switchover", s.switchover)
	write("POST /v1/clusters/{name}/rejoin", s.rejoin)
	read("GET /v1/topology", s.topology)
	write("POST /v1/clusters/{name}/definition", s.clusterDefine)
	write("DELETE /v1/clusters/{name}/definition", s.clusterRemove)
	write("POST /v1/clusters/{name}/instances", s.instanceSet)
	write("DELETE /v1/clusters/{name}/instances/{address}", s.instanceRemove)

	// The web view: static assets, open to all (the data comes from the
	// /v1 reads above, with whatever auth they ask for).
	mux.Handle("GET /ui", s.ui())
	mux.Handle("GET /ui/", s.ui())
	return mux
}

// Serve serves the API on ln (over TLS when Config.TLS is set) until ctx
// is cancelled, then shuts down gracefully, letting requests in flight finish for up to 10 seconds.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Writes may wait ForwardHoldTimeout for a leader, then for the leader.
		WriteTimeout:   s.cfg.ForwardHoldTimeout + 60*time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:    func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if s.cfg.TLS != nil {
		conf := s.cfg.TLS.Clone()
		conf.MinVersion = max(conf.MinVersion, tls.VersionTLS12)
		srv.TLSConfig = conf
		ln = tls.NewListener(ln, conf)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("api: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("api: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("api: serve: %w", err)
	}
	return nil
}
