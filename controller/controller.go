// Package controller is the wired controller process (`quorumha run`):
// raft, the FSM, detection and gossip, the quorum leases, the API, and the
// leader-only work (recovery) that starts when leadership is established
// and stops when it is revoked. cmd/quorumha keeps the flags, config
// loading and printing.
package controller

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/quorumha/quorumha/api"
	"github.com/quorumha/quorumha/config"
	"github.com/quorumha/quorumha/consensus"
	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/lease"
	"github.com/quorumha/quorumha/recovery"
)

// Controller is the wired process: what leader work and shutdown need.
type Controller struct {
	cfg    *config.Config
	log    *slog.Logger
	state  *fsm.FSM
	node   *consensus.Node
	detect *detection
	// topo is the resolved topology (replicated definitions plus this
	// controller's local secrets and settings).
	topo *topoSource
	// discovered holds the leader's latest discovery report per cluster.
	discovered discoveredReports
	// lease renews the recorded masters' quorum leases; witness tells the
	// fence step when one has provably lapsed.
	lease   *lease.Keeper
	witness recovery.LeaseWitness
	// ready closes once node, detect, lease and witness are set: raft may
	// elect this node before construction has finished.
	ready chan struct{}
	// runner is the recovery runner of the current leadership term; nil
	// when this controller does not lead.
	runner atomic.Pointer[recovery.Runner]
	// stepDelay is the test-only pause between failover steps: always 0
	// unless the binary was built with the quorumha_testhooks tag.
	stepDelay time.Duration
	// salvagePause is the test-only pause after a file/position salvage
	// applied onto another replica: always 0 in a production build.
	salvagePause time.Duration
	// promotePause is the test-only pause at the start of a switchover's
	// promote step: always 0 in a production build.
	promotePause time.Duration
	// hookMetrics is registered once per process and shared by every
	// leadership term's runner.
	hookMetrics *recovery.HookMetrics

	// reloadLoad reads the config file again on SIGHUP (nil: no reload);
	// logLevel is the logger's level, which a reload may change.
	reloadLoad func() (*config.Config, error)
	logLevel   *slog.LevelVar
	// applied is cfg with the reloaded live keys: what the next reload
	// compares against. Only the SIGHUP goroutine touches it.
	applied *config.Config
	// hooks are the clusters' hooks after the last reload (nil before
	// any), which each leadership term's runner takes.
	hooks atomic.Pointer[map[string]recovery.ClusterHooks]
}

// New returns the controller of cfg (validated with ValidateForRun),
// logging to logger; Run starts it.
func New(cfg *config.Config, logger *slog.Logger, opts ...Option) *Controller {
	logger = logger.With("node", cfg.Node.ID)
	c := &Controller{cfg: cfg, log: logger, state: fsm.New(logger.With("pkg", "fsm")), ready: make(chan struct{}),
		stepDelay: testStepDelay(logger), salvagePause: testSalvagePause(logger), promotePause: testPromotePause(logger), applied: cfg}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Run wires the packages in dependency order (config → fsm → consensus →
// detector → api) and blocks until ctx is cancelled, then shuts down in
// reverse order. Each step's failure names the step. Run once.
func (c *Controller) Run(ctx context.Context) error {
	cfg, logger := c.cfg, c.log
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	warnInsecure(cfg, logger)
	tlsConf, err := loadTLS(cfg)
	if err != nil {
		return err
	}
	hm, err := recovery.NewHookMetrics(reg)
	if err != nil {
		return err
	}
	c.hookMetrics = hm

	// The HTTP listener is opened first so a port clash fails before raft
	// touches the data directory.
	ln, err := net.Listen("tcp", cfg.Node.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http listener on node.http_addr %s: %w", cfg.Node.HTTPAddr, err)
	}
	defer ln.Close()

	c.node, err = createNode(cfg, tlsConf.raft, c.state, logger, c.onLeader)
	if err != nil {
		return err
	}
	c.topo = newTopoSource(cfg, c.state, logger)
	c.lease, err = createLeaseKeeper(cfg, c.topo, c.state, c.node, reg, logger)
	if err != nil {
		c.shutdown(logger)
		return err
	}
	c.discovered.metric = newDiscoveredMetric(reg)
	c.detect, err = createDetection(ctx, cfg, c.topo, c.state, c.node, c.lease.Grant, reg, logger)
	if err != nil {
		c.shutdown(logger)
		return err
	}
	c.witness, err = newLeaseWitness(cfg, c.lease, c.detect, c.state, c.node)
	if err != nil {
		c.shutdown(logger)
		return err
	}
	close(c.ready)

	deps := api.Deps{Raft: c.node, State: c.state, Clusters: newConfigView(c.topo.current, c.detect.det, c.lease, &c.discovered), Replicas: newReplicaView(cfg, c.topo.current, c.detect.det), Recovery: manualFailover{c}, Switchover: manualFailover{c}, Rejoin: manualFailover{c},
		Client: forwardClient(tlsConf.apiClient), TopologyDiff: c.topologyDiff}
	if c.detect.gossip != nil {
		deps.Members = c.detect.gossip
	}
	srv, err := api.New(api.Config{
		NodeID:      cfg.Node.ID,
		Zone:        cfg.Node.Zone,
		HTTPAddr:    advertisedHTTP(cfg),
		Token:       cfg.API.Token.Reveal(),
		ReadToken:   cfg.API.ReadToken.Reveal(),
		MetricsAuth: cfg.API.MetricsAuth,
		// Safety rule 6: a follower names a master only while it hears from the leader.
		LeaderContactWindow: cfg.API.LeaderContactWindow,
		TLS:                 tlsConf.apiServer,
		Logger:              logger.With("pkg", "api"),
		Registry:            reg,
	}, deps)
	if err != nil {
		c.shutdown(logger)
		return fmt.Errorf("create api server: %w", err)
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	serveErr := make(chan error, 1)
	if c.detect.signKey != nil {
		wg.Go(func() {
			registerSelf(runCtx, cfg, c.state, c.detect.signKey.Public().(ed25519.PublicKey), srv.Handler(), logger.With("pkg", "register"))
		})
	}
	wg.Add(4)
	go func() { // each goroutine here is owned by Run: waited for below
		defer wg.Done()
		serveErr <- srv.Serve(runCtx, ln)
	}()
	go func() {
		defer wg.Done()
		if err := c.detect.det.Run(runCtx); err != nil {
			logger.Error("detector stopped", "err", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := c.lease.Run(runCtx); err != nil {
			logger.Error("lease keeper stopped", "err", err)
		}
	}()
	go func() {
		defer wg.Done()
		c.followTopology(runCtx, logger.With("pkg", "detector"))
	}()
	// Registered before "controller started": a SIGHUP from then on
	// reloads the config instead of killing the process.
	hup, stopHUP := notifySIGHUP()
	defer stopHUP()
	wg.Go(func() { c.watchSIGHUP(runCtx, hup) })
	logger.Info("controller started", "raft_addr", cfg.Node.RaftAddr, "http_addr", cfg.Node.HTTPAddr,
		"gossip_addr", cfg.Node.GossipAddr, "zone", cfg.Node.Zone, "clusters", len(cfg.Clusters), "tls", tlsSummary(tlsConf))

	select {
	case <-ctx.Done():
		err = nil
	case err = <-serveErr:
		// Serve also returns (nil) when ctx ends: both cases may be ready.
		if err != nil {
			err = fmt.Errorf("http server: %w", err)
		}
	}
	logger.Info("shutting down")
	c.shutdown(logger)
	cancel()
	wg.Wait()
	return err
}

// shutdown leaves raft first (transferring leadership when leading), then
// gossip, so the group never waits for a leader that is already gone.
func (c *Controller) shutdown(logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := c.node.Shutdown(ctx); err != nil {
		logger.Warn("raft shutdown", "err", err)
	}
	if c.detect != nil {
		c.detect.close(ctx)
	}
}

// stopTimeout bounds a controller's stop: raft's (leadership transfer
// included) and gossip's. What has not stopped by then is reported.
const stopTimeout = 15 * time.Second

// createNode starts this controller's raft member. onLeader runs the
// leader-only work after raft's barrier and stops when leadership is lost.
// raftTLS, when not nil, is the transport's mutual TLS.
func createNode(cfg *config.Config, raftTLS *tls.Config, state *fsm.FSM, logger *slog.Logger, onLeader func(context.Context)) (*consensus.Node, error) {
	peers, err := cfg.Node.BootstrapPeers()
	if err != nil {
		return nil, fmt.Errorf("node.bootstrap: %w", err)
	}
	var boot []consensus.Peer
	for _, p := range peers {
		boot = append(boot, consensus.Peer{ID: p.ID, RaftAddr: p.Addr})
	}
	timings := consensus.LANTimings()
	if cfg.Node.RaftProfile == "wan" {
		timings = consensus.WANTimings()
	}
	node, err := consensus.New(consensus.Config{
		ID:        cfg.Node.ID,
		RaftAddr:  cfg.Node.RaftAddr,
		DataDir:   cfg.Node.DataDir,
		Bootstrap: boot,
		Timings:   timings,
		TLS:       raftTLS,
		Logger:    logger.With("pkg", "consensus"),
		OnLeader:  onLeader,
	}, state)
	if err != nil {
		return nil, fmt.Errorf("start raft (node.data_dir %s, node.raft_addr %s): %w", cfg.Node.DataDir, cfg.Node.RaftAddr, err)
	}
	return node, nil
}
