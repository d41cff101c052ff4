package recovery

import (
	"context"
	"fmt"
	"strings"

	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/topology"
)

// reblock runs before a switchover's promote when this run does not hold
// the old master's global read lock: a switchover resumed by a new leader
// (the lock kill_old took lived in the previous leader's session, which
// released it when it lost leadership or died), or a kill_old that could
// not take the lock. read_only alone does not stop every writer: an
// account with READ_ONLY ADMIN (SUPER before MariaDB 10.11, MySQL's
// SUPER without super_read_only) writes through it. Its writes since the
// block went are on the old master and not, or not all, on the target, so
// promoting the target as it is would lose them. reblock therefore blocks
// the old master's writers again (read_only, kill, global read lock) and
// makes the target reach the old master's final position once more.
//
// A target that is writable already ran its promote to the end: it has
// taken writes of its own and there is nothing left to level. An old
// master that cannot be reached cannot be re-blocked nor caught up with:
// the switchover is rolled back, and if that master is really gone the
// detector's failover (fence, salvage) takes over.
func (r *failoverRun) reblock(ctx context.Context, ev SwitchoverEvidence) stepResult {
	old := r.rec.OldMaster
	tc, tin, err := r.read(ctx, ev.Target)
	if err != nil {
		return stepOK("") // promote reports the unreachable target
	}
	if !tin.ReadOnly {
		return stepOK("%s writable already: nothing to level", ev.Target)
	}
	c, err := r.conn(ctx, old)
	if err != nil {
		return stepFailed(fsm.ResultRolledBack, "old master %s unreachable: its write block cannot be renewed nor its final position reached (%v)", old, err)
	}
	if err := c.SetReadOnly(ctx, true); err != nil {
		return stepFailed(fsm.ResultRolledBack, "read_only on %s: %v", old, err)
	}
	blocked := r.killOld(ctx, 0)
	if blocked.outcome == fsm.OutcomeFailed {
		return blocked
	}
	rs := tin.Replica
	if rs == nil || !sameAddr(tin.MasterKey(), old) {
		// No longer its replica (the promote that began reset it): it
		// must hold all the old master has written already.
		return r.holdsFinalPosition(ctx, ev.Target, tin, blocked.detail)
	}
	// Still its replica: a promote that began may have stopped its
	// threads before it was cut short.
	if rs.IORunning == topology.IONo || !rs.SQLRunning {
		if err := r.guarded(ctx, func() error { return tc.StartReplica(ctx, topology.BothThreads) }); err != nil {
			return stepFailed(fsm.ResultRolledBack, "restart replication on %s: %v", ev.Target, err)
		}
	}
	wait := r.waitTarget(ctx, ev)
	if wait.outcome == fsm.OutcomeFailed {
		return wait
	}
	return stepOK("write block on %s renewed (%s); %s", old, blocked.detail, wait.detail)
}

// holdsFinalPosition checks that target, which no longer replicates from
// the old master, holds everything the old master wrote.
func (r *failoverRun) holdsFinalPosition(ctx context.Context, target string, tin *topology.Instance, blocked string) stepResult {
	old := r.rec.OldMaster
	_, oin, err := r.read(ctx, old)
	if err != nil {
		return stepFailed(fsm.ResultRolledBack, "read old master: %v", err)
	}
	want, err := oin.BinlogPosition()
	if err != nil {
		return stepFailed(fsm.ResultRolledBack, "position of %s: %v", old, err)
	}
	have, err := tin.ExecutedPosition()
	if err != nil {
		return stepFailed(fsm.ResultRolledBack, "position of %s: %v", target, err)
	}
	o, err := topology.ComparePositions(have, want)
	if err != nil || (o != topology.Equal && o != topology.Ahead) {
		return stepFailed(fsm.ResultRolledBack, "%s no longer replicates and does not hold %s's final position %s (it has %s)", target, old, want, have)
	}
	return stepOK("write block on %s renewed (%s); %s holds its final position %s", old, blocked, target, want)
}

// journalNote makes a note safe to append to the promote step's detail:
// promotedPosition and promotedCoord read the first positionMarker and
// binlogMarker in it, which must be promote's own.
func journalNote(s string) string {
	s = strings.ReplaceAll(s, ";", ",")
	return strings.ReplaceAll(s, binlogMarker, strings.TrimSuffix(binlogMarker, "=")+" ")
}

// promoteSwitchover is a switchover's promote step: the write block renewed
// when this run does not hold it, then the promote.
func (r *failoverRun) promoteSwitchover(ctx context.Context, ev SwitchoverEvidence) stepResult {
	if r.e.cfg.PromotePause > 0 {
		if err := sleepCtx(ctx, r.e.cfg.PromotePause); err != nil {
			return stepFailed(fsm.ResultFailed, "%v", err) // leadership lost: the caller says so
		}
	}
	if r.lock != nil {
		return r.promote(ctx)
	}
	pre := r.reblock(ctx, ev)
	if pre.outcome == fsm.OutcomeFailed {
		return stepFailed(pre.close, "before the promote: %s", pre.detail)
	}
	if pre.detail != "" {
		r.log.Info("switchover write block renewed before the promote", "detail", pre.detail)
	}
	res := r.promote(ctx)
	if pre.detail != "" && res.outcome != fsm.OutcomeFailed {
		res.detail += fmt.Sprintf("; before it: %s", journalNote(pre.detail))
	}
	return res
}
