package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorumha/quorumha/api"
)

// switchoverOptions are the flags of `quorumha switchover`.
type switchoverOptions struct {
	client  *clientOptions
	cluster string
	to      string
	by      string
	dryRun  bool
	grace   time.Duration
	wait    time.Duration
}

func newSwitchoverCmd() *cobra.Command {
	o := &switchoverOptions{}
	cmd := &cobra.Command{
		Use:   "switchover",
		Short: "Hand a live master over to a replica (planned, like masterha_master_switch --master_state=alive)",
		Long: `Ask the controllers to move the master role of a cluster from its live master
to a replica, blocking writes for as short a time as possible.

The leader checks first (master alive, target replicating with both threads
and lag under the limit, no errant transactions on the target, no open
record) and refuses with the reason, changing nothing. Then it journals each
step: ip_online_change stop, read_only on the old master, waits --grace for
open transactions and kills every client session (read_only does not stop
SUPER users), takes a global read lock, waits (at most --timeout) for the
target to apply the old master's final position, promotes the target,
repoints the other replicas, makes the old master a replica of the new one,
ip_online_change start and the report hook. A failure before the promotion
rolls back: the old master takes writes again.

Exit status: 0 on success (or a dry run that passed), 1 when rolled back or
failed, 2 when refused (the answer says why), on usage or API errors and when
--wait ran out.`,
		Example: `  quorumha switchover --cluster app1 --dry-run
  quorumha switchover --cluster app1 --to 10.0.2.20:3306
  quorumha switchover --cluster app1 --timeout 10s --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSwitchover(cmd, o)
		},
	}
	o.client = addClientFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.cluster, "cluster", "", "cluster name (required)")
	f.StringVar(&o.to, "to", "", "replica to promote, host:port as configured (default: chosen by the selection rules)")
	f.BoolVar(&o.dryRun, "dry-run", false, "check the preconditions and name the target only; change nothing")
	// --timeout is the client's request timeout too; a switchover request
	// answers once the record is open, so one value serves both.
	if tf := f.Lookup("timeout"); tf != nil {
		_ = tf.Value.Set("30s") // a valid duration; cannot fail
		tf.DefValue = "30s"
		tf.Usage = "how long the target may take to apply the old master's final position (and timeout of each request)"
	}
	f.DurationVar(&o.grace, "grace", 2*time.Second, "how long open transactions on the old master may finish before being killed")
	f.DurationVar(&o.wait, "wait", 120*time.Second, "follow the switchover until its record is closed, at most this long (0: do not wait)")
	f.StringVar(&o.by, "by", "", "who asks, written into the record (default $USER)")
	_ = cmd.MarkFlagRequired("cluster") // the flag exists; cannot fail
	return cmd
}

// runSwitchover asks for the switchover, then prints the check or follows
// the record.
func runSwitchover(cmd *cobra.Command, o *switchoverOptions) error {
	if o.wait < 0 || o.client.timeout < 0 || o.grace < 0 {
		return fmt.Errorf("--wait, --timeout and --grace must not be negative")
	}
	out := cmd.OutOrStdout()
	c, err := o.client.client()
	if err != nil {
		return err
	}
	req := api.SwitchoverRequest{To: o.to, DryRun: o.dryRun, By: firstSet(o.by, os.Getenv("USER")),
		Timeout: o.client.timeout.String(), Grace: o.grace.String()}
	resp, err := postClusterAction[api.SwitchoverResponse](cmd.Context(), c, out, o.client.json, o.cluster, "switchover", req)
	if err != nil {
		return err
	}
	if o.dryRun || resp.DryRun {
		if o.client.json {
			return nil
		}
		_, err := fmt.Fprintf(out, "dry run of a switchover of %s: nothing was changed\n%s\n", resp.Cluster, oneLine(resp.Message))
		return wrapWrite(err)
	}
	if !o.client.json {
		fmt.Fprintf(out, "switchover of %s started: record %d\n%s\n", resp.Cluster, resp.RecordID, oneLine(resp.Message))
	}
	if o.wait == 0 {
		return nil
	}
	return followToEnd(cmd.Context(), c, out, o.client.json, "switchover", resp.RecordID, o.wait, switchoverPollInterval)
}

// switchoverPollInterval is how often the CLI reads the record: a
// switchover takes about a second.
const switchoverPollInterval = 100 * time.Millisecond
