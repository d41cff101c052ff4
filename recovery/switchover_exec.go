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

// processLister is implemented by *topology.Conn: the open transactions a
// switchover waits for and reports.
type processLister interface {
	ProcessList(ctx context.Context) ([]topology.Process, error)
}

// readLocker is implemented by *topology.Conn: a dedicated session holds
// the old master's global read lock during a switchover.
type readLocker interface {
	PrepareGlobalReadLock(ctx context.Context, wait time.Duration) (*topology.GlobalReadLock, error)
}

// lockWait is the lock session's lock_wait_timeout.
const lockWait = 3 * time.Second

// lockedChangeTimeout bounds the change of master on the old master while its
// global read lock is held, in case the server makes it wait for the lock.
const lockedChangeTimeout = 3 * time.Second

// staleOpen tells a switchover record a new leader found open (its opener
// died before the first step) from one this leader just opened.
const staleOpen = 2 * time.Second

// lockLinger is how long the old master's global read lock is held after
// the record closed, for the followers to apply the close.
const lockLinger = 200 * time.Millisecond

// gracePoll is how often open transactions are re-read during the grace.
const gracePoll = 20 * time.Millisecond

// executeSwitchover runs (or resumes) a switchover record. A record resumed
// by a new leader before its promote began is rolled back; one whose
// promote began is finished with the journalled target. Any failure before
// the promote succeeded rolls back.
func (e *Executor) executeSwitchover(ctx context.Context, run *failoverRun) (fsm.Result, error) {
	defer run.releaseLock(context.WithoutCancel(ctx), true)
	plan := SwitchoverPlan()
	first := true
	for {
		rec, found := e.state.Record(run.id)
		if !found {
			return "", fmt.Errorf("record %d: %w", run.id, fsm.ErrNoSuchRecord)
		}
		if !rec.IsOpen() {
			return rec.Result, nil
		}
		run.rec = rec
		ev, ok := switchoverEvidence(rec)
		if !ok {
			return e.closeRecord(ctx, run.id, fsm.ResultAborted, "", "switchover record without a target in its evidence")
		}
		promoted := stepEnded(rec, StepPromote)
		resumed := len(rec.Steps) > 0 || e.cfg.Now().Sub(rec.Opened) > staleOpen
		if first && resumed && !stepBegan(rec, StepPromote) {
			return e.rollbackSwitchover(ctx, run, ev, "resumed by a new leader before promote began")
		}
		first = false
		step, _, err := NextStep(plan, rec)
		switch {
		case errors.Is(err, ErrUnsafeResume):
			if _, rerr := run.conn(ctx, ev.Target); rerr != nil {
				return e.closeRecord(ctx, run.id, fsm.ResultAborted, "",
					fmt.Sprintf("promote of %s began but never ended and it is unreachable (%v)", ev.Target, rerr))
			}
		case err != nil && !promoted:
			return e.rollbackSwitchover(ctx, run, ev, err.Error())
		case err != nil:
			return e.closeRecord(ctx, run.id, fsm.ResultFailed, "", err.Error())
		case step == "":
			res, cerr := e.closeRecord(ctx, run.id, fsm.ResultSuccess, ev.Target,
				fmt.Sprintf("switchover by %s: %s is the master in place of %s", ev.By, ev.Target, rec.OldMaster))
			if cerr == nil && run.lock != nil {
				// Every controller names the new master a moment after the
				// leader does; until then a client may still be sent to the
				// old one, where the lock keeps its write waiting (then
				// killed) instead of letting it land on a replica.
				_ = sleepCtx(ctx, lockLinger)
			}
			run.releaseLock(context.WithoutCancel(ctx), true)
			return res, cerr
		}
		if e.cfg.StepDelay > 0 {
			if err := sleepCtx(ctx, e.cfg.StepDelay); err != nil {
				return "", err
			}
		}
		if err := e.group.VerifyLeader(ctx); err != nil {
			return "", fmt.Errorf("record %d before %s: %w: %w", run.id, step, ErrLeadershipLost, err)
		}
		if err := e.apply(ctx, fsm.StepBeginType, fsm.StepBegin{RecordID: run.id, Name: step, Leader: e.cfg.NodeID, Term: e.group.Term(), At: e.cfg.Now()}); err != nil {
			return "", fmt.Errorf("record %d: journal begin of %s: %w", run.id, step, err)
		}
		start := time.Now()
		res := run.switchoverStep(ctx, step, ev)
		if ctx.Err() != nil {
			return "", fmt.Errorf("record %d step %s: %w: %w", run.id, step, ErrLeadershipLost, ctx.Err())
		}
		if run.lost != nil {
			return "", fmt.Errorf("record %d step %s: %w", run.id, step, run.lost)
		}
		run.log.Info("switchover step done", "step", step, "outcome", res.outcome, "took", time.Since(start).Round(time.Millisecond), "detail", res.detail)
		end := fsm.StepEnd{RecordID: run.id, Name: step, At: e.cfg.Now(), Outcome: res.outcome, Detail: res.detail}
		end.NewMaster = announced(step, res, ev.Target)
		if err := e.apply(ctx, fsm.StepEndType, end); err != nil {
			return "", fmt.Errorf("record %d: journal end of %s: %w", run.id, step, err)
		}
		if res.close != "" {
			if !promoted {
				return e.rollbackSwitchover(ctx, run, ev, step+": "+res.detail)
			}
			return e.closeRecord(ctx, run.id, res.close, "", step+": "+res.detail)
		}
	}
}

func stepBegan(rec fsm.Record, name string) bool {
	for _, s := range rec.Steps {
		if s.Name == name {
			return true
		}
	}
	return false
}

func stepEnded(rec fsm.Record, name string) bool {
	for _, s := range rec.Steps {
		if s.Name == name && (s.Outcome == fsm.OutcomeOK || s.Outcome == fsm.OutcomeWarning) {
			return true
		}
	}
	return false
}

func (r *failoverRun) switchoverStep(ctx context.Context, name string, ev SwitchoverEvidence) stepResult {
	switch name {
	case StepOnlineStop:
		// Before anything blocks a writer: bring the target level and
		// open every session the block will need.
		lvl := r.preLevel(ctx, ev)
		res := r.onlineHook(ctx, CommandStop, ev.Target, true)
		if lvl != "" && res.outcome != fsm.OutcomeFailed {
			res.detail += "; " + lvl
		}
		return res
	case StepReadOnlyOld:
		c, err := r.conn(ctx, r.rec.OldMaster)
		if err == nil {
			// The global read lock's session is opened before the
			// block starts, so kill_old only takes the global read
			// lock on it.
			if perr := r.prepareLock(ctx, c); perr != nil {
				r.log.Warn("global read lock session not prepared", "err", perr)
			}
			err = c.SetReadOnly(ctx, true)
		}
		if err != nil {
			return stepFailed(fsm.ResultRolledBack, "read_only on %s: %v", r.rec.OldMaster, err)
		}
		return stepOK("read_only=ON on %s", r.rec.OldMaster)
	case StepKillOld:
		return r.killOld(ctx, ev.Grace)
	case StepWaitTarget:
		return r.waitTarget(ctx, ev)
	case StepPromote:
		return r.promoteSwitchover(ctx, ev)
	case StepRepoint:
		return r.repoint(ctx)
	case StepOldAsReplica:
		res := r.oldAsReplica(ctx, ev.Target)
		if res.outcome == fsm.OutcomeOK {
			// Read-only and repointed: its agent must not fence it once
			// the controllers stop renewing its lease as a master.
			note, err := r.clearAgentFence(ctx, r.rec.OldMaster, "demoted to a replica by a switchover")
			if err != nil {
				return stepWarning("%s; %v", res.detail, err)
			}
			res.detail += note
		}
		return res
	case StepOnlineStart:
		res := r.onlineHook(ctx, CommandStart, ev.Target, true)
		if res.outcome == fsm.OutcomeFailed { // promoted already: a warning
			return stepWarning("%s", res.detail)
		}
		return res
	case StepReport:
		return r.report(ctx)
	default:
		return stepFailed(fsm.ResultFailed, "unknown step %q", name)
	}
}

// onlineHook runs the ip_online_change hook with MHA's arguments.
func (r *failoverRun) onlineHook(ctx context.Context, cmd HookCommand, target string, origIsNewSlave bool) stepResult {
	path := r.cc.Hooks.OnlineChange
	if path == "" {
		return stepSkipped("no ip_online_change hook")
	}
	call, err := OnlineChangeArgs(cmd, r.hookHosts(target), origIsNewSlave)
	if err != nil {
		return stepFailed(fsm.ResultRolledBack, "ip_online_change: %v", err)
	}
	res := r.runHook(ctx, HookOnlineChange, path, call.Args, call.Env...)
	switch res.Action(HookOnlineChange) {
	case Abort:
		return stepFailed(fsm.ResultRolledBack, "ip_online_change --command=%s exit %d: %s%s", cmd, res.ExitCode, errText(res.Err), tail(res.Output))
	case Warn:
		return stepWarning("ip_online_change --command=%s exit %d (warning)", cmd, res.ExitCode)
	}
	return stepOK("ip_online_change --command=%s ok", cmd)
}

// openTransactions lists the client sessions with an open transaction
// (never the controllers' own account or replication threads).
func (r *failoverRun) openTransactions(ctx context.Context, c Instance) ([]topology.Process, error) {
	pl, ok := c.(processLister)
	if !ok {
		return nil, nil
	}
	ps, err := pl.ProcessList(ctx)
	if err != nil {
		return nil, err
	}
	var out []topology.Process
	for _, p := range ps {
		if p.InTransaction && !strings.EqualFold(p.User, r.cc.User) && p.User != "" && !strings.EqualFold(p.User, "system user") {
			out = append(out, p)
		}
	}
	return out, nil
}

// killOld waits up to grace for open transactions on the read-only old
// master, reports those still open, kills every client session but the
// controllers' own, then takes a global read lock on a dedicated session
// (read_only does not stop SUPER users on MariaDB: MHA lost a write that
// way) and kills again whoever reconnected meanwhile.
func (r *failoverRun) killOld(ctx context.Context, grace time.Duration) stepResult {
	old := r.rec.OldMaster
	c, err := r.conn(ctx, old)
	if err != nil {
		return stepFailed(fsm.ResultRolledBack, "old master %s unreachable: %v", old, err)
	}
	var notes []string
	deadline := time.Now().Add(max(grace, 0))
	for {
		open, err := r.openTransactions(ctx, c)
		if err != nil {
			notes = append(notes, fmt.Sprintf("process list: %v", err))
			break
		}
		if len(open) == 0 {
			break
		}
		if !time.Now().Before(deadline) {
			var l []string
			for _, p := range open {
				l = append(l, fmt.Sprintf("id %d user %s trx %s age %s rows %d", p.ID, p.User, p.TrxID, p.TrxAge, p.TrxRowsModified))
			}
			notes = append(notes, fmt.Sprintf("open transactions after a grace of %s, killed: %s", grace, strings.Join(l, "; ")))
			break
		}
		if err := sleepCtx(ctx, gracePoll); err != nil {
			return stepFailed(fsm.ResultRolledBack, "%v", err)
		}
	}
	var spare []uint64
	if r.lockSession != nil {
		spare = append(spare, r.lockID) // the session prepared for the lock
	}
	killed, err := c.KillClientSessions(ctx, spare...)
	if err != nil {
		return stepFailed(fsm.ResultRolledBack, "kill connections on %s: %v", old, err)
	}
	n := len(killed)
	if err := r.acquireLock(ctx, c); err != nil {
		notes = append(notes, fmt.Sprintf("global read lock not taken (%v)", err))
	} else {
		notes = append(notes, "global read lock held")
		again, err := c.KillClientSessions(ctx, r.lockID)
		if err != nil {
			return stepFailed(fsm.ResultRolledBack, "kill connections on %s: %v", old, err)
		}
		n += len(again)
	}
	notes = append(notes, fmt.Sprintf("killed %d client connections on %s", n, old))
	return stepOK("%s", strings.Join(notes, "; "))
}

// preLevelRounds bounds how often preLevel chases the old master's moving
// position; preLevelClose is a round short enough to call the target level.
const (
	preLevelRounds = 5
	preLevelClose  = 20 * time.Millisecond
)

// preLevel waits, before the switchover blocks any writer, for the target
// to apply what the old master has written, round after round while the
// writes go on, until a round takes under preLevelClose (the target is
// within a few milliseconds of replication lag): wait_target, inside the
// write block, then only waits for the last few transactions. It also opens
// the sessions the block uses (target, old master). It never fails the
// switchover: wait_target is the wait that counts. It returns a note for
// the journal ("" when there is nothing to say).
func (r *failoverRun) preLevel(ctx context.Context, ev SwitchoverEvidence) string {
	tc, err := r.conn(ctx, ev.Target)
	if err != nil {
		return ""
	}
	if _, err := r.conn(ctx, r.rec.OldMaster); err != nil {
		return ""
	}
	timeout := ev.Timeout
	if timeout <= 0 {
		timeout = DefaultSwitchoverTimeout
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	for i := 1; i <= preLevelRounds; i++ {
		_, oin, err := r.read(pctx, r.rec.OldMaster)
		if err != nil {
			return ""
		}
		pos, err := oin.BinlogPosition()
		if err != nil {
			return ""
		}
		round := time.Now()
		if err := tc.WaitForPosition(pctx, pos); err != nil {
			return fmt.Sprintf("%s not level with %s before the write block (%v)", ev.Target, r.rec.OldMaster, err)
		}
		if time.Since(round) < preLevelClose {
			return fmt.Sprintf("%s level with %s's %s before the write block (%d rounds, %s)",
				ev.Target, r.rec.OldMaster, pos, i, time.Since(start).Round(time.Millisecond))
		}
	}
	return fmt.Sprintf("%s within one round of %s before the write block (%s)", ev.Target, r.rec.OldMaster, time.Since(start).Round(time.Millisecond))
}

// prepareLock opens the dedicated session of the old master that
// acquireLock takes the global read lock on.
func (r *failoverRun) prepareLock(ctx context.Context, c Instance) error {
	if r.lock != nil || r.lockSession != nil {
		return nil
	}
	h, ok := c.(readLocker)
	if !ok {
		return errors.New("instance has no SQL session")
	}
	l, err := h.PrepareGlobalReadLock(ctx, lockWait)
	if err != nil {
		return err
	}
	r.lockID = l.ID()
	r.lockSession = l
	return nil
}

// acquireLock takes the global read lock on a dedicated session of the old
// master; it blocks every writer, SUPER or not.
func (r *failoverRun) acquireLock(ctx context.Context, c Instance) error {
	if r.lock != nil {
		return nil
	}
	prepared := r.lockSession != nil
	for {
		if err := r.prepareLock(ctx, c); err != nil {
			return err
		}
		l := r.lockSession
		r.lockSession = nil
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := l.Lock(lctx)
		cancel()
		if err == nil {
			r.lock = l
			return nil
		}
		if !prepared || ctx.Err() != nil {
			return err
		}
		// The session opened before the block may have been killed
		// meanwhile (by a fence, by an operator): once more on a new one.
		prepared = false
	}
}

// releaseLock releases the old master's global read lock, first killing
// (kill) the client sessions that waited on it, so none of their writes
// lands on what is now a replica.
func (r *failoverRun) releaseLock(ctx context.Context, kill bool) {
	if r.lockSession != nil {
		r.lockSession.Discard()
		r.lockSession = nil
	}
	if r.lock == nil {
		return
	}
	if kill {
		if c, err := r.conn(ctx, r.rec.OldMaster); err == nil {
			_, _ = c.KillClientSessions(ctx, r.lockID)
			r.killLockWaiters(ctx, c)
		}
	}
	_ = r.lock.Release(ctx) // bounded within; closing the session releases the lock anyway
	r.lock = nil
}

// killLockWaiters kills every session, of any user (the controllers'
// account too: an application may share it), running a statement other
// than a read: under the global read lock such a statement waits for it,
// and released it would write to what is now a replica. Killed, its client
// sees an error and retries on the new master.
func (r *failoverRun) killLockWaiters(ctx context.Context, c Instance) {
	pl, ok := c.(processLister)
	if !ok {
		return
	}
	ps, err := pl.ProcessList(ctx)
	if err != nil {
		return
	}
	for _, p := range ps {
		if p.ID == r.lockID || !strings.EqualFold(p.Command, "Query") || isRead(p.Info) {
			continue
		}
		if err := r.lock.KillSession(ctx, p.ID); err != nil {
			r.log.Warn("kill a session waiting on the global read lock", "session", p.ID, "err", err)
		} else {
			r.log.Info("killed a session waiting on the global read lock", "session", p.ID, "user", p.User, "state", p.State)
		}
	}
}

// isRead reports statements that cannot write (the controllers' probes).
func isRead(info string) bool {
	f := strings.Fields(strings.ToUpper(info))
	if len(f) == 0 {
		return true
	}
	switch f[0] {
	case "SELECT", "SHOW":
		return true
	}
	return false
}

// waitTarget waits, bounded by the request's timeout, for the target to
// apply the old master's final position.
func (r *failoverRun) waitTarget(ctx context.Context, ev SwitchoverEvidence) stepResult {
	_, oin, err := r.read(ctx, r.rec.OldMaster)
	if err != nil {
		return stepFailed(fsm.ResultRolledBack, "read old master: %v", err)
	}
	pos, err := oin.BinlogPosition()
	if err != nil {
		return stepFailed(fsm.ResultRolledBack, "position of %s: %v", r.rec.OldMaster, err)
	}
	tc, err := r.conn(ctx, ev.Target)
	if err != nil {
		return stepFailed(fsm.ResultRolledBack, "target %s unreachable: %v", ev.Target, err)
	}
	timeout := ev.Timeout
	if timeout <= 0 {
		timeout = DefaultSwitchoverTimeout
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	if err := tc.WaitForPosition(wctx, pos); err != nil {
		return stepFailed(fsm.ResultRolledBack, "%s did not reach %s within %s: %v", ev.Target, pos, timeout, err)
	}
	return stepOK("%s reached %s's final position %s in %s", ev.Target, r.rec.OldMaster, pos, time.Since(start).Round(time.Millisecond))
}

// oldAsReplica makes the old master a replica of the new one (GTID
// current_pos: its own writes are in its binlog position). The global read
// lock stays held until the record has closed, so no writer gets in while
// the controllers still name the old master.
func (r *failoverRun) oldAsReplica(ctx context.Context, target string) stepResult {
	old := r.rec.OldMaster
	c, in, err := r.read(ctx, old)
	if err != nil {
		return stepWarning("old master %s unreachable: %v; rejoin it by hand", old, err)
	}
	h, p := hostPort(target)
	opts, note := r.changeMasterOptions(in, h, p)
	opts.MariaDBMode = topology.GTIDCurrentPos
	if in.SemiSync.MasterEnabled {
		// A semi-sync master with no replica of its own would make every
		// transaction it applies wait out the semi-sync timeout.
		if err := c.SetSemiSyncMaster(ctx, false); err != nil {
			note += fmt.Sprintf("; semi-sync master NOT disabled: %v", err)
		} else {
			note += "; semi-sync master disabled"
		}
	}
	if !opts.UseGTID {
		coord, found := promotedCoord(r.rec)
		if !found {
			return stepWarning("file/position replication and no journalled binlog position of %s: rejoin %s by hand", target, old)
		}
		opts.File, opts.Pos, opts.MariaDBMode = coord.File, coord.Pos, ""
	}
	if r.lock != nil {
		// From another session: the locking one may not change its
		// master (error 1192). The SQL thread then waits for the lock, which is
		// released after the record closes.
		lctx, cancel := context.WithTimeout(ctx, lockedChangeTimeout)
		err := r.guarded(ctx, func() error { return c.ChangeMaster(lctx, opts) })
		if err == nil {
			err = r.guarded(ctx, func() error { return c.StartReplica(lctx, topology.BothThreads) })
		}
		cancel()
		if err == nil {
			// The IO thread must connect now; the SQL thread waits for
			// the lock, released after the record closes.
			if err := r.waitReplicating(ctx, old, true); err != nil {
				return stepWarning("%s pointed at %s but does not replicate: %v%s; fix its replication by hand", old, target, err, note)
			}
			return stepOK("%s replicates from %s (applying once the global read lock is released)%s", old, target, note)
		}
		note += fmt.Sprintf("; under the global read lock: %v", err)
		r.releaseLock(ctx, true)
	}
	if err := r.guarded(ctx, func() error { return c.ChangeMaster(ctx, opts) }); err != nil {
		return stepWarning("point %s at %s: %v%s", old, target, err, note)
	}
	if err := r.guarded(ctx, func() error { return c.StartReplica(ctx, topology.BothThreads) }); err != nil {
		return stepWarning("start replication on %s: %v%s", old, err, note)
	}
	if err := r.waitReplicating(ctx, old, true); err != nil {
		return stepWarning("%s pointed at %s but does not replicate: %v%s; fix its replication by hand", old, target, err, note)
	}
	return stepOK("%s replicates from %s%s", old, target, note)
}

// rollbackSwitchover undoes a switchover that did not promote: the target
// replicates from the old master again, the old master takes writes again,
// and the record closes rolled back with the reason.
func (e *Executor) rollbackSwitchover(ctx context.Context, run *failoverRun, ev SwitchoverEvidence, reason string) (fsm.Result, error) {
	if err := e.group.VerifyLeader(ctx); err != nil {
		return "", fmt.Errorf("record %d before rollback: %w: %w", run.id, ErrLeadershipLost, err)
	}
	old := run.rec.OldMaster
	var notes []string
	if tc, tin, err := run.read(ctx, ev.Target); err != nil {
		notes = append(notes, fmt.Sprintf("target %s unreachable: %v", ev.Target, err))
	} else {
		if !tin.ReadOnly {
			if err := tc.SetReadOnly(ctx, true); err != nil {
				notes = append(notes, fmt.Sprintf("read_only on %s: %v", ev.Target, err))
			}
		}
		if tin.Replica == nil || !sameAddr(tin.MasterKey(), old) {
			h, p := hostPort(old)
			opts, _ := run.changeMasterOptions(tin, h, p)
			if err := run.guarded(ctx, func() error { return tc.ChangeMaster(ctx, opts) }); err != nil {
				notes = append(notes, fmt.Sprintf("point %s back at %s: %v", ev.Target, old, err))
			}
		}
		if err := run.guarded(ctx, func() error { return tc.StartReplica(ctx, topology.BothThreads) }); err != nil {
			notes = append(notes, fmt.Sprintf("start replication on %s: %v", ev.Target, err))
		} else {
			notes = append(notes, ev.Target+" replicates from "+old)
		}
	}
	run.releaseLock(ctx, false)
	if c, err := run.conn(ctx, old); err != nil {
		notes = append(notes, fmt.Sprintf("old master %s unreachable: %v", old, err))
	} else if err := run.guarded(ctx, func() error { return c.SetReadOnly(ctx, false) }); err != nil {
		notes = append(notes, fmt.Sprintf("read_only off on %s: %v", old, err))
	} else {
		notes = append(notes, "read_only=OFF on "+old)
	}
	if stepEnded(run.rec, StepOnlineStop) && run.cc.Hooks.OnlineChange != "" {
		notes = append(notes, "ip_online_change --command=stop had run: check the writer address")
	}
	if run.lost != nil {
		return "", fmt.Errorf("record %d during rollback: %w", run.id, run.lost)
	}
	return e.closeRecord(ctx, run.id, fsm.ResultRolledBack, "", "rolled back: "+reason+"; "+strings.Join(notes, "; "))
}
