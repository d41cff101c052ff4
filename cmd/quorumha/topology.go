package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/quorumha/quorumha/api"
	"github.com/quorumha/quorumha/fsm"
)

// `quorumha cluster` and `quorumha instance` change the clusters and
// instances every controller watches, in the replicated state: a change
// applies on every controller at once, with no config file to edit.

func newClusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Add, change, remove or list the clusters in the replicated state",
		Long: `The clusters every controller watches live in the replicated state. The
config files only seed it: the leader writes a file's clusters the state has
never defined; from then on the state wins (check-config --for-run and status
show where a file differs). A change made here applies on every controller
at once.

Passwords never enter the replicated state: --password-file or --password-env
names where each controller reads the password; with neither, each controller
uses the password of the cluster of the same name in its own config file.
Hooks, database TLS and agent credentials always come from each controller's
own file.

Needs the API token when one is configured; any controller may be asked.`,
	}
	cmd.AddCommand(newClusterAddCmd(), newClusterSetCmd(), newClusterRemoveCmd(), newClusterListCmd())
	return cmd
}

// clusterFlags are the cluster fields as flags; only the flags given are sent.
type clusterFlags struct {
	user, passwordFile, passwordEnv, replUser, replPasswordFile, replPasswordEnv string
	sshUser, binlogDir, mode                                                     string
	maxLag                                                                       time.Duration
	autoAdd                                                                      bool
	by                                                                           string
}

func (c *clusterFlags) add(f *pflag.FlagSet) {
	f.StringVar(&c.user, "user", "", "monitor/admin account")
	f.StringVar(&c.passwordFile, "password-file", "", "file holding the account's password, read by each controller")
	f.StringVar(&c.passwordEnv, "password-env", "", "environment variable holding the password, read by each controller")
	f.StringVar(&c.replUser, "repl-user", "", "replication account")
	f.StringVar(&c.replPasswordFile, "repl-password-file", "", "file holding the replication password")
	f.StringVar(&c.replPasswordEnv, "repl-password-env", "", "environment variable holding the replication password")
	f.StringVar(&c.sshUser, "ssh-user", "", "passed to hooks as --ssh_user")
	f.StringVar(&c.binlogDir, "master-binlog-dir", "", "passed to hooks that need it")
	f.StringVar(&c.mode, "replication-mode", "", "gtid (default) or file")
	f.DurationVar(&c.maxLag, "max-lag", 0, "overrides recovery.max_replica_lag for this cluster")
	f.BoolVar(&c.autoAdd, "auto-add", false, "add discovered replicas of the master as no_master instances")
	f.StringVar(&c.by, "by", "", "who makes the change (recorded)")
}

// patch returns the fields whose flags were given.
func (c *clusterFlags) patch(f *pflag.FlagSet) fsm.ClusterPatch {
	var p fsm.ClusterPatch
	str := func(name string, v string) *string {
		if f.Changed(name) {
			return &v
		}
		return nil
	}
	p.User, p.PasswordFile, p.PasswordEnv = str("user", c.user), str("password-file", c.passwordFile), str("password-env", c.passwordEnv)
	p.ReplUser, p.ReplPasswordFile, p.ReplPasswordEnv = str("repl-user", c.replUser), str("repl-password-file", c.replPasswordFile), str("repl-password-env", c.replPasswordEnv)
	p.SSHUser, p.MasterBinlogDir, p.ReplicationMode = str("ssh-user", c.sshUser), str("master-binlog-dir", c.binlogDir), str("replication-mode", c.mode)
	if f.Changed("max-lag") {
		p.MaxLag = &c.maxLag
	}
	if f.Changed("auto-add") {
		p.AutoAdd = &c.autoAdd
	}
	return p
}

// parseInstanceSpec parses ADDR[,candidate_master|no_master|ignore_fail|zone=Z|agent=URL].
func parseInstanceSpec(s string) (fsm.InstanceDef, error) {
	parts := strings.Split(s, ",")
	in := fsm.InstanceDef{Address: strings.TrimSpace(parts[0])}
	if err := fsm.ValidAddress(in.Address); err != nil {
		return in, fmt.Errorf("--instance %q: %w", s, err)
	}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch k {
		case "candidate_master":
			in.CandidateMaster = true
		case "no_master":
			in.NoMaster = true
		case "ignore_fail":
			in.IgnoreFail = true
		case "zone":
			in.Zone = v
		case "agent":
			in.Agent = v
		default:
			return in, fmt.Errorf("--instance %q: unknown option %q (want candidate_master, no_master, ignore_fail, zone=, agent=)", s, k)
		}
	}
	return in, nil
}

func renderTopologyChange(what string) func(io.Writer, api.TopologyResponse) error {
	return func(w io.Writer, r api.TopologyResponse) error {
		fmt.Fprintf(w, "%s (applied at index %d)\n", what, r.Index)
		return nil
	}
}

func newClusterAddCmd() *cobra.Command {
	var cf clusterFlags
	var instances []string
	cmd := &cobra.Command{
		Use:   "add NAME --user USER --instance HOST:PORT[,OPTIONS]...",
		Short: "Add a cluster to the replicated state",
		Example: `  quorumha cluster add app2 --user monitor --password-file /etc/quorumha/app2.pass \
      --instance 10.0.1.30:3306 --instance 10.0.2.30:3306,candidate_master --instance 10.0.3.30:3306,no_master`,
		Args: cobra.ExactArgs(1),
	}
	o := addClientFlags(cmd)
	cf.add(cmd.Flags())
	cmd.Flags().StringArrayVar(&instances, "instance", nil, "an instance: HOST:PORT[,candidate_master|no_master|ignore_fail|zone=Z|agent=URL] (repeat)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		req := api.ClusterRequest{Op: fsm.OpAdd, By: cf.by, ClusterPatch: cf.patch(cmd.Flags())}
		if len(instances) == 0 {
			return usageError(fmt.Errorf("cluster add %s: at least one --instance is required", args[0]))
		}
		for _, s := range instances {
			in, err := parseInstanceSpec(s)
			if err != nil {
				return usageError(err)
			}
			req.Instances = append(req.Instances, in)
		}
		return send(cmd, o, http.MethodPost, "/v1/clusters/"+url.PathEscape(args[0])+"/definition", req,
			renderTopologyChange(fmt.Sprintf("cluster %s added with %d instances", args[0], len(req.Instances))))
	}
	return cmd
}

func newClusterSetCmd() *cobra.Command {
	var cf clusterFlags
	cmd := &cobra.Command{
		Use:     "set NAME [--FIELD VALUE]...",
		Short:   "Change a cluster's fields in the replicated state (only the flags given)",
		Example: `  quorumha cluster set app1 --auto-add=true`,
		Args:    cobra.ExactArgs(1),
	}
	o := addClientFlags(cmd)
	cf.add(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		req := api.ClusterRequest{Op: fsm.OpSet, By: cf.by, ClusterPatch: cf.patch(cmd.Flags())}
		if req.ClusterPatch == (fsm.ClusterPatch{}) {
			return usageError(fmt.Errorf("cluster set %s: give at least one field to change", args[0]))
		}
		return send(cmd, o, http.MethodPost, "/v1/clusters/"+url.PathEscape(args[0])+"/definition", req,
			renderTopologyChange("cluster "+args[0]+" changed"))
	}
	return cmd
}

func newClusterRemoveCmd() *cobra.Command {
	var by string
	cmd := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a cluster from the replicated state (no controller watches it any more)",
		Long: `Remove a cluster's definition: no controller watches or recovers it any more.
Its history stays. A config file that still lists it does not seed it again.
Refused while a record of the cluster is open.`,
		Args: cobra.ExactArgs(1),
	}
	o := addClientFlags(cmd)
	cmd.Flags().StringVar(&by, "by", "", "who makes the change (recorded)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		path := "/v1/clusters/" + url.PathEscape(args[0]) + "/definition"
		if by != "" {
			path += "?by=" + url.QueryEscape(by)
		}
		return send(cmd, o, http.MethodDelete, path, nil, renderTopologyChange("cluster "+args[0]+" removed"))
	}
	return cmd
}

func newClusterListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the clusters and instances in the replicated state",
		Args:  cobra.NoArgs,
	}
	o := addClientFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return fetch(cmd, o, "/v1/topology", func(w io.Writer, r api.TopologyResponse) error {
			renderTopology(w, r)
			return nil
		})
	}
	return cmd
}

// renderTopology prints the replicated definitions, one instance a line.
func renderTopology(w io.Writer, r api.TopologyResponse) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tINSTANCE\tFLAGS\tADDED BY")
	for _, c := range r.Clusters {
		for _, in := range c.Instances {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, in.Address, instanceFlagText(in), dash(in.AddedBy))
		}
	}
	_ = tw.Flush()
	for _, c := range r.Clusters {
		ref := "this controller's own file"
		switch {
		case c.PasswordFile != "":
			ref = "file " + c.PasswordFile
		case c.PasswordEnv != "":
			ref = "$" + c.PasswordEnv
		}
		fmt.Fprintf(w, "cluster %s: user %s, password from %s, auto_add %v\n", c.Name, c.User, ref, c.AutoAdd)
	}
	if len(r.Removed) > 0 {
		fmt.Fprintf(w, "removed: %s\n", strings.Join(r.Removed, ", "))
	}
}

func instanceFlagText(in fsm.InstanceDef) string {
	return dash(strings.Join(in.Flags(), ","))
}

func newInstanceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "instance",
		Short: "Add, change or remove a cluster's instances in the replicated state",
		Long: `Instances live in the replicated state: every controller probes an added
instance and may promote it (unless no_master), and stops at once for a
removed one. Refused while a failover or switchover of the cluster is open;
the cluster's current master cannot be removed (switch over first).`,
	}
	cmd.AddCommand(newInstanceChangeCmd(fsm.OpAdd), newInstanceChangeCmd(fsm.OpSet), newInstanceRemoveCmd())
	return cmd
}

func newInstanceChangeCmd(op string) *cobra.Command {
	var cluster, zone, agentURL, by string
	var candidate, noMaster, ignoreFail, checkDelay bool
	short := map[string]string{fsm.OpAdd: "Add an instance to a cluster", fsm.OpSet: "Change an instance's fields (only the flags given)"}[op]
	cmd := &cobra.Command{
		Use:     op + " --cluster NAME HOST:PORT",
		Short:   short,
		Example: "  quorumha instance " + op + " --cluster app1 10.0.4.20:3306 --no-master",
		Args:    cobra.ExactArgs(1),
	}
	o := addClientFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&cluster, "cluster", "", "cluster name (required)")
	f.BoolVar(&candidate, "candidate-master", false, "prefer this server as the new master")
	f.BoolVar(&noMaster, "no-master", false, "never promote this server")
	f.BoolVar(&ignoreFail, "ignore-fail", false, "a failover proceeds when this replica is down")
	f.BoolVar(&checkDelay, "check-repl-delay", true, "refuse to promote it while it lags (overrides recovery.check_repl_delay)")
	f.StringVar(&zone, "zone", "", "the server's failure domain")
	f.StringVar(&agentURL, "agent", "", "URL of the host agent beside the server")
	f.StringVar(&by, "by", "", "who makes the change (recorded)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if cluster == "" {
			return usageError(fmt.Errorf("instance %s: --cluster is required", op))
		}
		if err := fsm.ValidAddress(args[0]); err != nil {
			return usageError(fmt.Errorf("instance %s: %w", op, err))
		}
		req := api.InstanceRequest{Op: op, Address: args[0], By: by}
		p := &req.InstancePatch
		if f.Changed("candidate-master") {
			p.CandidateMaster = &candidate
		}
		if f.Changed("no-master") {
			p.NoMaster = &noMaster
		}
		if f.Changed("ignore-fail") {
			p.IgnoreFail = &ignoreFail
		}
		if f.Changed("check-repl-delay") {
			p.CheckReplDelay = &checkDelay
		}
		if f.Changed("zone") {
			p.Zone = &zone
		}
		if f.Changed("agent") {
			p.Agent = &agentURL
		}
		if op == fsm.OpSet && *p == (fsm.InstancePatch{}) {
			return usageError(fmt.Errorf("instance set %s: give at least one field to change", args[0]))
		}
		verb := map[string]string{fsm.OpAdd: "added to", fsm.OpSet: "changed in"}[op]
		return send(cmd, o, http.MethodPost, "/v1/clusters/"+url.PathEscape(cluster)+"/instances", req,
			renderTopologyChange(fmt.Sprintf("instance %s %s cluster %s", args[0], verb, cluster)))
	}
	return cmd
}

func newInstanceRemoveCmd() *cobra.Command {
	var cluster, by string
	cmd := &cobra.Command{
		Use:   "remove --cluster NAME HOST:PORT",
		Short: "Remove an instance from a cluster (not its current master)",
		Args:  cobra.ExactArgs(1),
	}
	o := addClientFlags(cmd)
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster name (required)")
	cmd.Flags().StringVar(&by, "by", "", "who makes the change (recorded)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if cluster == "" {
			return usageError(fmt.Errorf("instance remove: --cluster is required"))
		}
		path := "/v1/clusters/" + url.PathEscape(cluster) + "/instances/" + url.PathEscape(args[0])
		if by != "" {
			path += "?by=" + url.QueryEscape(by)
		}
		return send(cmd, o, http.MethodDelete, path, nil,
			renderTopologyChange(fmt.Sprintf("instance %s removed from cluster %s", args[0], cluster)))
	}
	return cmd
}

// usageError exits with status 2 (a usage error), like the other commands'.
func usageError(err error) error { return exitError{code: 2, err: err} }

// renderTopologyDiff prints how the asked controller's config file differs
// from the replicated topology (the state wins). A controller too old to
// answer /v1/topology prints nothing.
func renderTopologyDiff(ctx context.Context, w io.Writer, c *apiClient) {
	var r api.TopologyResponse
	if err := c.do(ctx, http.MethodGet, "/v1/topology", nil, &r); err != nil {
		return
	}
	printTopologyDiff(w, r.Node, r.LocalDiff)
}

func printTopologyDiff(w io.Writer, node string, diff []string) {
	if len(diff) == 0 {
		return
	}
	fmt.Fprintf(w, "\nTOPOLOGY: %s's config file differs from the replicated state (the state wins):\n", node)
	for _, d := range diff {
		fmt.Fprintln(w, "  "+d)
	}
}

// renderDiscovered prints the replicas of each cluster's master that are
// not instances of the cluster, as the leader (which runs discovery)
// reports them. Nothing when the leader cannot be asked or found none.
func renderDiscovered(ctx context.Context, w io.Writer, c *apiClient, g glance) {
	leader := c
	for _, cv := range g.Group {
		if !cv.Leader || cv.ID == g.Asked.ID {
			continue
		}
		if cv.HTTPAddr == "" {
			return
		}
		base := cv.HTTPAddr
		if !strings.Contains(base, "://") {
			base = schemeOf(c.base) + base
		}
		if schemeOf(c.base) == "https://" && !strings.HasPrefix(base, "https://") {
			return
		}
		leader = &apiClient{base: base, token: c.token, http: c.http}
	}
	ctx, cancel := context.WithTimeout(ctx, peerStatusTimeout)
	defer cancel()
	for _, cl := range g.Clusters {
		var r api.ClusterResponse
		if err := leader.do(ctx, http.MethodGet, "/v1/clusters/"+url.PathEscape(cl.Name), nil, &r); err != nil || r.Cluster.Topology == nil {
			continue
		}
		for _, d := range r.Cluster.Topology.Discovered {
			fmt.Fprintf(w, "DISCOVERED %s: %s replicates from the master but is not an instance (%s, server_id %d): %s\n",
				cl.Name, d.Address, d.Source, d.ServerID, d.Action)
		}
	}
}
