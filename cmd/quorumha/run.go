package main

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/quorumha/quorumha/api"
	"github.com/quorumha/quorumha/config"
	"github.com/quorumha/quorumha/consensus"
	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/lease"
	"github.com/quorumha/quorumha/recovery"
	"github.com/quorumha/quorumha/topology"
)

func newRunCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run one controller in the foreground (SIGINT/SIGTERM stop it gracefully)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, path)
			if err != nil {
				return err
			}
			if err := cfg.ValidateForRun(); err != nil {
				return exitError{code: 2, err: err}
			}
			return runController(cmd.Context(), cfg)
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "config file (YAML, TOML, JSON or MHA .cnf)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// loadConfig loads a config file, printing warnings (MHA keys that have no
// meaning here, for instance) to stderr.
func loadConfig(cmd *cobra.Command, path string) (*config.Config, error) {
	opts := config.LoadOptions{}
	if _, err := os.Stat("/etc/masterha_default.cnf"); err == nil {
		opts.MHADefaultFile = "/etc/masterha_default.cnf"
	}
	cfg, warnings, err := config.Load(path, opts)
	for _, w := range warnings {
		fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w.String())
	}
	if err != nil {
		return nil, exitError{code: 2, err: err}
	}
	return cfg, nil
}

// newLogger builds the process logger from the log section.
func newLogger(c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// controller is the wired process: what leader work and shutdown need.
type controller struct {
	cfg    *config.Config
	log    *slog.Logger
	state  *fsm.FSM
	node   *consensus.Node
	detect *detection
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
	// stepDelay is the test-only pause between failover steps.
	stepDelay time.Duration
	// hookMetrics is registered once per process and shared by every
	// leadership term's runner.
	hookMetrics *recovery.HookMetrics
}

// stepDelayEnv names a TEST-ONLY variable: a pause before every failover
// step (a Go duration such as "2s"), so end-to-end tests can kill the leader
// in the middle of a failover. Never set it in production.
const stepDelayEnv = "QUORUMHA_TEST_STEP_DELAY"

// readStepDelay reads stepDelayEnv once at start-up.
func readStepDelay(logger *slog.Logger) time.Duration {
	v := os.Getenv(stepDelayEnv)
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		logger.Warn("ignoring invalid "+stepDelayEnv, "value", v, "err", err)
		return 0
	}
	logger.Warn(stepDelayEnv+" is set: failover steps are delayed (test only)", "delay", d)
	return d
}

// followMastersEvery is how often the detector looks for a master recorded
// by a failover or switchover: a switchover blocks writes for well under a
// second, so clients must be pointed at the new master at once.
const followMastersEvery = 100 * time.Millisecond

// Switchover hands a planned switchover to the leader's runner.
func (m manualFailover) Switchover(ctx context.Context, req recovery.SwitchoverRequest) (recovery.SwitchoverResult, error) {
	r := m.c.runner.Load()
	if r == nil {
		return recovery.SwitchoverResult{}, consensus.ErrNotLeader
	}
	return r.Switchover(ctx, req)
}

// Rejoin hands the rejoin of a former master to the leader's runner.
func (m manualFailover) Rejoin(ctx context.Context, req recovery.RejoinRequest) (recovery.RejoinResult, error) {
	r := m.c.runner.Load()
	if r == nil {
		return recovery.RejoinResult{}, consensus.ErrNotLeader
	}
	return r.Rejoin(ctx, req)
}

// manualFailover is what the API calls for a manual failover: the current
// term's runner, or consensus.ErrNotLeader on a follower (the API then
// forwards the request to the leader).
type manualFailover struct{ c *controller }

// ManualFailover hands the request to the leader's runner.
func (m manualFailover) ManualFailover(ctx context.Context, req recovery.ManualFailoverRequest) (recovery.ManualFailoverResult, error) {
	r := m.c.runner.Load()
	if r == nil {
		return recovery.ManualFailoverResult{}, consensus.ErrNotLeader
	}
	return r.ManualFailover(ctx, req)
}

// runController wires the packages in dependency order (config → fsm →
// consensus → detector → api) and blocks until ctx is cancelled, then shuts
// down in reverse order. Each step's failure names the step.
func runController(ctx context.Context, cfg *config.Config) error {
	logger := newLogger(cfg.Log).With("node", cfg.Node.ID)
	c := &controller{cfg: cfg, log: logger, state: fsm.New(logger.With("pkg", "fsm")), ready: make(chan struct{}),
		stepDelay: readStepDelay(logger)}
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
	c.lease, err = createLeaseKeeper(cfg, c.state, c.node, reg, logger)
	if err != nil {
		_ = c.node.Shutdown(context.Background())
		return err
	}
	c.detect, err = createDetection(ctx, cfg, c.state, c.node, c.lease.Grant, reg, logger)
	if err != nil {
		_ = c.node.Shutdown(context.Background())
		return err
	}
	c.witness, err = newLeaseWitness(cfg, c.lease, c.detect, c.state, c.node)
	if err != nil {
		c.shutdown(logger)
		return err
	}
	close(c.ready)

	deps := api.Deps{Raft: c.node, State: c.state, Clusters: newConfigView(cfg, c.detect.det, c.lease), Replicas: newReplicaView(cfg, c.detect.det), Recovery: manualFailover{c}, Switchover: manualFailover{c}, Rejoin: manualFailover{c},
		Client: forwardClient(tlsConf.apiClient)}
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
	go func() { // each goroutine here is owned by runController: waited for below
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
		c.detect.det.FollowRecordedMasters(runCtx, c.state, followMastersEvery, logger.With("pkg", "detector"))
	}()
	logger.Info("controller started", "raft_addr", cfg.Node.RaftAddr, "http_addr", cfg.Node.HTTPAddr,
		"gossip_addr", cfg.Node.GossipAddr, "zone", cfg.Node.Zone, "clusters", len(cfg.Clusters), "tls", tlsSummary(tlsConf))

	select {
	case <-ctx.Done():
		err = nil
	case err = <-serveErr:
		err = fmt.Errorf("http server: %w", err)
	}
	logger.Info("shutting down")
	c.shutdown(logger)
	cancel()
	wg.Wait()
	return err
}

// shutdown leaves raft first (transferring leadership when leading), then
// gossip, so the group never waits for a leader that is already gone.
func (c *controller) shutdown(logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.node.Shutdown(ctx); err != nil {
		logger.Warn("raft shutdown", "err", err)
	}
	if c.detect != nil {
		c.detect.close(ctx)
	}
}

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

// onLeader is everything only the leader does. First it records its own
// HTTP address in the replicated state, so followers can forward writes to
// it; then it runs the decision loop until leadership is lost.
func (c *controller) onLeader(ctx context.Context) {
	select {
	case <-c.ready:
	case <-ctx.Done():
		return
	}
	logger := c.log.With("pkg", "leader")
	cmd, err := fsm.Encode(fsm.NodeMetaType, fsm.NodeMeta{ID: c.cfg.Node.ID, HTTPAddr: advertisedHTTP(c.cfg), Zone: c.cfg.Node.Zone})
	if err != nil {
		logger.Error("encode node meta", "err", err)
		return
	}
	cmds := [][]byte{cmd}
	if c.detect.signKey != nil {
		// The verdict key first: once a controller's HTTP address is
		// recorded, so is its key (registerSelf has nothing left to do).
		pub := c.detect.signKey.Public().(ed25519.PublicKey)
		if k, ok := c.state.NodeKey(c.cfg.Node.ID); !ok || !k.Equal(pub) {
			kc, err := fsm.Encode(fsm.NodeKeyType, fsm.NodeKey{ID: c.cfg.Node.ID, PublicKey: pub})
			if err != nil {
				logger.Error("encode node key", "err", err)
				return
			}
			cmds = [][]byte{kc, cmd}
		}
	}
	for len(cmds) > 0 {
		_, err := c.node.Apply(ctx, cmds[0])
		if err == nil {
			cmds = cmds[1:]
			continue
		}
		if errors.Is(err, consensus.ErrNotLeader) || ctx.Err() != nil {
			return
		}
		logger.Warn("record leader address", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	logger.Info("leadership established")
	runner := recovery.NewRunner(recovery.RunnerConfig{
		NodeID: c.cfg.Node.ID, AntiFlap: c.cfg.Recovery.AntiFlap, Logger: logger,
		Clusters: recoveryClusters(c.cfg),
		Executor: recovery.ExecutorConfig{ApplyTimeout: c.cfg.Recovery.ApplyTimeout, StepDelay: c.stepDelay, Metrics: c.hookMetrics,
			Agents: agentDialer(c.cfg), ApplyBinlog: recovery.ExecBinlogApplier, SalvageTimeout: c.cfg.Recovery.SalvageTimeout,
			SalvageConnectTimeout: c.cfg.Recovery.SalvageConnectTimeout, DialAgentTCP: recovery.NetDialAgentTCP,
			FenceMode: c.cfg.Recovery.Fence, Lease: c.witness, FenceAgents: fenceAgentDialer(c.cfg),
			RewindDir: filepath.Join(c.cfg.Node.DataDir, "rewind"), Flashback: recovery.ExecFlashbackApplier},
	}, newMasterGuard(c.node, c.state, c.cfg), c.state, c.detect.det, dialInstance(c.cfg, c.log.With("pkg", "topology")),
		recovery.HookRunner{Timeout: hookTimeout, Logger: logger.With("pkg", "hooks"), Secrets: configSecrets(c.cfg)}.Run)
	c.runner.Store(runner)
	defer c.runner.CompareAndSwap(runner, nil)
	runner.Run(ctx)
}

// hookTimeout bounds one hook run: a hung fencing script must not hold a
// failover forever.
const hookTimeout = 60 * time.Second

// recoveryClusters copies what recovery needs from the config.
func recoveryClusters(cfg *config.Config) []recovery.ClusterConfig {
	var out []recovery.ClusterConfig
	for _, c := range cfg.Clusters {
		rc := recovery.ClusterConfig{
			Name: c.Name, User: c.User, Password: c.Password.Reveal(),
			ReplUser: c.ReplUser, ReplPassword: c.ReplPassword.Reveal(), SSHUser: c.SSHUser,
			ReplicationMode: c.ReplicationMode, MaxLag: c.LagLimit(cfg.Recovery),
			Hooks: recovery.ClusterHooks{IPFailover: c.Hooks.IPFailover, OnlineChange: c.Hooks.IPOnlineChange, Shutdown: c.Hooks.Shutdown, Report: c.Hooks.Report, SecondaryCheck: c.Hooks.SecondaryCheck},
			Conf:  c.Source, HeartbeatPeriod: cfg.Detector.ReplicaHeartbeat,
		}
		for _, in := range c.Instances {
			rc.Instances = append(rc.Instances, recovery.ClusterInstance{Address: in.Address, Zone: in.Zone,
				CandidateMaster: in.CandidateMaster, NoMaster: in.NoMaster, CheckReplDelay: in.ChecksReplDelay(cfg.Recovery),
				Agent: in.Agent})
		}
		out = append(out, rc)
	}
	return out
}

// dialInstance connects recovery to an instance. Connects are short (a dead
// master must not hold the failover), reads long enough for server-side waits.
// It logs in only to configured instances, with their cluster's TLS: the
// admin account never goes to an address someone else named.
func dialInstance(cfg *config.Config, logger *slog.Logger) recovery.Dialer {
	to := topology.Timeouts{Connect: max(cfg.Detector.ProbeTimeout, time.Second), Read: 10 * time.Second, Write: 5 * time.Second}
	type dbTLS struct {
		conf *tls.Config
		err  error // validated at start: an error here is a file changed since
	}
	tlsOf := map[string]dbTLS{}
	for i, c := range cfg.Clusters {
		conf, err := cfg.ClusterTLS(i)
		for _, in := range c.Instances {
			tlsOf[strings.ToLower(in.Address)] = dbTLS{conf, err}
		}
	}
	return func(ctx context.Context, addr string, cred topology.Credentials) (recovery.Instance, error) {
		t, ok := tlsOf[strings.ToLower(addr)]
		switch {
		case !ok:
			return nil, fmt.Errorf("%s: %w: recovery does not log in to it", addr, topology.ErrNotConfigured)
		case t.err != nil:
			return nil, fmt.Errorf("%s: database TLS: %w", addr, t.err)
		}
		cred.TLS = t.conf
		c, err := topology.Open(ctx, addr, cred, to, logger)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

// configSecrets lists every secret value of the config, for redaction of
// hook output before it is logged or written into a replicated record.
func configSecrets(cfg *config.Config) []string {
	out := []string{cfg.API.Token.Reveal(), cfg.API.ReadToken.Reveal()}
	for _, c := range cfg.Clusters {
		out = append(out, c.Password.Reveal(), c.ReplPassword.Reveal(), c.Agent.Token.Reveal())
	}
	return out
}
