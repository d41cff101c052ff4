package recovery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/quorumha/quorumha/agent"
	"github.com/quorumha/quorumha/fsm"
)

// The fence step (safety rule 3): promote only after a proven fence of every
// server that may still take writes. Its proofs, tried in this order for
// each target: sql (read_only on and every client session killed over SQL),
// agent (the host agent fenced the server, or says its process is not
// running), lease_expired (the master's quorum lease provably lapsed) and
// hook (shutdown / ip_failover stop exited 0). "Unreachable" is never a
// proof: a cut-off master is still writable on its side of the cut.

// FenceAgent is a host agent as the fence step and promotion use it;
// *agent.Client implements it.
type FenceAgent interface {
	// Fence asks the agent to fence its server now.
	Fence(ctx context.Context, req agent.FenceRequest) (agent.FenceStatus, error)
	// ClearFence disarms the agent and forgets its fence.
	ClearFence(ctx context.Context, req agent.FenceRequest) (agent.FenceStatus, error)
	// FenceStatus reads the agent's fence state.
	FenceStatus(ctx context.Context) (agent.FenceStatus, error)
	// Tail is read for ServerRunning from agents that have no fence
	// endpoint (older agents): a server that is not running is fenced.
	Tail(ctx context.Context) (agent.Tail, error)
}

// FenceAgentDialer returns a client for the agent at url with the cluster's
// agent credentials.
type FenceAgentDialer func(cluster, url string) (FenceAgent, error)

// fenceRetry is how often the proofs are tried again while awaiting one.
const fenceRetry = time.Second

// fenceAttemptTimeout bounds one proof's talk to a server or an agent, so
// one black-holed target does not stall the retries of the others.
const fenceAttemptTimeout = 5 * time.Second

// fenceFirstLook bounds the look at a target before its fence hooks run,
// which tells them whether it answered (ip_failover stop or stopssh).
const fenceFirstLook = time.Second

// bestEffortNote is what a best_effort failover without a proof says.
const bestEffortNote = "best_effort: promoted without a proven fence"

// fenceTarget is one server to fence and what this run has found.
type fenceTarget struct {
	addr   string
	proof  string   // "" until one holds
	detail string   // what the proof saw
	why    []string // stable reasons, one per proof that did not hold
	notes  []string // the same with their errors, for the record's detail
	hookOK bool     // a fence hook exited 0 for it in this run
}

func (t *fenceTarget) fail(reason, note string) {
	t.why = append(t.why, reason)
	if note != "" {
		reason += " (" + note + ")"
	}
	t.notes = append(t.notes, reason)
}

// fenceTargets are the servers a failover must fence: its old master and
// every new master that an earlier record of the same incident (back to the
// cluster's last successful failover or switchover) began to promote
// without closing in success, since that server may have been left
// writable. history is the cluster's records, newest first.
func fenceTargets(rec fsm.Record, history []fsm.Record) []string {
	out := []string{rec.OldMaster}
	seen := map[string]bool{strings.ToLower(rec.OldMaster): true}
	for _, h := range history {
		if h.ID >= rec.ID || (h.Kind != fsm.KindFailover && h.Kind != fsm.KindSwitchover) {
			continue
		}
		if h.Result == fsm.ResultSuccess {
			break // the incident began after this record set the master
		}
		if h.IsOpen() || !stepBegan(h, StepPromote) {
			continue
		}
		target := chosenOf(h)
		if ev, ok := switchoverEvidence(h); ok && h.Kind == fsm.KindSwitchover {
			target = ev.Target
		}
		if target != "" && !seen[strings.ToLower(target)] {
			seen[strings.ToLower(target)] = true
			out = append(out, target)
		}
	}
	return out
}

// fence proves every target fenced, or waits for a proof (recovery.fence:
// required) or goes on saying none held (best_effort). The fence hooks run
// once per run, as in MHA; one that fails aborts before anything is
// promoted.
//
// The sql and agent proofs talk to the target and its agent; for a host
// that vanished each costs its full timeout. They run in the background
// while the lease witness, which only reads grants this controller holds,
// is asked every leasePoll: a lapse ends the step within leasePoll of the
// moment it becomes provable, not after the other proofs' timeouts and the
// retry pause (measured: fence 6.0 s -> the lapse itself).
func (r *failoverRun) fence(ctx context.Context) stepResult {
	if fi := r.rec.Fence; fi.Settled() {
		// A new leader resuming the step: the record already says how the
		// fence was settled, and a proof once seen stays (agents never
		// unfence by themselves; a lapsed lease stays lapsed).
		return settledStep(fi, "settled before this leader resumed the step")
	}
	var targets []*fenceTarget
	for _, a := range fenceTargets(r.rec, r.e.state.History(r.cc.Name, 0)) {
		targets = append(targets, &fenceTarget{addr: a})
	}
	var hookNotes []string
	if r.cc.Hooks.IPFailover != "" || r.cc.Hooks.Shutdown != "" {
		// The hooks need to know whether the server answered (stopssh);
		// without hooks the sql proof is tried with the others below.
		for _, t := range targets {
			// Bounded tighter than a proof attempt: a frozen or vanished
			// server must not hold the hooks (which fence it) for the
			// full attempt timeout; the rounds below retry the sql proof.
			lctx, cancel := context.WithTimeout(ctx, fenceFirstLook)
			reachable := r.proveSQL(lctx, t)
			cancel()
			notes, abort := r.fenceHooks(ctx, t, reachable)
			if abort != nil {
				return *abort
			}
			hookNotes = append(hookNotes, notes...)
		}
	}
	lastReason := ""
	if fi := r.rec.Fence; fi != nil && fi.State == fsm.FenceAwaiting {
		lastReason = fi.Reason
	}
	for round := 0; ; round++ {
		began := time.Now()
		if round > 0 {
			if rec, ok := r.e.state.Record(r.id); ok && rec.Fence != nil && rec.Fence.State == fsm.FenceAccepted {
				return settledStep(rec.Fence, "")
			}
		}
		if err := r.fenceRound(ctx, targets); err != nil {
			return stepFailed(fsm.ResultAborted, "%v", err) // ctx ended: Execute leaves the step running
		}
		if done, res := r.fenceSettled(ctx, targets, hookNotes, &lastReason); done {
			return res
		}
		// The pause before the next round still watches the lease.
		lapsed, err := r.pollLease(ctx, targets, began.Add(fenceRetry))
		if err != nil {
			return stepFailed(fsm.ResultAborted, "%v", err)
		}
		if lapsed {
			if done, res := r.fenceSettled(ctx, targets, hookNotes, &lastReason); done {
				return res
			}
		}
	}
}

// leasePoll is how often the fence step asks the lease witness while the
// other proofs are tried or it waits to retry them.
const leasePoll = 50 * time.Millisecond

// fenceRound tries the sql, agent, lease and hook proofs, in that order of
// preference, on every target not proven yet. The sql and agent proofs run
// in one background goroutine on copies of the targets (it alone touches
// the run's connections meanwhile); the lease is asked every leasePoll. A
// lapse of every unproven target's lease ends the round at once (the
// background attempts are cancelled and waited for); otherwise their
// results are taken when they end. It returns ctx's error when ctx ends.
func (r *failoverRun) fenceRound(ctx context.Context, targets []*fenceTarget) error {
	var open, work []*fenceTarget
	for _, t := range targets {
		if t.proof == "" {
			t.why, t.notes = nil, nil
			open = append(open, t)
			work = append(work, &fenceTarget{addr: t.addr, hookOK: t.hookOK})
		}
	}
	if len(open) == 0 {
		return nil
	}
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() { // owned by this round: waited for on every return below
		defer close(done)
		for _, w := range work {
			r.proveSQL(bctx, w)
			if w.proof == "" {
				r.proveAgent(bctx, w)
			}
		}
	}()
	tick := time.NewTicker(leasePoll)
	defer tick.Stop()
	for {
		if r.leaseLapsedAll(open) {
			cancel()
			<-done
			return nil
		}
		select {
		case <-done:
			for i, t := range open {
				w := work[i]
				if w.proof != "" {
					t.proof, t.detail = w.proof, w.detail
					continue
				}
				t.why, t.notes = w.why, w.notes
				if !r.proveLease(t) && t.hookOK {
					t.proof, t.detail = fsm.ProofHook, "fence hook exited 0"
				}
			}
			return nil
		case <-ctx.Done():
			cancel()
			<-done
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// leaseLapsedAll reports whether the lease of every target in open has
// provably lapsed, and then proves them all by it; otherwise it changes
// nothing.
func (r *failoverRun) leaseLapsedAll(open []*fenceTarget) bool {
	if r.e.cfg.Lease == nil {
		return false
	}
	whys := make([]string, len(open))
	for i, t := range open {
		if t.proof != "" {
			continue
		}
		lapsed, why := r.e.cfg.Lease.LeaseLapsed(r.cc.Name, t.addr, r.e.cfg.Now())
		if !lapsed {
			return false
		}
		whys[i] = why
	}
	for i, t := range open {
		if t.proof == "" {
			t.proof, t.detail, t.why, t.notes = fsm.ProofLeaseExpired, whys[i], nil, nil
		}
	}
	return true
}

// pollLease asks the lease witness every leasePoll until deadline; it
// reports true as soon as every unproven target's lease has lapsed (they
// are then proven by it), and ctx's error when ctx ends.
func (r *failoverRun) pollLease(ctx context.Context, targets []*fenceTarget, deadline time.Time) (bool, error) {
	var open []*fenceTarget
	for _, t := range targets {
		if t.proof == "" {
			open = append(open, t)
		}
	}
	if len(open) == 0 || r.e.cfg.Lease == nil {
		return false, sleepCtx(ctx, time.Until(deadline))
	}
	for {
		if r.leaseLapsedAll(open) {
			return true, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false, nil
		}
		if err := sleepCtx(ctx, min(left, leasePoll)); err != nil {
			return false, err
		}
	}
}

// fenceSettled commits the fence state this round found. It reports done
// with the step's result once every target is proven (or best_effort goes
// on without), and commits an awaiting update when the reason changed.
func (r *failoverRun) fenceSettled(ctx context.Context, targets []*fenceTarget, hookNotes []string, lastReason *string) (bool, stepResult) {
	var ft []fsm.FenceTarget
	var reasons, proofs []string
	for _, t := range targets {
		if t.proof != "" {
			ft = append(ft, fsm.FenceTarget{Address: t.addr, Proof: t.proof, Detail: t.detail})
			proofs = append(proofs, fmt.Sprintf("%s: %s (%s)", t.addr, t.proof, t.detail))
			continue
		}
		ft = append(ft, fsm.FenceTarget{Address: t.addr, Detail: strings.Join(t.notes, "; ")})
		reasons = append(reasons, t.addr+": "+strings.Join(t.why, "; "))
	}
	detail := joinNonEmpty(append(proofs, hookNotes...))
	u := fsm.FenceUpdate{RecordID: r.id, At: r.e.cfg.Now(), Targets: ft}
	if len(reasons) == 0 {
		u.State, u.Proof, u.Detail = fsm.FenceProven, targets[0].proof, detail
		if res, failed := r.commitFence(ctx, u); failed {
			return true, res
		}
		return true, stepOK("fenced: %s", detail)
	}
	reason := strings.Join(reasons, "; ")
	var notes []string
	for _, t := range ft {
		if t.Proof == "" {
			notes = append(notes, t.Address+": "+t.Detail)
		}
	}
	u.Reason, u.Proof, u.Detail = reason, fsm.ProofNone, joinNonEmpty(append(notes, detail))
	if r.e.cfg.FenceMode == FenceBestEffort {
		u.State = fsm.FenceUnproven
		if res, failed := r.commitFence(ctx, u); failed {
			return true, res
		}
		return true, stepWarning("%s: %s", bestEffortNote, u.Detail)
	}
	if reason != *lastReason {
		u.State = fsm.FenceAwaiting
		if res, failed := r.commitFence(ctx, u); failed {
			return true, res
		}
		*lastReason = reason
		r.log.Warn("awaiting a fence proof before promoting (recovery.fence: required); "+
			"accept the risk with `quorumha failover --cluster "+r.cc.Name+" --unfenced`", "reason", reason)
	}
	return false, stepResult{}
}

// commitFence journals a fence update. When it cannot, failed is set and
// res ends the step: with the record's settled state when an operator
// accepted in the meantime (the FSM then refuses our update), as aborted
// otherwise (nothing is promoted; a lost leadership leaves the step running
// since Execute checks ctx first).
func (r *failoverRun) commitFence(ctx context.Context, u fsm.FenceUpdate) (res stepResult, failed bool) {
	err := r.e.apply(ctx, fsm.FenceUpdateType, u)
	if err == nil {
		return stepResult{}, false
	}
	if errors.Is(err, fsm.ErrFenceSettled) {
		if rec, ok := r.e.state.Record(r.id); ok && rec.Fence.Settled() {
			return settledStep(rec.Fence, ""), true
		}
	}
	return stepFailed(fsm.ResultAborted, "journal the fence state %s: %v", u.State, err), true
}

// joinNonEmpty joins the non-empty parts with "; ".
func joinNonEmpty(parts []string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}

// settledStep is the fence step's result for a fence the record settled.
func settledStep(fi *fsm.FenceInfo, note string) stepResult {
	if note != "" {
		note = " (" + note + ")"
	}
	switch fi.State {
	case fsm.FenceProven:
		return stepOK("%s", joinNonEmpty([]string{"fenced: proof " + fi.Proof + note, fi.Detail}))
	case fsm.FenceAccepted:
		return stepWarning("no fence proof; %s accepted promoting unfenced%s: %s", fi.By, note, fi.Reason)
	default:
		return stepWarning("%s%s: %s", bestEffortNote, note, fi.Detail)
	}
}

// proveSQL tries the sql proof: read_only on and every client session
// killed, both over SQL. It reports whether the server answered at all (the
// ip hook then gets stopssh).
func (r *failoverRun) proveSQL(ctx context.Context, t *fenceTarget) (reachable bool) {
	actx, cancel := context.WithTimeout(ctx, fenceAttemptTimeout)
	defer cancel()
	c, _, err := r.read(actx, t.addr)
	if err != nil {
		t.fail("sql: unreachable", err.Error())
		return false
	}
	// Together, not one after the other: a commit waiting for a semi-sync
	// ACK holds read_only back until its session is killed.
	killed, err := c.FenceWrites(actx)
	if err != nil {
		r.dropConn(t.addr)
		t.fail("sql: read_only not set or sessions not killed", err.Error())
		return true
	}
	t.proof, t.detail = fsm.ProofSQL, fmt.Sprintf("read_only=ON, killed %d client sessions", len(killed))
	return true
}

// dropConn forgets a connection that failed, so the next try dials anew.
func (r *failoverRun) dropConn(addr string) {
	if c, ok := r.conns[addr]; ok {
		_ = c.Close()
		delete(r.conns, addr)
	}
}

// agentURL is the configured agent of addr ("" = none).
func (r *failoverRun) agentURL(addr string) string {
	for _, in := range r.cc.Instances {
		if strings.EqualFold(in.Address, addr) {
			return in.Agent
		}
	}
	return ""
}

// fenceAgent connects to addr's agent; "" reason means there is one.
func (r *failoverRun) fenceAgent(addr string) (FenceAgent, string, error) {
	url := r.agentURL(addr)
	switch {
	case url == "":
		return nil, "agent: none configured", nil
	case r.e.cfg.FenceAgents == nil:
		return nil, "agent: no agent client", nil
	}
	if ag, ok := r.agents[url]; ok {
		return ag, "", nil
	}
	ag, err := r.e.cfg.FenceAgents(r.cc.Name, url)
	if err != nil {
		return nil, "agent: client", err
	}
	if r.agents == nil {
		r.agents = map[string]FenceAgent{}
	}
	r.agents[url] = ag
	return ag, "", nil
}

func (r *failoverRun) proveAgent(ctx context.Context, t *fenceTarget) bool {
	ag, reason, err := r.fenceAgent(t.addr)
	if ag == nil {
		t.fail(reason, errText(err))
		return false
	}
	actx, cancel := context.WithTimeout(ctx, fenceAttemptTimeout)
	defer cancel()
	st, err := ag.Fence(actx, agent.FenceRequest{Controller: r.e.cfg.NodeID,
		Reason: fmt.Sprintf("failover record %d of %s: fence %s before promoting", r.id, r.cc.Name, t.addr)})
	if agent.IsStatus(err, http.StatusNotFound) || agent.IsStatus(err, http.StatusConflict) {
		// An agent without the fence endpoint (404: older) or without an
		// agent.fence section (409) can still say that its server is not
		// running.
		tail, terr := ag.Tail(actx)
		switch {
		case terr != nil:
			t.fail("agent: cannot fence", terr.Error())
		case tail.ServerRunning == nil:
			t.fail("agent: cannot fence, server state unknown", "")
		case *tail.ServerRunning:
			t.fail("agent: cannot fence, server running", "")
		default:
			t.proof, t.detail = fsm.ProofAgent, "agent says the server is not running"
			return true
		}
		return false
	}
	var apiErr *agent.APIError
	switch {
	case errors.As(err, &apiErr):
		t.fail(fmt.Sprintf("agent: answered HTTP %d", apiErr.Status), apiErr.Message)
		return false
	case err != nil:
		t.fail("agent: unreachable", err.Error())
		return false
	case st.ServerRunning != nil && !*st.ServerRunning:
		t.proof, t.detail = fsm.ProofAgent, "agent says the server is not running"
		return true
	case st.Fenced && len(st.Errors) == 0:
		t.proof, t.detail = fsm.ProofAgent, "agent fenced the server: "+strings.Join(st.Actions, ", ")
		return true
	case st.Fenced:
		t.fail("agent: fence incomplete", strings.Join(st.Errors, "; "))
	default:
		t.fail("agent: not fenced (state "+st.State+")", st.Reason)
	}
	return false
}

func (r *failoverRun) proveLease(t *fenceTarget) bool {
	if r.e.cfg.Lease == nil {
		t.fail("lease: no lease witness", "")
		return false
	}
	lapsed, why := r.e.cfg.Lease.LeaseLapsed(r.cc.Name, t.addr, r.e.cfg.Now())
	if lapsed {
		t.proof, t.detail = fsm.ProofLeaseExpired, why
		return true
	}
	t.fail("lease: not lapsed", why)
	return false
}

// fenceHooks runs the ip_failover hook (stop, or stopssh when the server
// answered and an SSH user is set) and the shutdown hook for one target.
// A hook that fails aborts the failover before anything is promoted, as in
// MHA; one that exits 0 is the hook proof.
func (r *failoverRun) fenceHooks(ctx context.Context, t *fenceTarget, reachable bool) ([]string, *stepResult) {
	var notes []string
	hosts := r.hookHosts("")
	hosts.OrigHost, hosts.OrigPort = hostPort(t.addr)
	hosts.OrigIP = hosts.OrigHost
	stopped := false
	if path := r.cc.Hooks.IPFailover; path != "" {
		cmd := CommandStop
		if reachable && r.cc.SSHUser != "" {
			cmd = CommandStopSSH
		}
		call, err := IPFailoverArgs(cmd, hosts)
		if err != nil {
			res := stepFailed(fsm.ResultAborted, "ip_failover hook: %v", err)
			return nil, &res
		}
		res := r.runHook(ctx, HookIPFailover, path, call.Args, call.Env...)
		switch res.Action(HookIPFailover) {
		case Abort:
			out := stepFailed(fsm.ResultAborted, "%s: ip_failover --command=%s exit %d: %s%s: nothing promoted",
				t.addr, cmd, res.ExitCode, errText(res.Err), tail(res.Output))
			return nil, &out
		case Warn:
			notes = append(notes, fmt.Sprintf("%s: ip_failover --command=%s exit %d (warning)", t.addr, cmd, res.ExitCode))
		default:
			stopped = stopped || res.ExitCode == 0
			notes = append(notes, fmt.Sprintf("%s: ip_failover --command=%s ok", t.addr, cmd))
		}
	}
	if path := r.cc.Hooks.Shutdown; path != "" {
		h, p := hostPort(t.addr)
		args, err := ShutdownArgs(CommandStop, h, h, p, "", r.cc.SSHUser)
		if err != nil {
			res := stepFailed(fsm.ResultAborted, "shutdown hook: %v", err)
			return nil, &res
		}
		res := r.runHook(ctx, HookShutdown, path, args)
		switch res.Action(HookShutdown) {
		case Abort:
			out := stepFailed(fsm.ResultAborted, "%s: shutdown --command=stop exit %d: %s%s: nothing promoted",
				t.addr, res.ExitCode, errText(res.Err), tail(res.Output))
			return nil, &out
		case Warn:
			notes = append(notes, t.addr+": shutdown hook exit 10 (mysqld stopped)")
		default:
			stopped = stopped || res.ExitCode == 0
			notes = append(notes, t.addr+": shutdown hook ok")
		}
	}
	t.hookOK = stopped
	return notes, nil
}

// clearAgentFence disarms the agent of a server about to take writes (a
// promotion, or a demoted master that now replicates), so it does not
// fence that server once no controller renews its lease, or keep a fence
// it set as a former master. It returns a note for the step. err is set
// only when the agent still reports its server fenced after a failed
// clear: turning read_only off then would be undone by the agent.
func (r *failoverRun) clearAgentFence(ctx context.Context, addr, why string) (string, error) {
	ag, reason, err := r.fenceAgent(addr)
	if ag == nil {
		if err != nil {
			return fmt.Sprintf("; %s's %s: %v: fence not cleared", addr, reason, err), nil
		}
		return "", nil // no agent
	}
	actx, cancel := context.WithTimeout(ctx, fenceAttemptTimeout)
	defer cancel()
	req := agent.FenceRequest{Controller: r.e.cfg.NodeID, Reason: fmt.Sprintf("record %d of %s: %s", r.id, r.cc.Name, why)}
	st, err := ag.ClearFence(actx, req)
	switch {
	case err == nil && !st.Fenced:
		return "; agent fence cleared", nil
	case agent.IsStatus(err, http.StatusNotFound), agent.IsStatus(err, http.StatusConflict):
		return "; agent has no fence to clear (fencing not configured there)", nil
	}
	cerr := err
	if cerr == nil {
		cerr = fmt.Errorf("agent still reports state %s", st.State)
	}
	if now, serr := ag.FenceStatus(actx); serr == nil && now.Fenced {
		return "", fmt.Errorf("clear the fence of %s's agent: %w; it reports the server fenced (%s) and would fence it again", addr, cerr, now.Reason)
	}
	return fmt.Sprintf("; agent fence of %s not cleared (%v): check the agent", addr, cerr), nil
}
