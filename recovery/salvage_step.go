package recovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/topology"
)

// salvage runs after catch_up and before promote: the chosen replica is
// level with every surviving server and still read-only (the controller's
// administrative account writes through read_only: MariaDB's READ ONLY
// ADMIN, MySQL's SUPER). It applies the transactions found only in the dead
// master's binlog and journals a report (fsm.Salvage) either way. It never
// fails the failover: an agent that does not answer within SalvageTimeout,
// or a failed apply, ends the step with a warning and the possible loss
// window in the report, because a new master without those transactions is
// better than no master.
func (r *failoverRun) salvage(ctx context.Context) stepResult {
	started := time.Now()
	old, target := r.rec.OldMaster, chosenOf(r.rec)
	rep := fsm.Salvage{RecordID: r.id, From: old, Target: target, Agent: r.cc.agentOf(old)}
	finish := func(res stepResult) stepResult {
		rep.Took = time.Since(started)
		rep.At = r.e.cfg.Now()
		if rep.Error != "" {
			rep.Error = tail(rep.Error)
		}
		if err := r.e.apply(ctx, fsm.SalvageType, rep); err != nil {
			r.e.log.Warn("salvage report not journalled", "record", r.id, "err", err)
		}
		return res
	}

	_, tin, err := r.read(ctx, target)
	if err != nil {
		return stepFailed(fsm.ResultFailed, "chosen %s unreachable: %v", target, err)
	}
	if _, err := tin.ExecutedPosition(); err != nil {
		return stepFailed(fsm.ResultFailed, "position of %s: %v", target, err)
	}
	rep.Before = positionText(tin)
	seen := lastSeenOf(r.rec.Evidence, old)
	rep.MasterLastSeen = seen.String()
	lost := func(why string) string { return lossWindow(why, old, rep.Before, seen) }
	switch {
	case rep.Agent == "":
		rep.Outcome = fsm.SalvageNoAgent
		rep.LossWindow = lost("no binlog agent configured for " + old)
		return finish(stepSkipped("%s", rep.LossWindow))
	case r.e.cfg.Agents == nil || r.e.cfg.ApplyBinlog == nil:
		rep.Outcome = fsm.SalvageNoAgent
		rep.LossWindow = lost("binlog salvage is not wired into this controller")
		return finish(stepSkipped("%s", rep.LossWindow))
	case tin.Version.Flavor == topology.MySQL:
		rep.Outcome = fsm.SalvageNotPossible
		rep.LossWindow = lost("binlog salvage supports MariaDB only so far")
		return finish(stepWarning("%s", rep.LossWindow))
	}
	if !r.cc.useGTID() && r.salvageRan() {
		// With file/position replication nothing tells which salvaged
		// transactions a crashed predecessor already applied; applying
		// them twice would be worse than missing them.
		rep.Outcome = fsm.SalvageNotPossible
		rep.LossWindow = lost("a previous salvage was interrupted and file/position replication cannot tell what it applied")
		return finish(stepWarning("%s", rep.LossWindow))
	}

	if r.reach != nil {
		// The probe started with the failover; it has usually decided by
		// now. An agent whose host accepted no connection for the whole
		// connect timeout is given up without spending salvage_timeout on
		// it: the host vanished or the agent is down, and waiting cannot
		// bring its binlog back within the failover.
		wctx, cancel := context.WithTimeout(ctx, 2*r.e.cfg.SalvageConnectTimeout+agentReachRetry)
		decided, reachable, why := r.reach.wait(wctx)
		cancel()
		if decided && !reachable {
			rep.Outcome, rep.Error = fsm.SalvageUnreachable, why
			rep.LossWindow = lost(fmt.Sprintf("agent %s unreachable (%s)", rep.Agent, why))
			return finish(stepWarning("%s", rep.LossWindow))
		}
	}
	ag, err := r.e.cfg.Agents(r.cc.Name, rep.Agent)
	if err != nil {
		rep.Outcome, rep.Error = fsm.SalvageFailed, err.Error()
		rep.LossWindow = lost("agent client: " + err.Error())
		return finish(stepWarning("%s", rep.LossWindow))
	}
	actx, cancel := context.WithTimeout(ctx, r.e.cfg.SalvageTimeout)
	defer cancel()
	running := false
	if t, err := ag.Tail(actx); err != nil {
		rep.Outcome, rep.Error = fsm.SalvageUnreachable, err.Error()
		rep.LossWindow = lost(fmt.Sprintf("agent %s did not answer within %s (%v)", rep.Agent, r.e.cfg.SalvageTimeout, err))
		return finish(stepWarning("%s", rep.LossWindow))
	} else {
		rep.MasterLast = t.GTID
		if rep.MasterLast == "" {
			rep.MasterLast = fmt.Sprintf("%s:%d", t.File, t.Pos)
		}
		running = t.ServerRunning != nil && *t.ServerRunning
	}

	targets := []string{target}
	if !r.cc.useGTID() {
		// Without GTIDs the new master's binlog coordinate cannot tell the
		// others what it got from the salvage, so each replica gets the
		// dead master's binlog from its own coordinate on, as MHA does.
		for _, a := range r.replicas() {
			if a != target {
				targets = append(targets, a)
			}
		}
	}
	var notes []string
	for i, addr := range targets {
		var known *topology.Instance
		if i == 0 {
			known = tin // read above; nothing has written to it since
		}
		res, err := r.salvageOnto(ctx, actx, ag, addr, known)
		if i == 0 {
			rep.Applied, rep.GTIDs, rep.Skipped, rep.Bytes = len(res.applied), res.applied, res.skipped, res.bytes
			rep.Recovered = res.after
		}
		if err != nil {
			if i > 0 {
				notes = append(notes, fmt.Sprintf("%s: %v", addr, err))
				continue
			}
			rep.Outcome, rep.Error = fsm.SalvageFailed, err.Error()
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				rep.Outcome = fsm.SalvageUnreachable
			}
			rep.LossWindow = lost(fmt.Sprintf("salvage onto %s failed after %d applied (%v)", addr, len(res.applied), err))
			return finish(stepWarning("%s", rep.LossWindow))
		}
		if i > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d applied", addr, len(res.applied)))
			// TEST-ONLY (0 in production): a window in which the leader
			// can die with the dead master's binlog applied onto a replica
			// outside replication and no salvage report journalled. A
			// deposed leader's ends early; its journal writes then fail.
			if r.e.cfg.SalvagePause > 0 {
				_ = sleepCtx(ctx, r.e.cfg.SalvagePause)
			}
		}
	}
	rep.Outcome = fsm.SalvageApplied
	if rep.Applied == 0 {
		rep.Outcome = fsm.SalvageNothing
	}
	detail := fmt.Sprintf("%d transactions (%d bytes) salvaged from %s's binlog via %s onto %s: %s; %s had %s, %s now has %s",
		rep.Applied, rep.Bytes, old, rep.Agent, target, summarizeGTIDs(rep.GTIDs), old, rep.MasterLast, target, rep.Recovered)
	if rep.Applied == 0 {
		detail = fmt.Sprintf("nothing to salvage: %s already has every complete transaction of %s's binlog (read via %s; last %s)",
			target, old, rep.Agent, orNone(rep.MasterLast))
	}
	for _, s := range rep.Skipped {
		detail += fmt.Sprintf("; skipped %d bytes at %s:%d (%s)", s.Bytes, s.File, s.Start, s.Reason)
	}
	if len(notes) > 0 {
		detail += "; other replicas: " + strings.Join(notes, ", ")
	}
	if running {
		// The controllers found it dead, yet its process lives (hung, or
		// refusing every client): it may still commit after this read. The
		// fence step's shutdown hook is what stops it for good.
		return finish(stepWarning("%s; the agent reports %s's server process still running: it may commit more after this salvage (configure the shutdown hook to stop it)", detail, old))
	}
	return finish(stepOK("%s", detail))
}

// lossWindow says what a failover without (all of) the salvage may lose:
// what the dead master was last seen to have against what the survivors have.
func lossWindow(why, old, have string, seen lastSeen) string {
	if seen.Position == "" {
		return fmt.Sprintf("%s: transactions %s committed after %s (the newest position any surviving server had) are lost if there were any; its own last position is unknown",
			why, old, have)
	}
	n, counted := lostBetween(seen.Position, have)
	switch {
	case counted && n == 0:
		return fmt.Sprintf("%s: %s was last seen at %s, which the survivors have (%s): only what it committed after that probe, if anything, is lost",
			why, old, seen, have)
	case counted:
		return fmt.Sprintf("%s: %s was last seen at %s but the survivors have %s: at least %d committed transactions are lost (and whatever it committed after that probe)",
			why, old, seen, have, n)
	default:
		return fmt.Sprintf("%s: %s was last seen at %s, the survivors have %s: the transactions between them are lost", why, old, seen, have)
	}
}

// agentOf returns the agent URL configured for addr ("" if none).
func (c ClusterConfig) agentOf(addr string) string {
	for _, in := range c.Instances {
		if strings.EqualFold(in.Address, addr) {
			return in.Agent
		}
	}
	return ""
}

// salvageRan reports whether this record journalled an earlier salvage
// attempt. The executor hands a step the record as it was read before the
// step's own begin was journalled, so any salvage step in it is a
// predecessor's.
func (r *failoverRun) salvageRan() bool {
	return slices.ContainsFunc(r.rec.Steps, func(s fsm.Step) bool { return s.Name == StepSalvage })
}

type salvageResult struct {
	applied []string
	skipped []fsm.SkippedTrx
	bytes   int64
	after   string
}

// salvageOnto applies to addr what the dead master's binlog has beyond addr's
// own position (in, when the caller has just read it; nil reads it). actx
// bounds the agent calls, ctx the apply.
func (r *failoverRun) salvageOnto(ctx, actx context.Context, ag BinlogAgent, addr string, in *topology.Instance) (salvageResult, error) {
	var res salvageResult
	if in == nil {
		var err error
		if _, in, err = r.read(ctx, addr); err != nil {
			return res, fmt.Errorf("read %s: %w", addr, err)
		}
	}
	from, err := salvageStart(in, r.cc.useGTID())
	if err != nil {
		return res, err
	}
	scans, err := fetchScans(actx, ag, from)
	if err != nil {
		return res, err
	}
	plan, err := selectMissing(from, scans)
	if err != nil {
		return res, err
	}
	res.skipped = plan.Skipped
	trxs := plan.trxs()
	if len(trxs) == 0 {
		res.after = positionText(in)
		return res, nil
	}
	dir, err := os.MkdirTemp("", "quorumha-salvage-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	files, n, err := writePlan(actx, ag, plan, dir)
	res.bytes = n
	if err != nil {
		return res, err
	}
	actxApply, cancel := context.WithTimeout(ctx, r.e.cfg.ApplyTimeout)
	defer cancel()
	aerr := r.e.cfg.ApplyBinlog(actxApply, addr, topology.Credentials{User: r.cc.User, Password: r.cc.Password}, in.Version.Flavor, files)
	_, after, rerr := r.read(ctx, addr)
	if rerr == nil {
		res.after = positionText(after)
	}
	// What landed: with GTIDs, every salvaged GTID the server now has.
	switch {
	case !from.GTID && aerr == nil:
		for _, t := range trxs {
			res.applied = append(res.applied, trxID(t))
		}
	case from.GTID && rerr == nil:
		has := mariaDBHave(after)
		for _, t := range trxs {
			if g, err := topology.ParseMariaDBPos(t.GTID); err == nil && hasGTID(has, g[0]) {
				res.applied = append(res.applied, t.GTID)
			}
		}
	}
	if !from.GTID && aerr == nil {
		// In the dead master's coordinates, like Before: the replica's own
		// Exec_Master_Log_Pos does not move for transactions a client applied.
		last := trxs[len(trxs)-1]
		res.after = fmt.Sprintf("%s:%d", last.File, last.End)
	}
	switch {
	case aerr != nil:
		return res, aerr
	case rerr != nil:
		return res, fmt.Errorf("read %s after the salvage: %w", addr, rerr)
	case from.GTID && len(res.applied) != len(trxs):
		return res, fmt.Errorf("%s has %d of the %d salvaged GTIDs after applying them", addr, len(res.applied), len(trxs))
	}
	return res, nil
}

func positionText(in *topology.Instance) string {
	if p, err := in.ExecutedPosition(); err == nil && p.Kind == topology.PosMariaDBGTID {
		return mariaDBHave(in).String()
	} else if err == nil {
		return p.String()
	}
	return ""
}

// mariaDBHave is everything a MariaDB server has in its GTID domains: per
// domain the newest of gtid_current_pos and gtid_binlog_pos. A replica's
// gtid_current_pos follows gtid_slave_pos for GTIDs of other server ids, so
// the salvaged transactions (which keep the dead master's server id) show in
// gtid_binlog_pos only; reading both also keeps a resumed salvage from
// applying a transaction twice.
func mariaDBHave(in *topology.Instance) topology.MariaDBPos {
	var out topology.MariaDBPos
	for _, s := range []string{in.GTIDCurrentPos, in.GTIDBinlogPos} {
		p, err := topology.ParseMariaDBPos(s)
		if err != nil {
			continue
		}
		for _, g := range p {
			if i := slices.IndexFunc(out, func(h topology.MariaDBGTID) bool { return h.Domain == g.Domain }); i < 0 {
				out = append(out, g)
			} else if g.Seq > out[i].Seq {
				out[i] = g
			}
		}
	}
	return out
}

// salvageStart is where addr's knowledge of the dead master's binlog ends.
func salvageStart(in *topology.Instance, gtid bool) (salvageFrom, error) {
	p, err := in.ExecutedPosition()
	if err != nil {
		return salvageFrom{}, err
	}
	switch {
	case gtid && p.Kind == topology.PosMariaDBGTID:
		return salvageFrom{GTID: true, Have: mariaDBHave(in)}, nil
	case !gtid && in.Replica != nil && in.Replica.RelayMasterLogFile != "":
		return salvageFrom{Coord: in.Replica.ExecCoord()}, nil
	}
	return salvageFrom{}, fmt.Errorf("%s: no position in the dead master's binlog to salvage from (%s)", in.Key, p)
}

// fetchScans scans the dead master's binlog files from the newest back to the
// one where the server's knowledge ends, and returns them oldest first.
func fetchScans(ctx context.Context, ag BinlogAgent, from salvageFrom) ([]BinlogScan, error) {
	files, err := ag.Files(ctx)
	if err != nil {
		return nil, fmt.Errorf("list binlogs: %w", err)
	}
	var scans []BinlogScan
	for i := len(files) - 1; i >= 0; i-- {
		var off int64
		if !from.GTID && files[i].Name == from.Coord.File {
			off = int64(from.Coord.Pos)
		}
		var have string
		if from.GTID {
			have = from.Have.String()
		}
		sc, err := ag.Scan(ctx, files[i].Name, off, have)
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", files[i].Name, err)
		}
		scans = append(scans, sc)
		done, err := coveredStart(from, sc)
		if err != nil {
			return nil, err
		}
		if done {
			slices.Reverse(scans)
			return scans, nil
		}
	}
	if from.GTID {
		return nil, fmt.Errorf("the dead master's binlogs no longer hold the transactions after %s (purged)", from.Have)
	}
	return nil, fmt.Errorf("binlog %s is not in the dead master's binlog index", from.Coord.File)
}

// writePlan fetches the plan's bytes into one file per binlog file: the
// file's header, then its missing transactions back to back, the way MHA's
// save_binary_logs builds its diff. It returns the paths in order.
func writePlan(ctx context.Context, ag BinlogAgent, plan salvagePlan, dir string) ([]string, int64, error) {
	return writePlanCapped(ctx, ag, plan, dir, MaxSalvageBytes)
}

// MaxSalvageBytes bounds what one salvage downloads from an agent: the
// bytes are applied to the new master with the admin account, and an agent
// (or whoever answers in its place) must not be able to fill the
// controller's disk or hold a failover with an endless stream. Transactions
// only the dead master had are a few seconds of writes, far below it.
const MaxSalvageBytes int64 = 1 << 30

// capWriter fails once more than *left bytes were written through it.
type capWriter struct {
	w     io.Writer
	left  *int64
	limit int64
}

func (c capWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > *c.left {
		return 0, fmt.Errorf("%w of %d bytes", ErrSalvageTooLarge, c.limit)
	}
	n, err := c.w.Write(p)
	*c.left -= int64(n)
	return n, err
}

// writePlanCapped is writePlan with the download bounded by limit bytes.
func writePlanCapped(ctx context.Context, ag BinlogAgent, plan salvagePlan, dir string, limit int64) ([]string, int64, error) {
	var paths []string
	var total int64
	left := limit
	for _, f := range plan.Files {
		path := filepath.Join(dir, filepath.Base(f.Name))
		file, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
		if err != nil {
			return nil, total, err
		}
		out := struct {
			io.Writer
			io.Closer
		}{capWriter{w: file, left: &left, limit: limit}, file}
		n, err := ag.Raw(ctx, f.Name, 0, f.HeaderEnd, out)
		total += n
		for _, rg := range mergeRanges(f.Trxs) {
			if err != nil {
				break
			}
			n, err = ag.Raw(ctx, f.Name, rg[0], rg[1], out)
			total += n
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, total, fmt.Errorf("fetch %s: %w", f.Name, err)
		}
		paths = append(paths, path)
	}
	return paths, total, nil
}

// mergeRanges joins adjacent transactions into byte ranges to fetch.
func mergeRanges(trxs []BinlogTrx) [][2]int64 {
	var out [][2]int64
	for _, t := range trxs {
		if n := len(out); n > 0 && out[n-1][1] == t.Start {
			out[n-1][1] = t.End
			continue
		}
		out = append(out, [2]int64{t.Start, t.End})
	}
	return out
}
