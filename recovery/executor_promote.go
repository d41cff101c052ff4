package recovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
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
// named and the step ends with a warning. The target first applies its whole
// relay log (changing its master would purge it), and no replica with errant
// transactions is caught up from.
func (r *failoverRun) catchUp(ctx context.Context) stepResult {
	target := chosenOf(r.rec)
	if err := r.applyRelay(ctx, target); err != nil {
		return stepFailed(fsm.ResultFailed, "chosen %s: %v: not caught up nor promoted, since both would purge what it received", target, err)
	}
	tc, tin, err := r.read(ctx, target)
	if err != nil {
		return stepFailed(fsm.ResultFailed, "chosen %s unreachable: %v", target, err)
	}
	tpos, err := tin.ExecutedPosition()
	if err != nil {
		return stepFailed(fsm.ResultFailed, "position of %s: %v", target, err)
	}
	ins := map[string]*topology.Instance{target: tin}
	order := []string{target}
	for _, a := range r.replicas() {
		if a == target {
			continue
		}
		if _, in, err := r.read(ctx, a); err == nil {
			ins[a], order = in, append(order, a)
		}
	}
	var errant map[string]string
	if r.cc.useGTID() {
		errant = errantReplicas(ins, order, r.rec.OldMaster, lastSeenOf(r.rec.Evidence, r.rec.OldMaster).Position, r.log)
	}
	if d, bad := errant[target]; bad {
		return stepFailed(fsm.ResultFailed, "chosen %s has errant GTIDs %s: not promoted", target, d)
	}
	best, bestPos := "", topology.Position{}
	var notes []string
	for _, a := range order[1:] {
		in := ins[a]
		if !in.LogBin || !in.LogSlaveUpdates {
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
		if d, bad := errant[a]; bad {
			notes = append(notes, fmt.Sprintf("not caught up from %s: errant GTIDs %s", a, d))
			continue
		}
		if best != "" {
			if ob, err := topology.ComparePositions(p, bestPos); err != nil || ob != topology.Ahead {
				continue
			}
		}
		best, bestPos = a, p
	}
	note := ""
	if len(notes) > 0 {
		note = "; " + strings.Join(notes, "; ")
	}
	if tpos.Kind == topology.PosFile {
		// Repoint levels file/position replicas against this coordinate:
		// after promote, the target's replication status is gone.
		note += "; " + execMarker + tpos.Coord.String()
	}
	if best == "" {
		return stepSkipped("%s is the most advanced (%s)%s", target, tpos, note)
	}
	if !r.cc.useGTID() || tpos.Kind == topology.PosFile {
		return stepWarning("file/position replication: %s is at %s but %s has applied up to %s; the transactions between them exist only on %s and could not be recovered onto %s%s",
			target, tpos, best, bestPos, best, target, note)
	}
	h, p := hostPort(best)
	opts, cmNote := r.changeMasterOptions(tin, h, p)
	if err := r.guarded(ctx, func() error { return tc.ChangeMaster(ctx, opts) }); err != nil {
		return stepFailed(fsm.ResultFailed, "point %s at %s: %v", target, best, err)
	}
	if err := r.guarded(ctx, func() error { return tc.StartReplica(ctx, topology.BothThreads) }); err != nil {
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
	return stepOK("%s caught up from %s to %s%s%s", target, best, bestPos, cmNote, note)
}

// changeMasterOptions builds change-master options towards host:port with
// the configured replication account. Without repl_user the statement names
// no account at all, so the replica keeps the user and password it
// replicates with (naming its Master_User with an empty password, as
// before, made every repoint fail to authenticate); an instance that is not
// a replica has none to keep, which is why switchover requires repl_user.
func (r *failoverRun) changeMasterOptions(in *topology.Instance, host string, port int) (topology.ChangeMasterOptions, string) {
	o := topology.ChangeMasterOptions{Host: host, Port: port, User: r.cc.ReplUser, Password: r.cc.ReplPassword,
		UseGTID: r.cc.useGTID(), MariaDBMode: topology.GTIDSlavePos, ConnectRetry: 1,
		HeartbeatPeriod: r.cc.HeartbeatPeriod.Seconds()}
	if o.User != "" {
		return o, ""
	}
	o.Password = ""
	note := ""
	switch {
	case in != nil && in.Replica != nil:
		note = fmt.Sprintf("; repl_user not configured: %s keeps its replication account %q", in.Key, in.Replica.MasterUser)
	case in != nil:
		note = fmt.Sprintf("; repl_user not configured and %s has no replication account to keep: it may fail to authenticate", in.Key)
	}
	return o, note
}

// binlogMarker prefixes the new master's binlog coordinate in the promote
// step's detail; repoint reads it back for file/position replicas.
const binlogMarker = "binlog="

// execMarker prefixes, in the catch_up step's detail, how far the chosen
// replica had applied the old master's binlog (file/position replication):
// repoint compares the other replicas with it.
const execMarker = "old_master_exec="

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
	proven := fenceProven(r.rec)
	for _, ci := range r.cc.Instances {
		if strings.EqualFold(ci.Address, target) {
			continue
		}
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if proven[strings.ToLower(ci.Address)] {
			// Proven fenced already (for a vanished host: by its lapsed
			// lease); this look is a last check on top, which must not
			// cost a connect timeout when the host is gone.
			rctx, cancel = context.WithTimeout(ctx, provenReadTimeout)
		}
		_, in, err := r.read(rctx, ci.Address)
		cancel()
		if err == nil && !in.ReadOnly {
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
	// RESET SLAVE ALL purges the relay log: what the target received and
	// has not applied must be applied first, or it is lost.
	if err := r.applyRelay(ctx, target); err != nil {
		return stepFailed(fsm.ResultFailed, "refused: %s: %v: RESET SLAVE ALL would discard it", target, err)
	}
	if err := c.StopReplica(ctx, topology.BothThreads); err != nil {
		return stepFailed(fsm.ResultFailed, "stop replication on %s: %v", target, err)
	}
	if err := r.guarded(ctx, func() error { return c.ResetReplicaAll(ctx) }); err != nil {
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
	cleared, err := r.clearAgentFence(ctx, target, "promoting it")
	if err != nil {
		return stepFailed(fsm.ResultFailed, "%v", err)
	}
	semi += cleared
	// Its position is read while it is still read-only: no client write
	// can land before read_only goes off, so the coordinate is exactly
	// where its binlog starts to hold the new history, and file/position
	// replicas pointed there (repoint, rejoin) neither skip nor repeat a
	// transaction. A resumed promote may find it writable already; its
	// coordinate then proves nothing and is not journalled.
	_, in, rerr := r.read(ctx, target)
	if err := r.guarded(ctx, func() error { return c.SetReadOnly(ctx, false) }); err != nil {
		return stepFailed(fsm.ResultFailed, "read_only off on %s: %v", target, err)
	}
	if rerr != nil {
		return stepWarning("%s promoted; position unread: %v", target, rerr)
	}
	d := target + " promoted, read_only=OFF" + semi
	if !in.ReadOnly {
		return stepOK("%s; its binlog coordinate is not journalled: %s was writable already when read (a resumed promote)", d, target)
	}
	if p, err := in.BinlogPosition(); err == nil {
		d += positionMarker + p.String()
	}
	if in.MasterStatus != nil {
		d += "; " + binlogMarker + in.MasterStatus.String()
	}
	return stepOK("%s", d)
}

// positionMarker prefixes, in the promote step's detail, the new master's
// replication position (a MariaDB GTID position or a coordinate) when it
// was promoted, read with binlogMarker's coordinate.
const positionMarker = "; position "

// promotedPosition reads positionMarker back from a record's promote step.
func promotedPosition(rec fsm.Record) (string, bool) {
	s, ok := promotedStep(rec)
	if !ok {
		return "", false
	}
	_, after, found := strings.Cut(s.Detail, positionMarker)
	if !found {
		return "", false
	}
	p, _, _ := strings.Cut(after, ";")
	return strings.TrimSpace(p), true
}

// provenReadTimeout bounds promote's look at a server whose fence the
// record has proven: a reachable one answers within it, one whose host
// vanished is not waited for (the connect timeout is a second).
const provenReadTimeout = 100 * time.Millisecond

// fenceProven returns the addresses (lower case) the record's fence proved
// fenced, each by its own proof.
func fenceProven(rec fsm.Record) map[string]bool {
	out := map[string]bool{}
	if rec.Fence == nil || rec.Fence.State != fsm.FenceProven {
		return out
	}
	for _, t := range rec.Fence.Targets {
		if t.Proof != "" {
			out[strings.ToLower(t.Address)] = true
		}
	}
	return out
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
		note, err := r.repointOne(ctx, a, h, p)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", a, err))
			continue
		}
		done = append(done, a+note)
	}
	if len(bad) > 0 {
		return stepWarning("replicating from %s: [%s]; failed: %s", target, strings.Join(done, ", "), strings.Join(bad, "; "))
	}
	if len(done) == 0 {
		return stepSkipped("no other replica")
	}
	return stepOK("replicating from %s: %s", target, strings.Join(done, ", "))
}

// repointOne points addr at the new master; note says how it was leveled.
func (r *failoverRun) repointOne(ctx context.Context, addr, host string, port int) (note string, err error) {
	c, in, err := r.read(ctx, addr)
	if err != nil {
		return "", err
	}
	opts, _ := r.changeMasterOptions(in, host, port)
	if !opts.UseGTID && r.rec.Kind == fsm.KindFailover {
		// A switchover's replicas all waited for the old master's last
		// coordinate, as the target did (wait_target): level by
		// construction. A failover's are proven level first.
		if sameAddr(in.MasterKey(), net.JoinHostPort(host, strconv.Itoa(port))) {
			// Repointed by a previous run of this step (a resumed record):
			// pointing it again at the promote coordinate would replay
			// what it has applied since.
			return " (already)", nil
		}
		if err := r.levelWithNewMaster(in); err != nil {
			coord, lerr := r.levelThroughGTID(ctx, c, in, opts)
			if lerr != nil {
				return "", fmt.Errorf("%w; leveling it through MariaDB GTIDs: %w", err, lerr)
			}
			opts.File, opts.Pos, opts.MariaDBMode = coord.File, coord.Pos, ""
			note = fmt.Sprintf(" (leveled by GTID, then at %s)", coord)
		}
	}
	if !opts.UseGTID && opts.File == "" {
		coord, found := promotedCoord(r.rec)
		if !found {
			return "", errors.New("file/position replication but the new master's binlog position was not journalled at promote")
		}
		opts.File, opts.Pos, opts.MariaDBMode = coord.File, coord.Pos, ""
	}
	if err := r.guarded(ctx, func() error { return c.ChangeMaster(ctx, opts) }); err != nil {
		return "", err
	}
	if err := r.guarded(ctx, func() error { return c.StartReplica(ctx, topology.BothThreads) }); err != nil {
		return "", err
	}
	if err := r.waitReplicating(ctx, addr, false); err != nil {
		return "", err
	}
	return note, nil
}

// waitReplicating polls addr, for up to repointWait, until its IO thread
// (and, unless ioOnly, its SQL thread) runs, and fails early once
// replication stopped with an error.
func (r *failoverRun) waitReplicating(ctx context.Context, addr string, ioOnly bool) error {
	wctx, cancel := context.WithTimeout(ctx, repointWait)
	defer cancel()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		_, in, err := r.read(wctx, addr)
		if err == nil && in.Replica != nil {
			rs := in.Replica
			if rs.IORunning == topology.IOYes && (ioOnly || rs.SQLRunning) {
				return nil
			}
			// An IO thread that stopped with an error gave up (one still
			// retrying says Connecting).
			if (rs.LastIOErrno != 0 || rs.LastSQLErrno != 0) && !rs.SQLRunning ||
				rs.LastIOErrno != 0 && rs.IORunning == topology.IONo {
				return fmt.Errorf("replication stopped: IO %q SQL %q", rs.LastIOError, rs.LastSQLError)
			}
		}
		select {
		case <-wctx.Done():
			state := "unknown"
			if err == nil && in.Replica != nil {
				state = fmt.Sprintf("IO=%s SQL=%t %s %s", in.Replica.IORunning, in.Replica.SQLRunning, in.Replica.LastIOError, in.Replica.LastSQLError)
			}
			threads := "threads"
			if ioOnly {
				threads = "IO thread"
			}
			return fmt.Errorf("%s not running after %s: %s", threads, repointWait, state)
		case <-t.C:
		}
	}
}

// errNotLevel means a file/position replica cannot be proven to have
// applied exactly what the new master had when it was promoted.
var errNotLevel = errors.New("not level with the new master")

// levelWithNewMaster proves that a file/position replica has applied
// exactly what the new master had at promote, so that the new master's
// binlog coordinate journalled then is where it must start. Binlog
// coordinates of different servers do not translate into each other, so a
// replica that applied more or less of the old master's binlog than the new
// master did would silently skip or repeat transactions: it is refused, and
// the repoint step says so. Where the salvage step applied the dead
// master's binlog (file/position replication applies it to every replica),
// both the new master and the replica end at its end.
func (r *failoverRun) levelWithNewMaster(in *topology.Instance) error {
	if in.Replica == nil || !sameAddr(in.MasterKey(), r.rec.OldMaster) {
		return fmt.Errorf("%w: file/position replication and %s does not replicate from the old master %s (master %q): its position in the old master's binlog is unknown",
			errNotLevel, in.Key, r.rec.OldMaster, in.MasterKey())
	}
	have := in.Replica.ExecCoord()
	want, found := chosenExec(r.rec)
	if !found {
		return fmt.Errorf("%w: file/position replication and the new master's position in the old master's binlog was not journalled at catch_up", errNotLevel)
	}
	if s := r.rec.Salvage; s != nil && (s.Outcome == fsm.SalvageApplied || s.Outcome == fsm.SalvageNothing) {
		// The salvage brought the new master to the end of the dead
		// master's binlog; a replica it also reached is there too.
		if salvagedOnto(r.rec, in.Key) {
			return nil
		}
		if s.Outcome == fsm.SalvageApplied {
			return fmt.Errorf("%w: the salvage applied the dead master's binlog onto the new master (up to %s) but not onto %s (at %s)",
				errNotLevel, s.Recovered, in.Key, have)
		}
	}
	if have != want {
		return fmt.Errorf("%w: file/position replication: %s applied the old master's binlog up to %s, the new master up to %s; pointing it at the new master's binlog would skip or repeat the transactions between them (level it by hand, then point it at the new master)",
			errNotLevel, in.Key, have, want)
	}
	return nil
}

// chosenExec reads the chosen replica's coordinate in the old master's
// binlog from the catch_up step's detail.
func chosenExec(rec fsm.Record) (topology.BinlogCoord, bool) {
	for i := len(rec.Steps) - 1; i >= 0; i-- {
		s := rec.Steps[i]
		if s.Name != StepCatchUp || (s.Outcome != fsm.OutcomeOK && s.Outcome != fsm.OutcomeWarning && s.Outcome != fsm.OutcomeSkipped) {
			continue
		}
		_, after, found := strings.Cut(s.Detail, execMarker)
		if !found {
			return topology.BinlogCoord{}, false
		}
		c, err := topology.ParseBinlogCoord(strings.Fields(after)[0])
		return c, err == nil
	}
	return topology.BinlogCoord{}, false
}

// salvagedOnto reports whether the salvage step applied the dead master's
// binlog onto addr as one of the other replicas ("addr: N applied").
func salvagedOnto(rec fsm.Record, addr string) bool {
	for i := len(rec.Steps) - 1; i >= 0; i-- {
		s := rec.Steps[i]
		if s.Name == StepSalvage {
			return appliedNote(s.Detail, addr)
		}
	}
	return false
}

// appliedNote finds "addr: <n> applied" in a salvage detail.
func appliedNote(detail, addr string) bool {
	for rest := detail; ; {
		_, after, found := strings.Cut(rest, addr+": ")
		if !found {
			return false
		}
		f := strings.Fields(after)
		if len(f) >= 2 && strings.TrimRight(f[1], ",;") == "applied" {
			if _, err := strconv.Atoi(f[0]); err == nil {
				return true
			}
		}
		rest = after
	}
}

// errNoGTIDLevel means a replica cannot be leveled through MariaDB GTIDs.
var errNoGTIDLevel = errors.New("cannot level through GTIDs")

// levelThroughGTID levels a file/position MariaDB replica that is behind
// the new master, as MHA levels replicas with relay-log diffs: MariaDB
// logs a GTID for every transaction and keeps gtid_slave_pos whatever the
// replication mode, so the replica can fetch what it lacks from the new
// master by GTID (MASTER_USE_GTID=slave_pos) until it has the new master's
// position. Stopped there, its Exec_Master_Log_Pos is a coordinate in the
// new master's binlog at a transaction boundary, exactly where file/
// position replication must resume. It returns that coordinate; the caller
// points the replica there. A replica that is not provably behind or level
// (ahead, or diverged) is left alone.
func (r *failoverRun) levelThroughGTID(ctx context.Context, c Instance, in *topology.Instance, opts topology.ChangeMasterOptions) (topology.BinlogCoord, error) {
	target := chosenOf(r.rec)
	if in.Version.Flavor != topology.MariaDB || in.GTIDSlavePos == "" {
		return topology.BinlogCoord{}, fmt.Errorf("%w: %s is not a MariaDB replica with a gtid_slave_pos", errNoGTIDLevel, in.Key)
	}
	// What it holds, the dead master's transactions a salvage applied
	// outside replication included: a salvage interrupted by a leader
	// change leaves them in its binlog but not in gtid_slave_pos.
	have, err := topology.AppliedMariaDBPos(in.GTIDSlavePos, in.GTIDBinlogState, in.ServerID)
	if err != nil {
		return topology.BinlogCoord{}, fmt.Errorf("%w: %s: %w", errNoGTIDLevel, in.Key, err)
	}
	_, nin, err := r.read(ctx, target)
	if err != nil {
		return topology.BinlogCoord{}, fmt.Errorf("read new master %s: %w", target, err)
	}
	want, err := topology.ParseMariaDBPos(nin.GTIDBinlogPos)
	if err != nil || !nin.LogBin {
		return topology.BinlogCoord{}, fmt.Errorf("%w: new master %s has no GTID binlog position (%q)", errNoGTIDLevel, target, nin.GTIDBinlogPos)
	}
	if o := have.Order(want); o != topology.Behind && o != topology.Equal {
		return topology.BinlogCoord{}, fmt.Errorf("%w: %s applied %s, the new master has %s (%s)", errNoGTIDLevel, in.Key, have, want, o)
	}
	if p, ok := promotedPosition(r.rec); ok && p == have.String() {
		// It holds exactly what the new master held when it was promoted
		// (a salvage gave both the dead master's last transactions): it
		// resumes at the coordinate promote journalled, and has nothing
		// to fetch by GTID, which would leave no coordinate to read.
		if coord, found := promotedCoord(r.rec); found {
			return coord, nil
		}
	}
	if slave, _ := topology.ParseMariaDBPos(in.GTIDSlavePos); have.String() != slave.String() {
		// The server takes a new gtid_slave_pos only with replication
		// stopped. Its IO thread has been since stop_io, so stopping the
		// SQL thread too leaves what it applied (in) as it was.
		if err := r.guarded(ctx, func() error { return c.StopReplica(ctx, topology.BothThreads) }); err != nil {
			return topology.BinlogCoord{}, err
		}
		if err := r.guarded(ctx, func() error { return c.SetGTIDSlavePos(ctx, have.String()) }); err != nil {
			return topology.BinlogCoord{}, err
		}
		r.e.log.Info("gtid_slave_pos advanced over transactions applied outside replication",
			"record", r.id, "instance", in.Key, "from", in.GTIDSlavePos, "to", have.String())
	}
	g := opts
	g.UseGTID, g.MariaDBMode, g.File, g.Pos = true, topology.GTIDSlavePos, "", 0
	if err := c.ChangeMaster(ctx, g); err != nil {
		return topology.BinlogCoord{}, err
	}
	if err := c.StartReplica(ctx, topology.BothThreads); err != nil {
		return topology.BinlogCoord{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, r.e.cfg.ApplyTimeout)
	werr := c.WaitForPosition(wctx, topology.MariaDBGTIDPosition(want))
	cancel()
	if err := c.StopReplica(ctx, topology.BothThreads); err != nil && werr == nil {
		werr = err
	}
	if werr != nil {
		return topology.BinlogCoord{}, fmt.Errorf("replicate %s from %s by GTID up to %s: %w", in.Key, target, want, werr)
	}
	// The IO thread's coordinate is in the new master's binlog; the SQL
	// thread's is once it has applied all the IO thread fetched, so it
	// finishes that first (the new master takes writes meanwhile).
	_, after, err := r.read(ctx, in.Key)
	if err == nil && after.Replica != nil && !after.Replica.RelayLogApplied() {
		wctx, cancel := context.WithTimeout(ctx, r.e.cfg.ApplyTimeout)
		werr := c.StartReplica(wctx, topology.SQLThread)
		if werr == nil {
			werr = c.WaitRelayLogApplied(wctx)
		}
		cancel()
		if werr != nil {
			return topology.BinlogCoord{}, fmt.Errorf("%s: apply what it fetched from %s: %w", in.Key, target, werr)
		}
		_, after, err = r.read(ctx, in.Key)
	}
	if err != nil {
		return topology.BinlogCoord{}, err
	}
	if after.Replica == nil || after.Replica.MasterLogFile == "" || !after.Replica.RelayLogApplied() {
		return topology.BinlogCoord{}, fmt.Errorf("%s: no applied coordinate in %s's binlog after leveling", in.Key, target)
	}
	return after.Replica.ExecCoord(), nil
}
