package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/quorumha/quorumha/sandbox"
)

// Files `sandbox up` writes next to sandbox.json, removed by `sandbox down`.
const (
	sandboxConfigFile   = "quorumha.yaml"
	sandboxMonitorPass  = "monitor.pass"
	sandboxReplPassFile = "repl.pass"
)

func newSandboxCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run a local MariaDB master and replicas for demos and tests",
		Long: `sandbox starts real mariadbd processes on 127.0.0.1 (a master and its
replicas) in a directory, default ./.sandbox or $QUORUMHA_SANDBOX_DIR. The
servers keep running after the command returns; stop them with
"quorumha sandbox down".`,
	}
	var dir string
	cmd.PersistentFlags().StringVar(&dir, "dir", defaultSandboxDir(), "sandbox directory (env QUORUMHA_SANDBOX_DIR)")
	cmd.AddCommand(newSandboxUpCmd(&dir), newSandboxStatusCmd(&dir), newSandboxDownCmd(&dir))
	return cmd
}

// defaultSandboxDir is $QUORUMHA_SANDBOX_DIR, or ./.sandbox.
func defaultSandboxDir() string {
	if d := os.Getenv("QUORUMHA_SANDBOX_DIR"); d != "" {
		return d
	}
	return ".sandbox"
}

func newSandboxUpCmd(dir *string) *cobra.Command {
	var (
		replicas    int
		semiSync    bool
		filePos     bool
		controllers int
		withProxy   bool
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start a master and replicas (detached) and print how to reach them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if controllers < 0 {
				return fmt.Errorf("--controllers must be >= 0, got %d", controllers)
			}
			if replicas < 0 {
				return fmt.Errorf("--replicas must be >= 0, got %d", replicas)
			}
			if err := sandbox.Available(); err != nil {
				return err
			}
			abs, err := filepath.Abs(*dir)
			if err != nil {
				return fmt.Errorf("sandbox dir: %w", err)
			}
			if err := refuseRunning(abs); err != nil {
				return err
			}
			opts := sandbox.Options{
				Replicas: replicas,
				GTID:     !filePos,
				SemiSync: semiSync,
				BaseDir:  abs,
				Detach:   true,
				Logger:   slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)),
			}
			if replicas == 0 {
				opts.Replicas = -1 // a lone master; 0 would mean the default
			}
			s, err := sandbox.Start(cmd.Context(), opts)
			if err != nil {
				return fmt.Errorf("sandbox up: %w", err)
			}
			var agents []sandboxAgent
			if controllers > 0 {
				if agents, err = startSandboxAgents(s); err != nil {
					return fmt.Errorf("sandbox up: agents: %w (servers are up; \"quorumha sandbox down --dir %s\" removes everything)", err, abs)
				}
			}
			cfg, err := writeSandboxConfig(s, agents)
			if err != nil {
				return err
			}
			printSandbox(cmd.OutOrStdout(), s, opts, cfg)
			if controllers == 0 {
				return nil
			}
			ctrls, err := startSandboxControllers(abs, controllers, clustersSection(cfg))
			if err != nil {
				return fmt.Errorf("sandbox up: controllers: %w (servers are up; \"quorumha sandbox down --dir %s\" removes everything)", err, abs)
			}
			leader, err := waitSandboxLeader(cmd.Context(), ctrls)
			if err != nil {
				return fmt.Errorf("sandbox up: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\ncontrollers (leader %s):\n", leader)
			printSandboxControllers(cmd.Context(), cmd.OutOrStdout(), ctrls)
			if withProxy {
				sandboxHAProxyUp(cmd, abs, ctrls)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\ntry: quorumha leader --addr http://%s\n     quorumha status --addr http://%s\n"+
				"     kill -9 %d    # the master's mariadbd; within seconds a replica is promoted:\n"+
				"     quorumha history --addr http://%s\n"+
				"     open http://%s/ui    # the web view, on any controller\n",
				ctrls[0].HTTPAddr, ctrls[1%len(ctrls)].HTTPAddr, s.Instance(0).PID, ctrls[len(ctrls)-1].HTTPAddr, ctrls[0].HTTPAddr)
			return nil
		},
	}
	cmd.Flags().IntVar(&controllers, "controllers", 3, "number of quorumha controllers to start on loopback (0: servers only)")
	cmd.Flags().BoolVar(&withProxy, "haproxy", true, "start haproxy in front of the servers when it is on PATH (needs --controllers > 0)")
	cmd.Flags().IntVar(&replicas, "replicas", 2, "number of replicas")
	cmd.Flags().BoolVar(&semiSync, "semi-sync", false, "enable semi-synchronous replication")
	cmd.Flags().BoolVar(&filePos, "file-pos", false, "replicate by binlog file and position instead of GTID")
	return cmd
}

// refuseRunning fails when a sandbox in dir still has a live server, and
// clears the state of one whose servers are all gone.
func refuseRunning(dir string) error {
	if _, err := os.Stat(sandbox.StateFile(dir)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	s, err := sandbox.Load(dir)
	if err != nil {
		return fmt.Errorf("%s exists but cannot be read (%w); remove it or use another --dir", sandbox.StateFile(dir), err)
	}
	for i, inst := range s.Instances() {
		if s.Alive(i) {
			return fmt.Errorf("a sandbox is already running in %s (%s on %s, pid %d); run \"quorumha sandbox down --dir %s\" first",
				dir, inst.Name, inst.Addr(), inst.PID, dir)
		}
	}
	if err := s.Stop(); err != nil {
		return fmt.Errorf("clear stale sandbox in %s: %w", dir, err)
	}
	return nil
}

// writeSandboxConfig writes the password files and an example quorumha
// config for the sandbox, returning the config's text.
func writeSandboxConfig(s *sandbox.Sandbox, agents []sandboxAgent) (string, error) {
	monitorPass := filepath.Join(s.Dir(), sandboxMonitorPass)
	replPass := filepath.Join(s.Dir(), sandboxReplPassFile)
	for path, secret := range map[string]string{monitorPass: sandbox.AdminPassword, replPass: sandbox.ReplPassword} {
		if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("sandbox: write %s: %w", path, err)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Example quorumha configuration for the sandbox in %s.\n", s.Dir())
	fmt.Fprintf(&b, "# Add a node: section per controller (id, zone, data_dir, raft_addr, gossip_addr, http_addr, bootstrap).\n")
	fmt.Fprintf(&b, "clusters:\n")
	fmt.Fprintf(&b, "  - name: sandbox\n")
	fmt.Fprintf(&b, "    user: %s\n", sandbox.AdminUser)
	fmt.Fprintf(&b, "    password_file: %s\n", monitorPass)
	fmt.Fprintf(&b, "    repl_user: %s\n", sandbox.ReplUser)
	fmt.Fprintf(&b, "    repl_password_file: %s\n", replPass)
	if len(agents) > 0 {
		fmt.Fprintf(&b, "    agent:\n      token_file: %s\n", filepath.Join(s.Dir(), sandboxAgentToken))
	}
	fmt.Fprintf(&b, "    instances:\n")
	for i, inst := range s.Instances() {
		fmt.Fprintf(&b, "      - address: %s\n", inst.Addr())
		if i > 0 {
			fmt.Fprintf(&b, "        candidate_master: true\n")
		}
		if i < len(agents) {
			fmt.Fprintf(&b, "        agent: %s   # binlog agent beside its datadir\n", agents[i].URL)
		}
	}
	path := filepath.Join(s.Dir(), sandboxConfigFile)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return "", fmt.Errorf("sandbox: write %s: %w", path, err)
	}
	return b.String(), nil
}

// clustersSection returns the clusters: part of the example config, which
// the demo's controllers share.
func clustersSection(cfg string) string {
	if i := strings.Index(cfg, "clusters:"); i >= 0 {
		return cfg[i:]
	}
	return ""
}

// printSandbox prints the instances, the credentials and the example config.
func printSandbox(w io.Writer, s *sandbox.Sandbox, opts sandbox.Options, cfg string) {
	mode := "GTID (slave_pos)"
	if !opts.GTID {
		mode = "binlog file/position"
	}
	if opts.SemiSync {
		mode += ", semi-sync"
	}
	fmt.Fprintf(w, "sandbox running in %s, replication: %s\n\n", s.Dir(), mode)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tADDRESS\tSERVER_ID\tPID\tDATADIR")
	for i, inst := range s.Instances() {
		role := "replica"
		if i == 0 {
			role = "master"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", inst.Name, role, inst.Addr(), inst.ServerID, inst.PID, inst.DataDir)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\ncredentials (local demo only):\n")
	fmt.Fprintf(w, "  admin (controller): %s / %s\n", sandbox.AdminUser, sandbox.AdminPassword)
	fmt.Fprintf(w, "  replication:        %s / %s\n", sandbox.ReplUser, sandbox.ReplPassword)
	fmt.Fprintf(w, "  application:        %s / %s (database %s)\n", sandbox.AppUser, sandbox.AppPassword, sandbox.TestDB)
	m := s.Instance(0)
	fmt.Fprintf(w, "  e.g.: mariadb -h %s -P %d -u %s -p%s %s\n", m.Host, m.Port, sandbox.AppUser, sandbox.AppPassword, sandbox.TestDB)
	fmt.Fprintf(w, "\nexample config (written to %s):\n\n%s\n", filepath.Join(s.Dir(), sandboxConfigFile), cfg)
	fmt.Fprintf(w, "stop with: quorumha sandbox down --dir %s\n", s.Dir())
}

func newSandboxStatusCmd(dir *string) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show whether each sandbox server is alive and how its replication is doing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := loadSandbox(*dir)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tADDRESS\tPID\tSTATE\tROLE\tIO\tSQL\tLAG\tMASTER\tERROR")
			for i, inst := range s.Instances() {
				if !s.Alive(i) {
					fmt.Fprintf(tw, "%s\t%s\t%d\tdead\t-\t-\t-\t-\t-\t\n", inst.Name, inst.Addr(), inst.PID)
					continue
				}
				st, err := s.ReplicaStatus(cmd.Context(), i)
				switch {
				case err != nil:
					fmt.Fprintf(tw, "%s\t%s\t%d\talive\t?\t-\t-\t-\t-\t%v\n", inst.Name, inst.Addr(), inst.PID, err)
				case st == nil:
					fmt.Fprintf(tw, "%s\t%s\t%d\talive\tmaster\t-\t-\t-\t-\t\n", inst.Name, inst.Addr(), inst.PID)
				default:
					lag := "NULL"
					if st.Lag.Valid {
						lag = fmt.Sprintf("%ds", st.Lag.Int64)
					}
					fmt.Fprintf(tw, "%s\t%s\t%d\talive\treplica\t%s\t%s\t%s\t%s:%d\t%s\n", inst.Name, inst.Addr(), inst.PID,
						st.IORunning, st.SQLRunning, lag, st.MasterHost, st.MasterPort, firstNonEmpty(st.LastSQLError, st.LastIOError))
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			ctrls, err := loadSandboxControllers(s.Dir())
			if err != nil {
				return err
			}
			if len(ctrls) > 0 {
				fmt.Fprintln(cmd.OutOrStdout())
				printSandboxControllers(cmd.Context(), cmd.OutOrStdout(), ctrls)
			}
			if err := printSandboxAgents(cmd.OutOrStdout(), s.Dir()); err != nil {
				return err
			}
			return printSandboxHAProxy(cmd.OutOrStdout(), s.Dir())
		},
	}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// loadSandbox loads the sandbox in dir with an error that says what to do.
func loadSandbox(dir string) (*sandbox.Sandbox, error) {
	if _, err := os.Stat(sandbox.StateFile(dir)); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no sandbox in %s (start one with \"quorumha sandbox up --dir %s\")", dir, dir)
	}
	return sandbox.Load(dir)
}

func newSandboxDownCmd(dir *string) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Stop every sandbox server and remove the sandbox directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := loadSandbox(*dir)
			if err != nil {
				return err
			}
			// The proxy first: its checks would only log the controllers going.
			if err := stopSandboxHAProxy(s.Dir()); err != nil {
				return fmt.Errorf("sandbox down: haproxy: %w", err)
			}
			if err := stopSandboxControllers(s.Dir()); err != nil {
				return fmt.Errorf("sandbox down: controllers: %w", err)
			}
			if err := stopSandboxAgents(s.Dir()); err != nil {
				return fmt.Errorf("sandbox down: agents: %w", err)
			}
			if err := s.Stop(); err != nil {
				return fmt.Errorf("sandbox down: %w", err)
			}
			for _, f := range []string{sandboxConfigFile, sandboxMonitorPass, sandboxReplPassFile} {
				if err := os.Remove(filepath.Join(s.Dir(), f)); err != nil && !errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("sandbox down: %w", err)
				}
			}
			// Remove the directory too when only our files were in it.
			if err := os.Remove(s.Dir()); err != nil && !errors.Is(err, os.ErrNotExist) {
				fmt.Fprintf(cmd.ErrOrStderr(), "left %s in place: %v\n", s.Dir(), err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sandbox in %s stopped and removed\n", s.Dir())
			return nil
		},
	}
}
