package recovery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/quorumha/quorumha/topology"
)

// errRelayBacklog means a replica still holds received transactions it has
// not applied.
var errRelayBacklog = errors.New("relay log not applied")

// relayBacklog reports whether in received transactions it has not applied:
// what its IO thread received (ReadPosition) is not within what it executed.
// Selection ranks replicas by what they received (MHA's rule), but CHANGE
// MASTER and RESET SLAVE ALL purge relay logs: a replica promoted or caught
// up with a backlog loses it. what describes the backlog for the journal.
func relayBacklog(in *topology.Instance) (backlog bool, what string, err error) {
	if in.Replica == nil {
		return false, "", nil
	}
	got, gerr := in.ReadPosition()
	done, derr := in.ExecutedPosition()
	if gerr == nil && derr == nil {
		o, cerr := topology.ComparePositions(got, done)
		if cerr == nil {
			if o == topology.Equal || o == topology.Behind {
				return false, "", nil
			}
			return true, fmt.Sprintf("received %s, applied %s", got, done), nil
		}
	}
	// Positions that cannot be compared (a replica that never connected
	// has no coordinates): the coordinates alone decide.
	if in.Replica.RelayLogApplied() {
		return false, "", nil
	}
	return true, "", fmt.Errorf("%s: relay log state unknown (read %s, exec %s): %w",
		in.Key, in.Replica.ReadCoord(), in.Replica.ExecCoord(), errors.Join(gerr, derr))
}

// applyRelay makes addr apply the relay log it holds before anything purges
// it: the SQL thread is started (idempotent) and waited for within
// apply_timeout, then the instance is read again to prove it. It returns
// nil when nothing is left to apply, and an error wrapping errRelayBacklog
// (naming what was received and applied) when the backlog remains.
func (r *failoverRun) applyRelay(ctx context.Context, addr string) error {
	c, in, err := r.read(ctx, addr)
	if err != nil {
		return fmt.Errorf("read %s: %w", addr, err)
	}
	back, _, err := relayBacklog(in)
	if err == nil && !back {
		return nil
	}
	if err := applierFailed(in); err != nil {
		return fmt.Errorf("%w: %w", errRelayBacklog, err)
	}
	wctx, cancel := context.WithTimeout(ctx, r.e.cfg.ApplyTimeout)
	werr := c.StartReplica(wctx, topology.SQLThread)
	if werr == nil {
		werr = c.WaitRelayLogApplied(wctx)
	}
	cancel()
	_, in, err = r.read(ctx, addr)
	if err != nil {
		return fmt.Errorf("read %s: %w", addr, err)
	}
	back, what, err := relayBacklog(in)
	if back && werr != nil && idleAtRelayEnd(in) {
		// The applier, given apply_timeout, has read its whole relay log
		// and waits for more: what the coordinates (or MySQL's
		// Retrieved_Gtid_Set) show beyond it is a transaction the dead
		// master never finished sending, so never committed or
		// acknowledged. Nothing applicable is left.
		return nil
	}
	switch {
	case err != nil:
		return fmt.Errorf("%w: %w", errRelayBacklog, err)
	case back:
		why := ""
		if werr != nil {
			why = " (" + werr.Error() + ")"
		}
		return fmt.Errorf("%w within apply_timeout %s: %s%s", errRelayBacklog, r.e.cfg.ApplyTimeout, what, why)
	}
	return nil
}

// idleAtRelayEnd reports whether the SQL thread runs and says it has read
// all of its relay log.
func idleAtRelayEnd(in *topology.Instance) bool {
	return in.Replica != nil && in.Replica.SQLRunning &&
		strings.Contains(strings.ToLower(in.Replica.SlaveSQLRunningState), "read all relay log")
}

// delayOf is a replica's MASTER_DELAY (0 for none or a non-replica).
func delayOf(in *topology.Instance) time.Duration {
	if in == nil || in.Replica == nil || in.Replica.SQLDelay <= 0 {
		return 0
	}
	return time.Duration(in.Replica.SQLDelay) * time.Second
}

// relayWaitTargets splits the reachable replicas into those wait_relay
// must wait for and those it leaves alone, with the reason for each one
// left. Only what the choice can need is waited for: a delayed replica
// (MASTER_DELAY) is never chosen nor caught up from, and a no_master one is
// only a catch-up source when nobody received more than it did. The others
// are repointed later; a delayed one keeps its delay.
func relayWaitTargets(cc ClusterConfig, ins map[string]*topology.Instance, order []string) (wait []string, skip []string) {
	noMaster := map[string]bool{}
	for _, ci := range cc.Instances {
		noMaster[strings.ToLower(ci.Address)] = ci.NoMaster
	}
	received := map[string]topology.Position{}
	for _, a := range order {
		if delayOf(ins[a]) > 0 {
			continue
		}
		if p, err := ins[a].ReadPosition(); err == nil {
			received[a] = p
		}
	}
	for _, a := range order {
		in := ins[a]
		if d := delayOf(in); d > 0 {
			skip = append(skip, fmt.Sprintf("%s (MASTER_DELAY %s)", a, d))
			continue
		}
		if noMaster[strings.ToLower(a)] {
			if ahead := aheadOf(a, order, received); ahead != "" {
				skip = append(skip, fmt.Sprintf("%s (no_master, received less than %s)", a, ahead))
				continue
			}
		}
		wait = append(wait, a)
	}
	return wait, skip
}

// aheadOf names a replica that received strictly more than a ("" if none
// is known to): a is then not among the most advanced.
func aheadOf(a string, order []string, received map[string]topology.Position) string {
	pa, ok := received[a]
	if !ok {
		return ""
	}
	for _, b := range order {
		pb, known := received[b]
		if b == a || !known {
			continue
		}
		if o, err := topology.ComparePositions(pb, pa); err == nil && o == topology.Ahead {
			return b
		}
	}
	return ""
}

// applierFailed refuses to restart an applier that stopped on an error once
// stop_io has stopped the IO thread: MariaDB discards the relay log when
// the SQL thread is started while both threads are stopped, so the restart
// would not retry the failing transaction but silently drop it and every
// received transaction after it, and the replica would then look merely
// behind instead of broken. Such a replica keeps its error, and selection
// refuses it for that.
func applierFailed(in *topology.Instance) error {
	if in == nil || in.Replica == nil || in.Replica.SQLRunning || in.Replica.LastSQLErrno == 0 {
		return nil
	}
	return fmt.Errorf("%s: SQL thread stopped with error %d (%s): not restarted, its relay log is kept",
		in.Key, in.Replica.LastSQLErrno, in.Replica.LastSQLError)
}
