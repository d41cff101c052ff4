package main

import (
	"context"
	"crypto/tls"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorumha/quorumha/config"
	"github.com/quorumha/quorumha/recovery"
	"github.com/quorumha/quorumha/topology"
)

// Exit statuses of check-repl: 1 problems found (or the check could not
// finish), 2 usage and config errors (as loadConfig and main also use).
const (
	checkReplExitProblems = 1
	checkReplExitUsage    = 2
)

// checkReplOptions are check-repl's flags.
type checkReplOptions struct {
	cluster        string
	asJSON         bool
	connectTimeout time.Duration
	readTimeout    time.Duration
	clusterTimeout time.Duration
}

// newCheckReplCmd builds `quorumha check-repl`: MHA's masterha_check_repl.
// It reads every configured instance, discovers the topology from them and
// lists what would make a failover fail or lose data.
func newCheckReplCmd() *cobra.Command {
	var (
		path string
		opts checkReplOptions
	)
	cmd := &cobra.Command{
		Use:   "check-repl --config FILE [--cluster NAME] [--json]",
		Short: "Check the replication topology of each cluster before trusting a failover to it",
		Long: `check-repl connects to every instance of each cluster (or of --cluster), discovers
the replication topology from them and checks it the way MHA's masterha_check_repl
does: one writable master, every replica read_only and replicating from it with
both threads running, binary logs and log_slave_updates on promotable replicas,
the replication user able to replicate from each of them, equal replication
filters and GTID modes, no errant GTIDs, lag within the limit. An MHA .cnf works
as the config as it is.

Each problem is printed as "ERROR [code] instance: message" or "WARN ...";
--json prints {clusters:[{name, master, instances, problems}], ok}.
Exit status: 0 no errors (warnings allowed), 1 errors found, 2 usage or config error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, path)
			if err != nil {
				return err
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: cfg.Log.SlogLevel()}))
			return runCheckRepl(cmd.Context(), cmd.OutOrStdout(), cfg, opts, logger)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "config file (YAML, TOML, JSON or MHA .cnf)")
	cmd.Flags().StringVar(&opts.cluster, "cluster", "", "check only this cluster")
	cmd.Flags().BoolVar(&opts.asJSON, "json", false, "print the result as JSON on stdout")
	cmd.Flags().DurationVar(&opts.connectTimeout, "connect-timeout", 2*time.Second, "TCP connect and handshake timeout per instance")
	cmd.Flags().DurationVar(&opts.readTimeout, "read-timeout", 5*time.Second, "network read timeout per query")
	cmd.Flags().DurationVar(&opts.clusterTimeout, "timeout", 30*time.Second, "time limit for checking one cluster")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// replReport is check-repl's JSON output.
type replReport struct {
	Clusters []replClusterReport `json:"clusters"`
	// OK is true when no cluster has an error-severity problem.
	OK bool `json:"ok"`
}

// replClusterReport is the result for one cluster.
type replClusterReport struct {
	Name            string               `json:"name"`
	Master          string               `json:"master"`
	ReplicationMode string               `json:"replication_mode"`
	ReplUser        string               `json:"repl_user"`
	Instances       []replInstanceReport `json:"instances"`
	Problems        []recovery.Problem   `json:"problems"`
	Errors          int                  `json:"errors"`
	Warnings        int                  `json:"warnings"`
	OK              bool                 `json:"ok"`
}

// replInstanceReport is what check-repl shows of one instance.
type replInstanceReport struct {
	Address         string `json:"address"`
	Role            string `json:"role"` // master, replica, standalone, unreachable
	Configured      bool   `json:"configured"`
	CandidateMaster bool   `json:"candidate_master,omitempty"`
	NoMaster        bool   `json:"no_master,omitempty"`
	Version         string `json:"version,omitempty"`
	ServerID        uint32 `json:"server_id,omitempty"`
	ReadOnly        bool   `json:"read_only"`
	LogBin          bool   `json:"log_bin"`
	ReplicatesFrom  string `json:"replicates_from,omitempty"`
	IORunning       string `json:"io_running,omitempty"`
	SQLRunning      string `json:"sql_running,omitempty"`
	LagSeconds      *int64 `json:"lag_seconds,omitempty"`
	UsingGTID       string `json:"using_gtid,omitempty"`
	Position        string `json:"position,omitempty"`
	Error           string `json:"error,omitempty"`
}

// runCheckRepl checks the selected clusters, prints the report and returns
// an exitError with status 1 when any error-severity problem was found.
func runCheckRepl(ctx context.Context, w io.Writer, cfg *config.Config, opts checkReplOptions, logger *slog.Logger) error {
	clusters := cfg.Clusters
	if opts.cluster != "" {
		cl, ok := cfg.Cluster(opts.cluster)
		if !ok {
			return exitError{code: checkReplExitUsage, err: fmt.Errorf("check-repl: no cluster %q in %s", opts.cluster, cfg.Source)}
		}
		clusters = []config.Cluster{cl}
	}
	if len(clusters) == 0 {
		return exitError{code: checkReplExitUsage, err: fmt.Errorf("check-repl: %s defines no cluster", cfg.Source)}
	}
	to := topology.Timeouts{Connect: opts.connectTimeout, Read: opts.readTimeout, Write: opts.readTimeout}
	rep := replReport{OK: true, Clusters: []replClusterReport{}}
	for _, cl := range clusters {
		dbTLS, err := clusterTLS(cfg, cl.Name)
		if err != nil {
			return exitError{code: checkReplExitUsage, err: fmt.Errorf("check-repl: %w", err)}
		}
		cr, err := checkReplCluster(ctx, cl, dbTLS, cfg.Recovery, to, opts.clusterTimeout, logger.With("cluster", cl.Name))
		if err == nil {
			cr.addProblems(checkDetectionSettings(ctx, cl, to, cr.replicaAddrs(), cfg.Detector.ReplicaHeartbeat, logger))
		}
		if err != nil {
			// A time limit or an interrupt, not a usage error.
			return exitError{code: checkReplExitProblems, err: fmt.Errorf("check-repl: cluster %s: %w", cl.Name, err)}
		}
		rep.OK = rep.OK && cr.OK
		rep.Clusters = append(rep.Clusters, cr)
	}
	if opts.asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("check-repl: write output: %w", err)
		}
	} else {
		printReplReport(w, rep)
	}
	if !rep.OK {
		n := 0
		for _, c := range rep.Clusters {
			n += c.Errors
		}
		return exitError{code: checkReplExitProblems, err: fmt.Errorf("check-repl: %d error(s) found", n)}
	}
	return nil
}

// checkReplCluster discovers one cluster from its configured instances, reads
// the replication user's grants on the promotable ones and runs the
// preflight. Unreachable instances are problems, not errors; only a
// cancelled ctx is.
func checkReplCluster(ctx context.Context, cl config.Cluster, dbTLS *tls.Config, rec config.Recovery, to topology.Timeouts,
	limit time.Duration, logger *slog.Logger) (replClusterReport, error) {
	if limit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	cred := topology.Credentials{User: cl.User, Password: cl.Password.Reveal(), TLS: dbTLS}
	seeds := make([]string, len(cl.Instances))
	for n, in := range cl.Instances {
		seeds[n] = in.Address
	}
	dial := topology.OnlyConfigured(seeds, func(ctx context.Context, addr string) (*topology.Conn, error) {
		return topology.Open(ctx, addr, cred, to, logger)
	})
	configured := make([]recovery.ConfiguredInstance, len(cl.Instances))
	for n, in := range cl.Instances {
		seeds[n] = in.Address
		configured[n] = recovery.ConfiguredInstance{
			Address: in.Address, CandidateMaster: in.CandidateMaster, NoMaster: in.NoMaster,
			IgnoreFail: in.IgnoreFail, CheckReplDelay: in.ChecksReplDelay(rec),
		}
	}
	topo, err := topology.Discover(ctx, seeds, dial, logger)
	if err != nil {
		return replClusterReport{}, fmt.Errorf("discover: %w", err)
	}
	replUser := recovery.ReplUserOf(cl.ReplUser, topo)
	grants := map[string]recovery.ReplGrant{}
	for _, in := range cl.Instances {
		if in.NoMaster || topo.Lookup(in.Address) == nil {
			continue
		}
		if replUser == "" {
			grants[in.Address] = recovery.ReplGrant{Err: "no repl_user configured and no single Master_User among the replicas"}
			continue
		}
		grants[in.Address] = readGrantOn(ctx, dial, in.Address, replUser)
	}
	problems := recovery.Preflight(recovery.PreflightInput{
		Cluster: cl.Name, Configured: configured, Topo: topo, ReplUser: replUser,
		ReplGrants: grants, MaxLag: cl.LagLimit(rec), ReplicationMode: cl.ReplicationMode,
	})
	cr := replClusterReport{
		Name: cl.Name, ReplicationMode: cl.ReplicationMode, ReplUser: replUser,
		Instances: replInstanceReports(cl, topo), Problems: problems,
	}
	if cr.Problems == nil {
		cr.Problems = []recovery.Problem{}
	}
	if topo.Master != nil {
		cr.Master = topo.Master.Key
	}
	for _, p := range problems {
		if p.Severity == recovery.SeverityError {
			cr.Errors++
		} else {
			cr.Warnings++
		}
	}
	cr.OK = cr.Errors == 0
	return cr, nil
}

// readGrantOn opens its own connection (Discover closed its own) and reads
// the replication user's entries.
func readGrantOn(ctx context.Context, dial topology.DialFunc, addr, user string) recovery.ReplGrant {
	c, err := dial(ctx, addr)
	if err != nil {
		return recovery.ReplGrant{Err: err.Error()}
	}
	defer func() { _ = c.Close() }()
	g, err := readReplGrant(ctx, c.DB(), user)
	if err != nil {
		return recovery.ReplGrant{Err: fmt.Sprintf("%s: %v", addr, err)}
	}
	return g
}

// readReplGrant reads every host entry of user and whether it holds
// REPLICATION SLAVE (topology.ReadReplicationGrants).
func readReplGrant(ctx context.Context, db *sql.DB, user string) (recovery.ReplGrant, error) {
	with, without, err := topology.ReadReplicationGrants(ctx, db, user)
	if err != nil {
		return recovery.ReplGrant{}, err
	}
	return recovery.ReplGrant{WithPrivilege: with, WithoutPrivilege: without}, nil
}

// replInstanceReports lists the configured instances in config order, then any
// other instance discovery found.
func replInstanceReports(cl config.Cluster, topo *topology.Topology) []replInstanceReport {
	out := []replInstanceReport{}
	seen := map[string]bool{}
	unreachable := map[string]error{}
	for _, u := range topo.Unreachable {
		unreachable[u.Addr] = u.Err
	}
	for _, in := range cl.Instances {
		r := replInstanceReport{Address: in.Address, Configured: true, CandidateMaster: in.CandidateMaster, NoMaster: in.NoMaster}
		if i := topo.Lookup(in.Address); i != nil {
			seen[i.Key] = true
			fillReplInstance(&r, i, topo)
		} else {
			r.Role = "unreachable"
			if err := unreachable[in.Address]; err != nil {
				r.Error = err.Error()
			} else {
				r.Error = "not found by discovery"
			}
		}
		out = append(out, r)
	}
	for _, i := range topo.Instances {
		if !seen[i.Key] {
			r := replInstanceReport{Address: i.Key}
			fillReplInstance(&r, i, topo)
			out = append(out, r)
		}
	}
	return out
}

func fillReplInstance(r *replInstanceReport, i *topology.Instance, topo *topology.Topology) {
	r.Version, r.ServerID, r.ReadOnly, r.LogBin = i.Version.String(), i.ServerID, i.ReadOnly, i.LogBin
	switch {
	case i == topo.Master:
		r.Role = "master"
	case i.Replica != nil:
		r.Role = "replica"
	default:
		r.Role = "standalone"
	}
	if pos, err := i.ExecutedPosition(); err == nil {
		r.Position = pos.String()
	}
	rs := i.Replica
	if rs == nil {
		return
	}
	r.ReplicatesFrom = i.MasterKey()
	r.IORunning = rs.IORunning.String()
	r.SQLRunning = "No"
	if rs.SQLRunning {
		r.SQLRunning = "Yes"
	}
	r.LagSeconds = rs.SecondsBehind
	r.UsingGTID = rs.UsingGTID
	if i.Version.Flavor == topology.MySQL {
		r.UsingGTID = "Auto_Position=0"
		if rs.AutoPosition {
			r.UsingGTID = "Auto_Position=1"
		}
	}
}

// printReplReport prints the human form of the report.
func printReplReport(w io.Writer, rep replReport) {
	for n, c := range rep.Clusters {
		if n > 0 {
			fmt.Fprintln(w)
		}
		master := c.Master
		if master == "" {
			master = "none"
		}
		fmt.Fprintf(w, "cluster %s: master %s, %s replication, repl user %q\n", c.Name, master, c.ReplicationMode, c.ReplUser)
		for _, i := range c.Instances {
			fmt.Fprintf(w, "  %-11s %s\n", i.Role, describeReplInstance(i))
		}
		for _, p := range c.Problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
		switch {
		case len(c.Problems) == 0:
			fmt.Fprintln(w, "  OK: no problems")
		default:
			fmt.Fprintf(w, "  %s (%s, %s)\n", replPlural(len(c.Problems), "problem"), replPlural(c.Errors, "error"), replPlural(c.Warnings, "warning"))
		}
	}
}

func describeReplInstance(i replInstanceReport) string {
	parts := []string{i.Address}
	if i.Error != "" {
		parts = append(parts, i.Error)
	} else {
		parts = append(parts, i.Version, fmt.Sprintf("read_only=%s", replOnOff(i.ReadOnly)))
		if i.ReplicatesFrom != "" {
			lag := "lag=NULL"
			if i.LagSeconds != nil {
				lag = fmt.Sprintf("lag=%ds", *i.LagSeconds)
			}
			parts = append(parts, "from "+i.ReplicatesFrom, "io="+i.IORunning, "sql="+i.SQLRunning, lag)
			if i.UsingGTID != "" {
				parts = append(parts, i.UsingGTID)
			}
		}
		if i.Position != "" {
			parts = append(parts, "pos="+i.Position)
		}
	}
	var tags []string
	if i.CandidateMaster {
		tags = append(tags, "candidate_master")
	}
	if i.NoMaster {
		tags = append(tags, "no_master")
	}
	if !i.Configured {
		tags = append(tags, "not configured")
	}
	if len(tags) > 0 {
		parts = append(parts, "["+strings.Join(tags, ", ")+"]")
	}
	return strings.Join(parts, "  ")
}

func replOnOff(b bool) string {
	if b {
		return "ON"
	}
	return "OFF"
}

// replPlural formats a count with its noun, "1 error" or "2 errors".
func replPlural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// clusterTLS is the database TLS of the named cluster (nil: plain TCP).
func clusterTLS(cfg *config.Config, name string) (*tls.Config, error) {
	for i, c := range cfg.Clusters {
		if c.Name == name {
			return cfg.ClusterTLS(i)
		}
	}
	return nil, nil
}
