package recovery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/topology"
)

// The steps that change replication: catch_up, promote and repoint.

// catchUp brings the chosen replica level with the most advanced one before
// it is promoted (safety rule 5). With GTIDs it replicates from it until it
// has its executed position; with file/position replication the coordinates
// of another replica's binlog are unknown, so the missing transactions are
// named and the step ends with a warning.
func (r *failoverRun) catchUp(ctx context.Context) stepResult {
	target := chosenOf(r.rec)
	tc, tin, err := r.read(ctx, target)
	if err != nil {
		return stepFailed(fsm.ResultFailed, "chosen %s unreachable: %v", target, err)
	}
	tpos, err := tin.ExecutedPosition()
	if err != nil {
		return stepFailed(fsm.ResultFailed, "position of %s: %v", target, err)
	}
	best, bestPos := "", topology.Position{}
	for _, a := range r.replicas() {
		if a == target {
			continue
		}
		_, in, err := r.read(ctx, a)
		if err != nil || !in.LogBin || !in.LogSlaveUpdates {
			continue
		}
		p, err := in.ExecutedPosition()
		if err != nil {
			continue
		}
		o, err := topology.ComparePositions(p, tpos)
		if err != nil || o != topology.Ahead {
			continue
		}
		if best != "" {
			if ob, err := topology.ComparePositions(p, bestPos); err != nil || ob != topology.Ahead {
				continue
			}
		}
		best, bestPos = a, p
	}
	if best == "" {
		return stepSkipped("%s is the most advanced (%s)", target, tpos)
	}
	if !r.cc.useGTID() || tpos.Kind == topology.PosFile {
		return stepWarning("file/position replication: %s is at %s but %s has applied up to %s; the transactions between them exist only on %s and could not be recovered onto %s",
			target, tpos, best, bestPos, best, target)
	}
	h, p := hostPort(best)
	opts, note := r.changeMasterOptions(tin, h, p)
	if err := tc.ChangeMaster(ctx, opts); err != nil {
		return stepFailed(fsm.ResultFailed, "point %s at %s: %v", target, best, err)
	}
	if err := tc.StartReplica(ctx, topology.BothThreads); err != nil {
		return stepFailed(fsm.ResultFailed, "start replication %s <- %s: %v", target, best, err)
	}
	wctx, cancel := context.WithTimeout(ctx, r.e.cfg.ApplyTimeout)
	werr := tc.WaitForPosition(wctx, bestPos)
	cancel()
	if err := tc.StopReplica(ctx, topology.BothThreads); err != nil && werr == nil {
		werr = err
	}
	if werr != nil {
		return stepFailed(fsm.ResultFailed, "catch up %s from %s to %s: %v", target, best, bestPos, werr)
	}
	return stepOK("%s caught up from %s to %s%s", target, best, bestPos, note)
}

// changeMasterOptions builds CHANGE MASTER options towards host:port with
// the configured replication account, or the replica's current one.
func (r *failoverRun) changeMasterOptions(in *topology.Instance, host string, port int) (topology.ChangeMasterOptions, string) {
	o := topology.ChangeMasterOptions{Host: host, Port: port, User: r.cc.ReplUser, Password: r.cc.ReplPassword,
		UseGTID: r.cc.useGTID(), MariaDBMode: topology.GTIDSlavePos, ConnectRetry: 1,
		HeartbeatPeriod: r.cc.HeartbeatPeriod.Seconds()}
	note := ""
	if o.User == "" && in != nil && in.Replica != nil {
		o.User = in.Replica.MasterUser
		note = fmt.Sprintf("; repl_user not configured: kept %s's current Master_User %q", in.Key, o.User)
	}
	return o, note
}

// binlogMarker prefixes the new master's binlog coordinate in the promote
// step's detail; repoint reads it back for file/position replicas.
const binlogMarker = "binlog="

// promote makes the journalled choice the master. It is idempotent for that
// target: stopping and resetting replication and turning read_only off are
// no-ops the second time, so a resumed promote re-runs it. It refuses while
// any other reachable instance of the cluster is writable (safety: one
// master), checked right before acting.
func (r *failoverRun) promote(ctx context.Context) stepResult {
	target := chosenOf(r.rec)
	if target == "" {
		return stepFailed(fsm.ResultFailed, "no journalled choice to promote")
	}
	var writable []string
	for _, ci := range r.cc.Instances {
		if strings.EqualFold(ci.Address, target) {
			continue
		}
		if _, in, err := r.read(ctx, ci.Address); err == nil && !in.ReadOnly {
			writable = append(writable, ci.Address)
		}
	}
	if len(writable) > 0 {
		return stepFailed(fsm.ResultFailed, "refused: %s writable and reachable; promoting %s would make two masters", strings.Join(writable, ", "), target)
	}
	c, err := r.conn(ctx, target)
	if err != nil {
		return stepFailed(fsm.ResultAborted, "target %s unreachable: %v", target, err)
	}
	if err := c.StopReplica(ctx, topology.BothThreads); err != nil {
		return stepFailed(fsm.ResultFailed, "stop replication on %s: %v", target, err)
	}
	if err := c.ResetReplicaAll(ctx); err != nil {
		return stepFailed(fsm.ResultFailed, "reset replica all on %s: %v", target, err)
	}
	// A semi-sync replica becomes a semi-sync master before it takes its
	// first write: otherwise writes after the failover would be acknowledged
	// before any replica has them, and the next failure could lose them.
	semi := ""
	if _, before, err := r.read(ctx, target); err == nil && before.SemiSync.ReplicaEnabled && !before.SemiSync.MasterEnabled {
		if err := c.SetSemiSyncMaster(ctx, true); err != nil {
			semi = "; semi-sync master NOT enabled: " + err.Error()
		} else {
			semi = "; semi-sync master enabled"
		}
	}
	if err := c.SetReadOnly(ctx, false); err != nil {
		return stepFailed(fsm.ResultFailed, "read_only off on %s: %v", target, err)
	}
	_, in, err := r.read(ctx, target)
	if err != nil {
		return stepWarning("%s promoted; position unread: %v", target, err)
	}
	d := target + " promoted, read_only=OFF" + semi
	if p, err := in.BinlogPosition(); err == nil {
		d += "; position " + p.String()
	}
	if in.MasterStatus != nil {
		d += "; " + binlogMarker + in.MasterStatus.String()
	}
	return stepOK("%s", d)
}

// promotedCoord reads the new master's binlog coordinate from the journal.
func promotedCoord(rec fsm.Record) (topology.BinlogCoord, bool) {
	for i := len(rec.Steps) - 1; i >= 0; i-- {
		s := rec.Steps[i]
		if s.Name != StepPromote || s.Outcome != fsm.OutcomeOK {
			continue
		}
		_, after, found := strings.Cut(s.Detail, binlogMarker)
		if !found {
			return topology.BinlogCoord{}, false
		}
		c, err := topology.ParseBinlogCoord(strings.Fields(after)[0])
		return c, err == nil
	}
	return topology.BinlogCoord{}, false
}

// repointWait bounds how long a repointed replica may take to show both
// threads running.
const repointWait = 15 * time.Second

// repoint points every other reachable replica at the new master and checks
// that both threads run. A replica that fails is a warning, not a failure:
// the new master is already taking over and cannot be undone (MHA exit 10).
func (r *failoverRun) repoint(ctx context.Context) stepResult {
	target := chosenOf(r.rec)
	h, p := hostPort(target)
	var done, bad []string
	for _, a := range r.replicas() {
		if a == target {
			continue
		}
		if err := r.repointOne(ctx, a, h, p); err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", a, err))
			continue
		}
		done = append(done, a)
	}
	if len(bad) > 0 {
		return stepWarning("replicating from %s: [%s]; failed: %s", target, strings.Join(done, ", "), strings.Join(bad, "; "))
	}
	if len(done) == 0 {
		return stepSkipped("no other replica")
	}
	return stepOK("replicating from %s: %s", target, strings.Join(done, ", "))
}

func (r *failoverRun) repointOne(ctx context.Context, addr, host string, port int) error {
	c, in, err := r.read(ctx, addr)
	if err != nil {
		return err
	}
	opts, _ := r.changeMasterOptions(in, host, port)
	if !opts.UseGTID {
		coord, found := promotedCoord(r.rec)
		if !found {
			return errors.New("file/position replication but the new master's binlog position was not journalled at promote")
		}
		opts.File, opts.Pos, opts.MariaDBMode = coord.File, coord.Pos, ""
	}
	if err := c.ChangeMaster(ctx, opts); err != nil {
		return err
	}
	if err := c.StartReplica(ctx, topology.BothThreads); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, repointWait)
	defer cancel()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		_, in, err := r.read(wctx, addr)
		if err == nil && in.Replica != nil && in.Replica.Running() {
			return nil
		}
		if err == nil && in.Replica != nil && (in.Replica.LastIOErrno != 0 || in.Replica.LastSQLErrno != 0) && !in.Replica.SQLRunning {
			return fmt.Errorf("replication stopped: IO %q SQL %q", in.Replica.LastIOError, in.Replica.LastSQLError)
		}
		select {
		case <-wctx.Done():
			state := "unknown"
			if err == nil && in.Replica != nil {
				state = fmt.Sprintf("IO=%s SQL=%t %s %s", in.Replica.IORunning, in.Replica.SQLRunning, in.Replica.LastIOError, in.Replica.LastSQLError)
			}
			return fmt.Errorf("threads not running after %s: %s", repointWait, state)
		case <-t.C:
		}
	}
}
