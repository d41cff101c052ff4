package recovery

import (
	"context"
	"database/sql"
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
	lock   *sql.Conn
	lockID uint64
	// agents are the host agents' clients this run made, by URL: the fence
	// step asks them every second while it waits.
	agents map[string]FenceAgent
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

// stopIO stops every reachable replica's IO thread so positions stop moving.
func (r *failoverRun) stopIO(ctx context.Context) stepResult {
	var done, bad []string
	for _, a := range r.replicas() {
		c, err := r.conn(ctx, a)
		if err == nil {
			err = c.StopReplica(ctx, topology.IOThread)
		}
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", a, err))
			continue
		}
		done = append(done, a)
	}
	if len(done) == 0 {
		return stepFailed(fsm.ResultFailed, "no replica reachable: %s", strings.Join(bad, "; "))
	}
	if len(bad) > 0 {
		return stepWarning("IO thread stopped on %s; not on %s", strings.Join(done, ", "), strings.Join(bad, "; "))
	}
	return stepOK("IO thread stopped on %s", strings.Join(done, ", "))
}

// waitRelay waits, in parallel and bounded by apply_timeout, for every
// reachable replica to apply the relay log it holds. The SQL thread is
// started first (idempotent): a replica whose applier was stopped still
// holds received transactions that must not be lost, and one stopped by an
// error fails again and is refused by selection with that error. A replica
// that does not finish is reported; selection then judges it on what it
// received.
func (r *failoverRun) waitRelay(ctx context.Context) stepResult {
	wctx, cancel := context.WithTimeout(ctx, r.e.cfg.ApplyTimeout)
	defer cancel()
	type res struct {
		addr string
		err  error
	}
	var targets []Instance
	var addrs, bad []string
	for _, a := range r.replicas() {
		c, err := r.conn(ctx, a)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s unreachable: %v", a, err))
			continue
		}
		targets, addrs = append(targets, c), append(addrs, a)
	}
	out := make([]res, len(targets))
	var wg sync.WaitGroup
	for i, c := range targets {
		wg.Add(1)
		go func() { // owned by this step: waited for below, bounded by wctx
			defer wg.Done()
			err := c.StartReplica(wctx, topology.SQLThread)
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
	if len(bad) > 0 {
		return stepWarning("relay log applied on [%s]; not on %s", strings.Join(applied, ", "), strings.Join(bad, "; "))
	}
	return stepOK("relay log applied on %s", strings.Join(applied, ", "))
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

// observe reads every replica (never the old master) into selection inputs.
func (r *failoverRun) observe(ctx context.Context) []CandidateInput {
	return observeCandidates(ctx, r.cc, r.rec.OldMaster, func(ctx context.Context, a string) (*topology.Instance, error) {
		_, in, err := r.read(ctx, a)
		return in, err
	})
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
			c.Reachable, c.LogBin, c.LogSlaveUpdates = true, in.LogBin, in.LogSlaveUpdates
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
// failover never picks a different new master.
func (r *failoverRun) selectMaster(ctx context.Context) stepResult {
	if c := chosenOf(r.rec); c != "" {
		return stepOK("keeping the journalled choice %s", c)
	}
	cands := r.observe(ctx)
	reachable := 0
	for _, c := range cands {
		if c.Reachable {
			reachable++
		}
	}
	sel, err := SelectNewMaster(cands, SelectRules{MaxLag: r.cc.MaxLag, NeedOthersFollow: reachable > 1, Target: manualTarget(r.rec)})
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
