package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/quorumha/quorumha/agent"
	"github.com/quorumha/quorumha/config"
)

// newAgentCmd builds `quorumha agent`: the binlog salvage agent that runs on
// each database host (see README "Binlog salvage agent").
func newAgentCmd() *cobra.Command {
	var (
		path  string
		check bool
	)
	cmd := &cobra.Command{
		Use:   "agent --config FILE [--check]",
		Short: "Run the read-only binlog salvage agent on a database host",
		Long: `agent serves the database server's binlog files read-only over HTTP(S), so
the controllers can fetch, during a failover, the transactions only the dead
master had (MHA's save_binary_logs, without SSH). It needs a bearer token or
mutual TLS. SIGINT/SIGTERM stop it gracefully; SIGHUP is logged and
ignored (nothing in its config reloads: restart it to apply a change), so a
reload meant for the controllers never stops a fencing agent.

With an agent.fence section it also holds the master's quorum lease: once a
majority of the controllers has renewed it, its lapse makes the agent fence
its server (read_only, client sessions killed, a global read lock held)
until a controller clears it.

With --check it validates the config, prints it (the token masked) and exits:
0 valid, 2 invalid.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if path == "" {
				return exitError{code: 2, err: errors.New("agent: --config FILE is required")}
			}
			cfg, err := config.LoadAgent(path)
			if err != nil {
				return exitError{code: 2, err: err}
			}
			if check {
				return printAgentConfig(cmd.OutOrStdout(), cfg)
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)).With("pkg", "agent")
			srv, err := agent.New(agentConfig(cfg), logger)
			if err != nil {
				return exitError{code: 2, err: err}
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			done := ignoreSIGHUP(ctx, logger)
			defer func() { cancel(); <-done }()
			if err := srv.Run(ctx); err != nil {
				return exitError{code: 1, err: err}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "agent config file (.yaml, .yml, .toml or .json)")
	cmd.Flags().BoolVar(&check, "check", false, "validate and print the config, then exit")
	return cmd
}

// ignoreSIGHUP logs and otherwise ignores SIGHUP until ctx ends: by
// default it would kill the agent, and with it the fence it enforces. The
// returned channel closes when the watcher has stopped.
func ignoreSIGHUP(ctx context.Context, logger *slog.Logger) <-chan struct{} {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	done := make(chan struct{})
	go func() { // owned by the agent command: it waits on done
		defer close(done)
		defer signal.Stop(sig)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
				logger.Warn("SIGHUP ignored: the agent reloads nothing; restart it to apply a config change")
			}
		}
	}()
	return done
}

// agentConfig converts the loaded config into the agent's plain values.
func agentConfig(c config.Agent) agent.Config {
	cfg := agent.Config{
		Listen: c.Listen, BinlogDir: c.BinlogDir, BinlogIndex: c.BinlogIndex,
		Token: c.Token.Reveal(), TLSCert: c.TLSCert, TLSKey: c.TLSKey, ClientCA: c.ClientCA,
		PIDFile: c.PIDFile, ReachUser: c.ReachUser, InsecureNoAuth: c.InsecureNoAuth,
	}
	if f := c.Fence; f.Enabled() {
		cfg.Fence = &agent.FenceConfig{Socket: f.Socket, Address: f.Address, User: f.User,
			Password: f.Password.Reveal(), StateFile: f.StateFile, CheckInterval: f.CheckInterval}
	}
	return cfg
}

// printAgentConfig prints the validated config as JSON; the token shows
// masked (config.Secret).
func printAgentConfig(w io.Writer, c config.Agent) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(struct {
		Agent config.Agent `json:"agent"`
	}{c}); err != nil {
		return fmt.Errorf("agent: write output: %w", err)
	}
	return nil
}
