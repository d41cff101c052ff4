package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorumha/quorumha/api"
)

// rejoinOptions are the flags of `quorumha rejoin`.
type rejoinOptions struct {
	client   *clientOptions
	cluster  string
	instance string
	by       string
	rewind   bool
	dryRun   bool
	wait     time.Duration
}

func newRejoinCmd() *cobra.Command {
	o := &rejoinOptions{}
	cmd := &cobra.Command{
		Use:   "rejoin",
		Short: "Make a former master, fenced and alone after a failover, a read-only replica of the current master",
		Long: `Ask the controllers to bring a former master back into its cluster as a
read-only replica of the current master.

The leader refuses, changing nothing, unless the instance is configured in
the cluster, is not the recorded master, no record of the cluster is open,
and the cluster has a repl_user. It compares the instance's GTIDs with the
master's: transactions the instance has and the master lacks (written while
semi-sync had fallen back to async, or by a cut-off master before it was
fenced) are errant, and the rejoin is refused with their GTIDs.

With --rewind (MariaDB, binlog_format=ROW, binlog_row_image=FULL, an agent
beside the instance) the errant transactions are saved first to
<node.data_dir>/rewind/<cluster>-<instance>-<record>.binlog on the leader,
reverted with mariadb-binlog --flashback (not binlogged), and the instance's
binlog is reset with gtid_binlog_state and gtid_slave_pos set to the last
position it shares with the master.

Then, journalled step by step in a rejoin record: read_only on, the agent's
fence cleared, CHANGE MASTER to the current master with MASTER_USE_GTID=
slave_pos (MySQL: auto-position), START SLAVE, and a wait until both
threads run.

In file/position mode (replication_mode: file) the proof comes from the
journal of the failover that replaced the instance: its catch_up step
recorded how far the new master had applied the instance's binlog
(old_master_exec=) and its promote step the new master's binlog coordinate
(binlog=). The instance's binlog after old_master_exec may hold only the
server's own bookkeeping (a restart's format description, rotate, stop,
GTID list); any transaction there is errant and the rejoin is refused with
its file and positions. Clean, it replicates from the promote coordinate.
It is refused too when those coordinates are not known with certainty: the
master changed again since, the record is a switchover, the failover
salvaged transactions onto the new master, or a coordinate was not
journalled. --rewind does not apply in this mode.

Exit status: 0 on success (or a dry run that passed), 1 when the record
failed or was refused, 2 when refused at once (the answer says why), on
usage or API errors and when --wait ran out.`,
		Example: `  quorumha rejoin --cluster app1 --instance 10.0.2.10:3306 --dry-run
  quorumha rejoin --cluster app1 --instance 10.0.2.10:3306
  quorumha rejoin --cluster app1 --instance 10.0.2.10:3306 --rewind`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRejoin(cmd, o)
		},
	}
	o.client = addClientFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.cluster, "cluster", "", "cluster name (required)")
	f.StringVar(&o.instance, "instance", "", "the former master to rejoin, host:port as configured (required)")
	f.BoolVar(&o.rewind, "rewind", false, "save and revert the instance's errant transactions (MariaDB, row-based binlogs) instead of refusing")
	f.BoolVar(&o.dryRun, "dry-run", false, "check and list errant transactions only; change nothing")
	f.DurationVar(&o.wait, "wait", 120*time.Second, "follow the rejoin until its record is closed, at most this long (0: do not wait)")
	f.StringVar(&o.by, "by", "", "who asks, written into the record (default $USER)")
	_ = cmd.MarkFlagRequired("cluster")  // the flag exists; cannot fail
	_ = cmd.MarkFlagRequired("instance") // the flag exists; cannot fail
	return cmd
}

func runRejoin(cmd *cobra.Command, o *rejoinOptions) error {
	if o.wait < 0 || o.client.timeout < 0 {
		return fmt.Errorf("--wait and --timeout must not be negative")
	}
	out := cmd.OutOrStdout()
	c, err := o.client.client()
	if err != nil {
		return err
	}
	req := api.RejoinRequest{Instance: o.instance, Rewind: o.rewind, DryRun: o.dryRun, By: firstSet(o.by, os.Getenv("USER"))}
	resp, err := postClusterAction[api.RejoinResponse](cmd.Context(), c, out, o.client.json, o.cluster, "rejoin", req)
	if err != nil {
		return err
	}
	if o.dryRun || resp.DryRun {
		if o.client.json {
			return nil
		}
		msg := fmt.Sprintf("dry run of a rejoin of %s to %s: nothing was changed\n%s\n", resp.Instance, resp.Cluster, oneLine(resp.Message))
		if len(resp.Errant) > 0 {
			msg += "errant GTIDs: " + strings.Join(resp.Errant, ",") + "\n"
		}
		if len(resp.ErrantGTIDs) > 0 {
			msg += "errant transactions in its binlog: " + strings.Join(resp.ErrantGTIDs, ",") + "\n"
		}
		_, err := fmt.Fprint(out, msg)
		return wrapWrite(err)
	}
	if !o.client.json {
		fmt.Fprintf(out, "rejoin of %s to %s started: record %d\n%s\n", resp.Instance, resp.Cluster, resp.RecordID, oneLine(resp.Message))
	}
	if o.wait == 0 {
		return nil
	}
	return followToEnd(cmd.Context(), c, out, o.client.json, "rejoin", resp.RecordID, o.wait, switchoverPollInterval)
}
