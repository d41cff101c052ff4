package recovery

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/topology"
)

// failoverRun is one leader's run of one record: connections it opened and
// the record as last read. Everything a step needs from an earlier step is
// read from the journal (rec) or from the instances, so any step can be the
// first one a new leader runs.
type failoverRun struct {
	e     *Executor
	cc    ClusterConfig
	id    uint64
	log   *slog.Logger // the executor's, with cluster= and record=
	rec   fsm.Record
	conns map[string]Instance
	// lock is a switchover's session holding the old master's global read
	// lock (nil otherwise).
	lock   *topology.GlobalReadLock
	lockID uint64
	// lost is set by guard when a leadership check right before a
	// role-changing statement failed: the step stops there and the
	// executor leaves the record open for the next leader.
	lost error
	// agents are the host agents' clients this run made, by URL: the fence
	// step asks them every second while it waits.
	agents map[string]FenceAgent
	// lockSession is the session prepared for lock (its id is lockID)
	// before the write block starts; nil once used or released.
	lockSession *topology.GlobalReadLock
	// reach tells salvage whether the old master's agent accepts
	// connections (nil when no probe runs).
	reach *agentReach
}

// guarded runs stmt, a statement that changes a server's role (read_only
// off, change master, start or reset replication), only after confirming
// leadership right before it. A step can run for a long time (catch-up,
// waits); a leader deposed meanwhile, or paused and resumed after its
// successor took the record over, must not touch a server again. Once a
// check has failed every later statement of the run is refused without
// asking again.
func (r *failoverRun) guarded(ctx context.Context, stmt func() error) error {
	if r.lost != nil {
		return r.lost
	}
	if err := r.e.group.VerifyLeader(ctx); err != nil {
		r.lost = fmt.Errorf("%w: %w", ErrLeadershipLost, err)
		return r.lost
	}
	return stmt()
}

func (r *failoverRun) closeConns() {
	for _, c := range r.conns {
		_ = c.Close()
	}
}

// conn returns a connection to addr, dialing once per run.
func (r *failoverRun) conn(ctx context.Context, addr string) (Instance, error) {
	if c, ok := r.conns[addr]; ok {
		return c, nil
	}
	c, err := r.e.dial(ctx, addr, topology.Credentials{User: r.cc.User, Password: r.cc.Password})
	if err != nil {
		return nil, err
	}
	r.conns[addr] = c
	return c, nil
}

// read reads addr, dropping a connection that fails so the next step dials anew.
func (r *failoverRun) read(ctx context.Context, addr string) (Instance, *topology.Instance, error) {
	c, err := r.conn(ctx, addr)
	if err != nil {
		return nil, nil, err
	}
	in, err := c.Read(ctx)
	if err != nil {
		_ = c.Close()
		delete(r.conns, addr)
		return nil, nil, err
	}
	return c, in, nil
}

// replicas are the configured instances other than the old master.
func (r *failoverRun) replicas() []string {
	var out []string
	for _, in := range r.cc.Instances {
		if !strings.EqualFold(in.Address, r.rec.OldMaster) {
			out = append(out, in.Address)
		}
	}
	return out
}

func (r *failoverRun) step(ctx context.Context, name string) stepResult {
	switch name {
	case StepFence:
		return r.fence(ctx)
	case StepStopIO:
		return r.stopIO(ctx)
	case StepWaitRelay:
		return r.waitRelay(ctx)
	case StepSelect:
		return r.selectMaster(ctx)
	case StepCatchUp:
		return r.catchUp(ctx)
	case StepSalvage:
		return r.salvage(ctx)
	case StepPromote:
		return r.promote(ctx)
	case StepRepoint:
		return r.repoint(ctx)
	case StepIPStart:
		return r.ipStart(ctx)
	case StepReport:
		return r.report(ctx)
	default:
		return stepFailed(fsm.ResultFailed, "unknown step %q", name)
	}
}

// hostPort splits an address for hook arguments; a bad one keeps the whole
// address as host.
func hostPort(addr string) (string, int) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

func (r *failoverRun) hookHosts(newMaster string) HookHosts {
	oh, op := hostPort(r.rec.OldMaster)
	h := HookHosts{OrigHost: oh, OrigIP: oh, OrigPort: op, OrigUser: r.cc.User, OrigPassword: r.cc.Password, OrigSSHUser: r.cc.SSHUser}
	if newMaster != "" {
		nh, np := hostPort(newMaster)
		h.NewHost, h.NewIP, h.NewPort, h.NewUser, h.NewPassword, h.NewSSHUser = nh, nh, np, r.cc.User, r.cc.Password, r.cc.SSHUser
	}
	return h
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error() + " "
}

// tail keeps the end of a hook's output for the journal.
func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		s = "..." + s[len(s)-300:]
	}
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

// waitRelay waits, in parallel and bounded by apply_timeout, for the
// reachable replicas the choice can need (relayWaitTargets) to apply the
// relay log they hold. The SQL thread is started first (idempotent): a
// replica whose applier was stopped still holds received transactions that
// must not be lost, and one stopped by an error fails again and is refused
// by selection with that error. A delayed (MASTER_DELAY) replica, or a
// no_master one that received less than another, is not waited for: it is
// neither promoted nor caught up from, and is repointed later. A replica
// that does not finish is reported; select makes sure the one it chooses
// has applied everything before anything purges its relay log.
func (r *failoverRun) waitRelay(ctx context.Context) stepResult {
	wctx, cancel := context.WithTimeout(ctx, r.e.cfg.ApplyTimeout)
	defer cancel()
	type res struct {
		addr string
		err  error
	}
	var bad, order []string
	ins := map[string]*topology.Instance{}
	for _, a := range r.replicas() {
		_, in, err := r.read(ctx, a)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s unreachable: %v", a, err))
			continue
		}
		ins[a] = in
		order = append(order, a)
	}
	need, skipped := relayWaitTargets(r.cc, ins, order)
	var targets []Instance
	var addrs []string
	var running []bool
	for _, a := range need {
		c, err := r.conn(ctx, a)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s unreachable: %v", a, err))
			continue
		}
		targets, addrs = append(targets, c), append(addrs, a)
		running = append(running, ins[a] != nil && ins[a].Replica != nil && ins[a].Replica.SQLRunning)
	}
	out := make([]res, len(targets))
	var wg sync.WaitGroup
	for i, c := range targets {
		wg.Add(1)
		go func() { // owned by this step: waited for below, bounded by wctx
			defer wg.Done()
			// START SLAVE SQL_THREAD only where the applier is not
			// running: the statement waits for a STOP that stop_io left
			// pending on a reconnecting IO thread (up to 2 s on MariaDB),
			// and a running applier needs no start.
			err := applierFailed(ins[addrs[i]])
			if err == nil && !running[i] {
				err = c.StartReplica(wctx, topology.SQLThread)
			}
			if err == nil {
				err = c.WaitRelayLogApplied(wctx)
			}
			out[i] = res{addrs[i], err}
		}()
	}
	wg.Wait()
	var applied []string
	for _, o := range out {
		if o.err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", o.addr, o.err))
		} else {
			applied = append(applied, o.addr)
		}
	}
	note := ""
	if len(skipped) > 0 {
		note = "; not waited for (never chosen nor caught up from, repointed later): " + strings.Join(skipped, ", ")
	}
	if len(bad) > 0 {
		return stepWarning("relay log applied on [%s]; not on %s%s", strings.Join(applied, ", "), strings.Join(bad, "; "), note)
	}
	return stepOK("relay log applied on [%s]%s", strings.Join(applied, ", "), note)
}

// manualEvidence decodes a manual record's evidence.
func manualEvidence(rec fsm.Record) (ManualEvidence, bool) {
	var ev ManualEvidence
	if rec.Trigger != "manual" || len(rec.Evidence) == 0 || json.Unmarshal(rec.Evidence, &ev) != nil {
		return ManualEvidence{}, false
	}
	return ev, true
}

// manualTarget is the operator's --to journalled in a manual record.
func manualTarget(rec fsm.Record) string {
	ev, _ := manualEvidence(rec)
	return ev.Target
}

// observe reads every replica (never the old master) into selection inputs,
// with errant transactions and MASTER_DELAY marked. It returns the
// instances read, by address.
func (r *failoverRun) observe(ctx context.Context) ([]CandidateInput, map[string]*topology.Instance) {
	ins := map[string]*topology.Instance{}
	cands := observeCandidates(ctx, r.cc, r.rec.OldMaster, func(ctx context.Context, a string) (*topology.Instance, error) {
		_, in, err := r.read(ctx, a)
		if err == nil {
			ins[a] = in
		}
		return in, err
	})
	if r.cc.useGTID() {
		markErrant(cands, ins, r.rec.OldMaster, lastSeenOf(r.rec.Evidence, r.rec.OldMaster).Position, r.log)
	}
	return cands, ins
}

// markErrant marks the candidates that have transactions neither the dead
// master (as last seen) nor any other replica has (failoverErrant). A
// candidate whose GTIDs cannot be compared is left unmarked.
func markErrant(cands []CandidateInput, ins map[string]*topology.Instance, oldMaster, lastSeen string, log *slog.Logger) {
	var order []string
	for _, c := range cands {
		order = append(order, c.Address)
	}
	errant := errantReplicas(ins, order, oldMaster, lastSeen, log)
	for i, c := range cands {
		if d, ok := errant[c.Address]; ok {
			cands[i].Errant, cands[i].ErrantDetail = true, d
		}
	}
}

// errantReplicas returns, by address, the errant GTIDs of every replica in
// order that has some, with what they were compared with. A replica whose
// GTIDs cannot be parsed is logged and left unmarked: its position cannot
// be ranked either, which keeps it from being chosen.
func errantReplicas(ins map[string]*topology.Instance, order []string, oldMaster, lastSeen string, log *slog.Logger) map[string]string {
	holdings := map[string]gtidHolding{}
	for _, a := range order {
		if in := ins[a]; in != nil {
			if h, ok := holdingOf(in, oldMaster); ok {
				holdings[a] = h
			}
		}
	}
	out := map[string]string{}
	for _, a := range order {
		h, ok := holdings[a]
		if !ok {
			continue
		}
		var peers []gtidHolding
		for _, o := range order {
			if p, ok := holdings[o]; ok && o != a {
				peers = append(peers, p)
			}
		}
		e, err := failoverErrant(h, lastSeen, peers)
		if err != nil {
			log.Warn("errant GTIDs not computed", "replica", a, "err", err)
			continue
		}
		if e == "" {
			continue
		}
		seen := "unknown"
		if lastSeen != "" {
			seen = lastSeen
		}
		out[a] = fmt.Sprintf("%s (on neither the dead master, last seen at %s, nor any other replica); never promoted nor caught up from, so whatever else only it has is not recovered", e, seen)
	}
	return out
}

// observeCandidates turns what the replicas report into selection inputs.
// Positions are what each replica received (MHA's rule); after wait_relay
// they are also what it applied.
func observeCandidates(ctx context.Context, cc ClusterConfig, oldMaster string, read func(context.Context, string) (*topology.Instance, error)) []CandidateInput {
	var out []CandidateInput
	for i, ci := range cc.Instances {
		if strings.EqualFold(ci.Address, oldMaster) {
			continue
		}
		c := CandidateInput{Address: ci.Address, Zone: ci.Zone, ConfigOrder: i, CandidateMaster: ci.CandidateMaster,
			NoMaster: ci.NoMaster, CheckReplDelay: ci.CheckReplDelay, ReplicationMode: cc.ReplicationMode}
		in, err := read(ctx, ci.Address)
		if err == nil {
			c.Reachable, c.LogBin, c.LogSlaveUpdates, c.Filters = true, in.LogBin, in.LogSlaveUpdates, in.ReplicationFilters
			c.Delay = delayOf(in)
			if in.Replica != nil {
				c.IOError, c.SQLError = in.Replica.LastIOError, in.Replica.LastSQLError
				switch {
				case in.Replica.SecondsBehind != nil:
					c.Lag, c.LagKnown = time.Duration(*in.Replica.SecondsBehind)*time.Second, true
				case in.Replica.RelayLogApplied() && in.Replica.SQLDelay == 0:
					// The server reports no lag once the IO thread is
					// stopped (stop_io) or lost its dead master. A replica
					// that applied all it received has no backlog, which is
					// what check_repl_delay guards against (MHA measures
					// relay log left, not seconds); being behind other
					// replicas is catch_up's business.
					c.Lag, c.LagKnown = 0, true
				}
			}
			if p, err := in.ReadPosition(); err == nil {
				c.Position, c.PositionKnown = p, true
			}
		}
		out = append(out, c)
	}
	return out
}

// selectMaster chooses the new master and journals every candidate with its
// reason. A record that already journals a choice keeps it: a resumed
// failover never picks a different new master. Selection ranks replicas by
// what they received; before a choice is journalled, the chosen replica and
// the one it catches up from must have applied all of it (applyRelay),
// because catch_up and promote purge relay logs. One that cannot is refused
// as master (the reason says why), ranked by what it applied, and the
// choice is made again.
func (r *failoverRun) selectMaster(ctx context.Context) stepResult {
	if c := chosenOf(r.rec); c != "" {
		return stepOK("keeping the journalled choice %s", c)
	}
	cands, ins := r.observe(ctx)
	reachable := 0
	for _, c := range cands {
		if c.Reachable {
			reachable++
		}
	}
	rules := SelectRules{MaxLag: r.cc.MaxLag, NeedOthersFollow: reachable > 1, Target: manualTarget(r.rec)}
	var sel Selection
	var err error
	for range len(cands) + 1 {
		sel, err = SelectNewMaster(cands, rules)
		if err != nil || !r.refuseBacklogged(ctx, cands, ins, sel.Chosen, sel.CatchUpFrom) {
			break
		}
	}
	if len(sel.Considered) > 0 {
		if aerr := r.e.apply(ctx, fsm.CandidatesType, fsm.Candidates{RecordID: r.id, Candidates: sel.FSMCandidates()}); aerr != nil {
			return stepFailed(fsm.ResultFailed, "journal candidates: %v", aerr)
		}
	}
	if err != nil {
		return stepFailed(fsm.ResultFailed, "%v", err)
	}
	d := "chose " + sel.Chosen
	if sel.CatchUpFrom != "" {
		d += "; catch up from " + sel.CatchUpFrom
	}
	return stepOK("%s", d)
}

// refuseBacklogged makes the replicas a selection relies on apply their
// relay logs. A replica that cannot is marked in cands (RelayBacklog, and
// its position becomes what it applied); it reports whether any was, so
// the caller selects again.
func (r *failoverRun) refuseBacklogged(ctx context.Context, cands []CandidateInput, ins map[string]*topology.Instance, addrs ...string) bool {
	changed := false
	for _, a := range addrs {
		i := slices.IndexFunc(cands, func(c CandidateInput) bool { return c.Address == a })
		if a == "" || i < 0 || cands[i].RelayBacklog != "" {
			continue
		}
		err := r.applyRelay(ctx, a)
		if err == nil {
			continue
		}
		changed = true
		cands[i].RelayBacklog = err.Error()
		cands[i].PositionKnown = false
		if in := ins[a]; in != nil {
			if _, fresh, rerr := r.read(ctx, a); rerr == nil {
				in = fresh
			}
			if p, perr := in.ExecutedPosition(); perr == nil {
				cands[i].Position, cands[i].PositionKnown = p, true
			}
		}
		r.log.Warn("replica cannot apply its relay log: not promoted", "replica", a, "err", err)
	}
	return changed
}

// ipStart moves the writer address with the ip hook. The new master is
// already promoted, so a failing hook is a warning the record keeps, not a
// reason to leave the record open or failed.
func (r *failoverRun) ipStart(ctx context.Context) stepResult {
	path := r.cc.Hooks.IPFailover
	if path == "" {
		return stepSkipped("no ip_failover hook")
	}
	call, err := IPFailoverArgs(CommandStart, r.hookHosts(chosenOf(r.rec)))
	if err != nil {
		return stepWarning("ip_failover: %v", err)
	}
	res := r.runHook(ctx, HookIPFailover, path, call.Args, call.Env...)
	if res.Action(HookIPFailover) != Proceed {
		return stepWarning("ip_failover --command=start exit %d: %s%s: the writer address may not have moved", res.ExitCode, errText(res.Err), tail(res.Output))
	}
	return stepOK("ip_failover --command=start ok")
}

// report runs the report hook; its failure is only logged in the step.
func (r *failoverRun) report(ctx context.Context) stepResult {
	path := r.cc.Hooks.Report
	if path == "" {
		return stepSkipped("no report hook")
	}
	target := chosenOf(r.rec)
	others := slices.DeleteFunc(r.replicas(), func(a string) bool { return a == target })
	subject := fmt.Sprintf("quorumha: %s failover %s -> %s", r.cc.Name, r.rec.OldMaster, target)
	body := fmt.Sprintf("record %d: master %s replaced by %s", r.id, r.rec.OldMaster, target)
	res := r.runHook(ctx, HookReport, path, ReportArgs(r.rec.OldMaster, target, others, r.cc.Conf, subject, body))
	if res.Err != nil || res.ExitCode != 0 {
		return stepWarning("report hook exit %d: %s%s", res.ExitCode, errText(res.Err), tail(res.Output))
	}
	return stepOK("report hook ok")
}
