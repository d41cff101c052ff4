package recovery

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/topology"
)

// rejoinRun is one run of a rejoin record. What the check and save steps
// learn is kept here for the later steps: a rejoin is not resumed by
// another leader (resumeOpen closes it), so nothing is read back from the
// journal.
type rejoinRun struct {
	*failoverRun
	ev RejoinEvidence
	// errant is what the check found (nil: nothing).
	errant []string
	// ref is the master's GTID state as the check read it (MariaDB).
	ref topology.MariaDBGTIDList
	// pos is where the instance starts replicating: its own position when
	// nothing is errant, the last position it shares with the master after
	// a rewind.
	pos string
	// files are the saved errant events, in binlog order.
	files []string
	// coord is, in file/position mode, the master's binlog coordinate the
	// instance replicates from, as the check proved it.
	coord topology.BinlogCoord
}

// executeRejoin runs a rejoin record's steps in order, journal first like a
// failover, and closes it.
func (e *Executor) executeRejoin(ctx context.Context, r *failoverRun) (fsm.Result, error) {
	rec, found := e.state.Record(r.id)
	if !found {
		return "", fmt.Errorf("record %d: %w", r.id, fsm.ErrNoSuchRecord)
	}
	if !rec.IsOpen() {
		return rec.Result, nil
	}
	r.rec = rec
	ev, ok := rejoinEvidence(rec)
	if !ok {
		return e.closeRecord(ctx, r.id, fsm.ResultFailed, "", "rejoin record without its instance and master in the evidence")
	}
	rj := &rejoinRun{failoverRun: r, ev: ev}
	for _, step := range RejoinPlan(ev.Rewind) {
		if e.cfg.StepDelay > 0 {
			if err := sleepCtx(ctx, e.cfg.StepDelay); err != nil {
				return "", err
			}
		}
		if err := e.group.VerifyLeader(ctx); err != nil {
			return "", fmt.Errorf("record %d before %s: %w: %w", r.id, step, ErrLeadershipLost, err)
		}
		if err := e.apply(ctx, fsm.StepBeginType, fsm.StepBegin{RecordID: r.id, Name: step, Leader: e.cfg.NodeID, Term: e.group.Term(), At: e.cfg.Now()}); err != nil {
			return "", fmt.Errorf("record %d: journal begin of %s: %w", r.id, step, err)
		}
		start := time.Now()
		res := rj.step(ctx, step)
		if ctx.Err() != nil {
			return "", fmt.Errorf("record %d step %s: %w: %w", r.id, step, ErrLeadershipLost, ctx.Err())
		}
		if r.lost != nil {
			return "", fmt.Errorf("record %d step %s: %w", r.id, step, r.lost)
		}
		r.log.Info("rejoin step done", "step", step, "outcome", res.outcome, "took", time.Since(start).Round(time.Millisecond), "detail", res.detail)
		if err := e.apply(ctx, fsm.StepEndType, fsm.StepEnd{RecordID: r.id, Name: step, At: e.cfg.Now(), Outcome: res.outcome, Detail: res.detail}); err != nil {
			return "", fmt.Errorf("record %d: journal end of %s: %w", r.id, step, err)
		}
		if res.close != "" {
			return e.closeRecord(ctx, r.id, res.close, "", step+": "+res.detail)
		}
	}
	detail := fmt.Sprintf("%s replicates from %s, read_only on", ev.Instance, ev.Master)
	if len(rj.files) > 0 {
		detail += fmt.Sprintf("; errant transactions %s reverted, saved in %s", strings.Join(rj.errant, ","), strings.Join(rj.files, ", "))
	}
	return e.closeRecord(ctx, r.id, fsm.ResultSuccess, "", detail)
}

func (r *rejoinRun) step(ctx context.Context, name string) stepResult {
	switch name {
	case StepRejoinCheck:
		return r.check(ctx)
	case StepRejoinSave:
		return r.save(ctx)
	case StepRejoinClearFence:
		return r.clearFence(ctx)
	case StepRejoinFlashback:
		return r.flashback(ctx)
	case StepRejoinPoint:
		return r.point(ctx)
	case StepRejoinStart:
		return r.start(ctx)
	}
	return stepFailed(fsm.ResultFailed, "unknown rejoin step %q", name)
}

// check repeats the request's checks on fresh reads: the state may have
// moved between the request and the run.
func (r *rejoinRun) check(ctx context.Context) stepResult {
	inst, master := r.ev.Instance, r.ev.Master
	if cs, ok := r.e.state.Cluster(r.cc.Name); !ok || !sameAddr(cs.Master, master) {
		return stepFailed(fsm.ResultRefused, "the recorded master of %s is no longer %s", r.cc.Name, master)
	}
	ic, in, err := r.read(ctx, inst)
	if err != nil {
		return stepFailed(fsm.ResultFailed, "read %s: %v", inst, err)
	}
	_, mst, err := r.read(ctx, master)
	if err != nil {
		return stepFailed(fsm.ResultFailed, "read the master %s: %v", master, err)
	}
	f := rejoinFacts{Instance: inst, Flavor: in.Version.Flavor, GTID: r.cc.useGTID(), ReplUser: r.cc.ReplUser,
		Rewind: r.ev.Rewind, BinlogFormat: in.BinlogFormat, Agent: r.agentURL(inst) != ""}
	if v, ok := ic.(variableReader); ok {
		f.RowImage, _ = v.GlobalVariable(ctx, "binlog_row_image")
	}
	if f.GTID {
		f.Errant, r.pos, err = rejoinErrant(in, mst)
		if err != nil {
			return stepFailed(fsm.ResultRefused, "compare %s with %s: %v", inst, master, err)
		}
	} else {
		fr, err := checkFileRejoin(ctx, r.e.state.History(r.cc.Name, 0), inst, master, ic, in)
		if err == nil {
			f.File = &fr
		}
		f.FileErr = err
	}
	if _, err := decideRejoin(f); err != nil {
		return stepFailed(fsm.ResultRefused, "%v", err)
	}
	if f.File != nil {
		// The request proved a coordinate; the run uses it only if the
		// fresh check proves the same one.
		if got := f.File.NewMasterStart.String(); got != r.ev.MasterCoord {
			return stepFailed(fsm.ResultRefused, "file/position replication: the journal now gives %s as the start in %s's binlog, the request was checked against %q", got, master, r.ev.MasterCoord)
		}
		r.coord = f.File.NewMasterStart
		return stepOK("%s's binlog has no transaction after %s, where %s stopped applying it (failover %d); it replicates from %s", inst,
			f.File.OldMasterExec, master, f.File.RecordID, r.coord)
	}
	r.errant = f.Errant
	if in.Version.Flavor == topology.MariaDB {
		r.ref, err = parseJoined(master, mst.GTIDBinlogState, mst.GTIDSlavePos, mst.GTIDCurrentPos)
		if err != nil {
			return stepFailed(fsm.ResultRefused, "%v", err)
		}
	}
	if len(f.Errant) > 0 {
		return stepOK("%s has errant transactions %s (master %s at %s)", inst, strings.Join(f.Errant, ","), master, mst.GTIDBinlogPos)
	}
	return stepOK("%s has nothing the master %s lacks (instance at %s)", inst, master, r.pos)
}

// clearFence keeps the instance read-only and lifts its agent's fence: the
// agent's global read lock would block the replication SQL thread (and the
// flashback), and a cleared agent is disarmed, so it does not fence its
// server again now that no controller renews its lease.
func (r *rejoinRun) clearFence(ctx context.Context) stepResult {
	inst := r.ev.Instance
	c, err := r.conn(ctx, inst)
	if err != nil {
		return stepFailed(fsm.ResultFailed, "connect %s: %v", inst, err)
	}
	// Before the fence goes: the instance must never be writable, not even
	// between the clear and replication starting.
	if err := r.guarded(ctx, func() error { return c.SetReadOnly(ctx, true) }); err != nil {
		return stepFailed(fsm.ResultFailed, "read_only on %s: %v", inst, err)
	}
	var note string
	err = r.guarded(ctx, func() (err error) {
		note, err = r.clearAgentFence(ctx, inst, "rejoining it as a replica")
		return err
	})
	if err != nil {
		return stepFailed(fsm.ResultFailed, "%v", err)
	}
	if note == "" {
		note = "; no agent"
	}
	return stepOK("read_only on%s", note)
}

// point makes the instance a replica of the master: GTID replication from
// the position it shares with the master (MariaDB: gtid_slave_pos is set to
// it first, since MASTER_USE_GTID=slave_pos starts there and a former
// master's gtid_slave_pos is stale: it does not count what it wrote itself).
func (r *rejoinRun) point(ctx context.Context) stepResult {
	inst, master := r.ev.Instance, r.ev.Master
	c, in, err := r.read(ctx, inst)
	if err != nil {
		return stepFailed(fsm.ResultFailed, "read %s: %v", inst, err)
	}
	if err := r.guarded(ctx, func() error { return c.StopReplica(ctx, topology.BothThreads) }); err != nil {
		return stepFailed(fsm.ResultFailed, "stop replication on %s: %v", inst, err)
	}
	note := ""
	if in.Version.Flavor == topology.MariaDB && r.cc.useGTID() {
		gs, ok := c.(gtidStateSetter)
		if !ok {
			return stepFailed(fsm.ResultFailed, "%s: the connection cannot set gtid_slave_pos", inst)
		}
		if err := r.guarded(ctx, func() error { return gs.SetGTIDSlavePos(ctx, r.pos) }); err != nil {
			return stepFailed(fsm.ResultFailed, "%v", err)
		}
		note = "; gtid_slave_pos " + r.pos
	}
	h, p := hostPort(master)
	opts, cmNote := r.changeMasterOptions(in, h, p)
	if !opts.UseGTID {
		if r.coord.IsZero() {
			return stepFailed(fsm.ResultFailed, "file/position replication: no coordinate proven by the check")
		}
		opts.File, opts.Pos, opts.MariaDBMode = r.coord.File, r.coord.Pos, ""
	}
	if err := r.guarded(ctx, func() error { return c.ChangeMaster(ctx, opts) }); err != nil {
		return stepFailed(fsm.ResultFailed, "point %s at %s: %v", inst, master, err)
	}
	return stepOK("%s pointed at %s (%s)%s%s", inst, master, opts.String(), note, cmNote)
}

// rejoinPoll is how often start_replica reads the replica's threads.
const rejoinPoll = 200 * time.Millisecond

// start starts replication and waits (at most apply_timeout) until both
// threads run, and checks read_only is still on.
func (r *rejoinRun) start(ctx context.Context) stepResult {
	inst := r.ev.Instance
	c, err := r.conn(ctx, inst)
	if err != nil {
		return stepFailed(fsm.ResultFailed, "connect %s: %v", inst, err)
	}
	if err := r.guarded(ctx, func() error { return c.StartReplica(ctx, topology.BothThreads) }); err != nil {
		return stepFailed(fsm.ResultFailed, "start replication on %s: %v", inst, err)
	}
	deadline := time.Now().Add(r.e.cfg.ApplyTimeout)
	last := "not read yet"
	for {
		_, in, err := r.read(ctx, inst)
		switch {
		case err != nil:
			last = err.Error()
		case in.Replica == nil:
			last = "no replication configured"
		case in.Replica.Running() && in.ReadOnly:
			return stepOK("%s replicates from %s (IO %s, SQL running), read_only on", inst, r.ev.Master, in.Replica.IORunning)
		case in.Replica.Running():
			return stepFailed(fsm.ResultFailed, "%s replicates but read_only is off", inst)
		default:
			last = fmt.Sprintf("IO %s, SQL %t; %s %s", in.Replica.IORunning, in.Replica.SQLRunning, in.Replica.LastIOError, in.Replica.LastSQLError)
			if !in.Replica.SQLRunning && in.Replica.LastSQLError != "" {
				return stepFailed(fsm.ResultFailed, "replication on %s stopped: %s", inst, last)
			}
		}
		if !time.Now().Before(deadline) {
			return stepFailed(fsm.ResultFailed, "replication on %s not running after %s: %s", inst, r.e.cfg.ApplyTimeout, last)
		}
		if err := sleepCtx(ctx, rejoinPoll); err != nil {
			return stepFailed(fsm.ResultFailed, "%v", err)
		}
	}
}
