package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorumha/quorumha/api"
	"github.com/quorumha/quorumha/config"
	"github.com/quorumha/quorumha/consensus"
	"github.com/quorumha/quorumha/fsm"
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

// runController wires the packages in dependency order (config → fsm →
// consensus → api) and blocks until ctx is cancelled, then shuts down in
// reverse order. Each step's failure names the step.
func runController(ctx context.Context, cfg *config.Config) error {
	logger := newLogger(cfg.Log).With("node", cfg.Node.ID)
	state := fsm.New(logger.With("pkg", "fsm"))

	// The HTTP listener is opened first so a port clash fails before raft
	// touches the data directory.
	ln, err := net.Listen("tcp", cfg.Node.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http listener on node.http_addr %s: %w", cfg.Node.HTTPAddr, err)
	}
	defer ln.Close()

	node, err := createNode(ctx, cfg, state, logger)
	if err != nil {
		return err
	}

	srv, err := api.New(api.Config{
		NodeID:   cfg.Node.ID,
		Zone:     cfg.Node.Zone,
		HTTPAddr: cfg.Node.HTTPAddr,
		Token:    cfg.API.Token.Reveal(),
		Logger:   logger.With("pkg", "api"),
	}, api.Deps{Raft: node, State: state, Clusters: newConfigView(cfg)})
	if err != nil {
		_ = node.Shutdown(context.Background())
		return fmt.Errorf("create api server: %w", err)
	}

	var wg sync.WaitGroup
	serveErr := make(chan error, 1)
	wg.Add(1)
	go func() { // owned here: waited for below
		defer wg.Done()
		serveErr <- srv.Serve(ctx, ln)
	}()
	logger.Info("controller started", "raft_addr", cfg.Node.RaftAddr, "http_addr", cfg.Node.HTTPAddr, "zone", cfg.Node.Zone)

	select {
	case <-ctx.Done():
		err = nil
	case err = <-serveErr:
		err = fmt.Errorf("http server: %w", err)
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if serr := node.Shutdown(shutdownCtx); serr != nil {
		logger.Warn("raft shutdown", "err", serr)
	}
	wg.Wait()
	return err
}

// createNode starts this controller's raft member. The leader-only work runs
// in onLeader, after raft's barrier, and stops when leadership is lost.
func createNode(ctx context.Context, cfg *config.Config, state *fsm.FSM, logger *slog.Logger) (*consensus.Node, error) {
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

	// onLeader needs the node, which exists only after New returns; ready
	// closes once it is assigned so an early election cannot see nil.
	var node *consensus.Node
	ready := make(chan struct{})
	onLeader := func(lctx context.Context) {
		select {
		case <-ready:
		case <-lctx.Done():
			return
		}
		leaderWork(lctx, cfg, node, logger.With("pkg", "leader"))
	}
	node, err = consensus.New(consensus.Config{
		ID:        cfg.Node.ID,
		RaftAddr:  cfg.Node.RaftAddr,
		DataDir:   cfg.Node.DataDir,
		Bootstrap: boot,
		Timings:   timings,
		Logger:    logger.With("pkg", "consensus"),
		OnLeader:  onLeader,
	}, state)
	close(ready)
	if err != nil {
		return nil, fmt.Errorf("start raft (node.data_dir %s, node.raft_addr %s): %w", cfg.Node.DataDir, cfg.Node.RaftAddr, err)
	}
	return node, nil
}

// leaderWork is everything only the leader does. First it records its own
// HTTP address in the replicated state, so followers can forward writes to it.
func leaderWork(ctx context.Context, cfg *config.Config, node *consensus.Node, logger *slog.Logger) {
	cmd, err := fsm.Encode(fsm.NodeMetaType, fsm.NodeMeta{ID: cfg.Node.ID, HTTPAddr: cfg.Node.HTTPAddr, Zone: cfg.Node.Zone})
	if err != nil {
		logger.Error("encode node meta", "err", err)
		return
	}
	for {
		_, err := node.Apply(ctx, cmd)
		if err == nil {
			break
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
	<-ctx.Done()
}
