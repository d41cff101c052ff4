package recovery

import (
	"context"
	"fmt"
	"strings"

	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/topology"
)

// closeUnpromoted closes a failover record that failed or was aborted.
// Before its promote began nothing changed roles, but stop_io stopped the
// replicas' IO threads: left so, they would not follow the master should it
// come back, and the replica check would count them as having lost it.
// Their IO threads are started again first and the detail says so.
func (e *Executor) closeUnpromoted(ctx context.Context, run *failoverRun, result fsm.Result, detail string) (fsm.Result, error) {
	if rec, ok := e.state.Record(run.id); ok {
		run.rec = rec
	}
	if stepBegan(run.rec, StepStopIO) && !stepBegan(run.rec, StepPromote) {
		if note := run.restoreIO(ctx); note != "" {
			detail += "; " + note
		}
	}
	if run.lost != nil {
		return "", fmt.Errorf("record %d before closing: %w", run.id, run.lost)
	}
	return e.closeRecord(ctx, run.id, result, "", detail)
}

// restoreIO starts the IO thread of every replica that still replicates
// from the old master with its IO thread stopped (what stop_io did). A
// replica catch_up pointed at another replica is left stopped and named:
// it must be repointed by hand.
func (r *failoverRun) restoreIO(ctx context.Context) string {
	var started, other, bad []string
	for _, a := range r.replicas() {
		c, in, err := r.read(ctx, a)
		switch {
		case err != nil:
			bad = append(bad, fmt.Sprintf("%s: %v", a, err))
			continue
		case in.Replica == nil || in.Replica.IORunning != topology.IONo:
			continue
		case !sameAddr(in.MasterKey(), r.rec.OldMaster):
			other = append(other, fmt.Sprintf("%s (replicates from %s)", a, in.MasterKey()))
			continue
		}
		if err := r.guarded(ctx, func() error { return c.StartReplica(ctx, topology.IOThread) }); err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", a, err))
			continue
		}
		started = append(started, a)
	}
	var notes []string
	if len(started) > 0 {
		notes = append(notes, "IO thread started again on "+strings.Join(started, ", "))
	}
	if len(other) > 0 {
		notes = append(notes, "left stopped, repoint by hand: "+strings.Join(other, ", "))
	}
	if len(bad) > 0 {
		notes = append(notes, "IO thread not restarted on "+strings.Join(bad, "; "))
	}
	if len(notes) > 0 {
		r.log.Warn("failover closed before promote: replication restored", "detail", strings.Join(notes, "; "))
	}
	return strings.Join(notes, "; ")
}
