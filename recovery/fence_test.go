package recovery

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumha/quorumha/agent"
	"github.com/quorumha/quorumha/fsm"
)

// fakeLease is a LeaseWitness whose answer per master the test sets.
type fakeLease struct {
	mu     sync.Mutex
	lapsed map[string]bool // by master address; "*" for every master
}

func leaseLapsed() *fakeLease { return &fakeLease{lapsed: map[string]bool{"*": true}} }

func (l *fakeLease) set(addr string, lapsed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lapsed[addr] = lapsed
}

func (l *fakeLease) LeaseLapsed(_, master string, _ time.Time) (bool, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lapsed["*"] || l.lapsed[master] {
		return true, "a majority's last grants + ttl + drift are past"
	}
	return false, "c2's last grant is still fresh"
}

// fakeFenceAgent is a host agent with a fence state the test sets.
type fakeFenceAgent struct {
	mu       sync.Mutex
	status   agent.FenceStatus
	err      error // answer of Fence
	clearErr error
	tail     agent.Tail
	fences   int
	clears   int
	// hang makes Fence block until its context ends (a vanished host);
	// ended is that context's error.
	hang  bool
	ended error
}

func (a *fakeFenceAgent) Fence(ctx context.Context, _ agent.FenceRequest) (agent.FenceStatus, error) {
	a.mu.Lock()
	a.fences++
	hang := a.hang
	a.mu.Unlock()
	if hang {
		<-ctx.Done()
		a.mu.Lock()
		a.ended = ctx.Err()
		a.mu.Unlock()
		return agent.FenceStatus{}, ctx.Err()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status, a.err
}

func (a *fakeFenceAgent) ClearFence(context.Context, agent.FenceRequest) (agent.FenceStatus, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.clears++
	if a.clearErr != nil {
		return agent.FenceStatus{}, a.clearErr
	}
	a.status.Fenced, a.status.State = false, agent.FenceUnarmed
	return a.status, nil
}

func (a *fakeFenceAgent) FenceStatus(context.Context) (agent.FenceStatus, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status, a.err
}

func (a *fakeFenceAgent) Tail(context.Context) (agent.Tail, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.tail, nil
}

func notRunning() *bool { b := false; return &b }

// fenceExec builds an executor with the given fence mode, lease witness
// and agents (by instance address; an instance with an agent gets a URL).
func (e *execEnv) fenceExec(mode string, lease LeaseWitness, agents map[string]*fakeFenceAgent) *Executor {
	urls := map[string]*fakeFenceAgent{}
	for i, in := range e.cc.Instances {
		if ag, ok := agents[in.Address]; ok {
			e.cc.Instances[i].Agent = "http://agent-" + in.Address
			urls[e.cc.Instances[i].Agent] = ag
		}
	}
	cfg := ExecutorConfig{NodeID: "c1", ApplyTimeout: time.Second, Now: func() time.Time { return t0 }, FenceMode: mode,
		FenceAgents: func(cluster, url string) (FenceAgent, error) {
			if ag, ok := urls[url]; ok && cluster == "app1" {
				return ag, nil
			}
			return nil, errors.New("no such agent " + url)
		}}
	if lease != nil { // a nil *fakeLease must stay a nil interface
		cfg.Lease = lease
	}
	return NewExecutor(cfg, e.g, e.g.f, e.f.dial, e.hooks.run)
}

// fenceUpdates counts the FenceUpdate commands applied.
func (e *execEnv) fenceUpdates() int {
	e.g.mu.Lock()
	defer e.g.mu.Unlock()
	n := 0
	for _, t := range e.g.applied {
		if t == fsm.FenceUpdateType {
			n++
		}
	}
	return n
}

// runAsync runs Execute in a goroutine; wait returns its result.
func runAsync(ctx context.Context, ex *Executor, cc ClusterConfig, id uint64) (wait func() (fsm.Result, error)) {
	type out struct {
		res fsm.Result
		err error
	}
	ch := make(chan out, 1)
	go func() { // owned by the test: wait receives its result
		res, err := ex.Execute(ctx, cc, id)
		ch <- out{res, err}
	}()
	return func() (fsm.Result, error) {
		select {
		case o := <-ch:
			return o.res, o.err
		case <-time.After(30 * time.Second):
			return "", errors.New("Execute did not return within 30s")
		}
	}
}

// pollUntil polls cond every 10ms for up to 20s.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFence_EachProof(t *testing.T) {
	cases := []struct {
		name      string
		setup     func(e *execEnv) (LeaseWitness, map[string]*fakeFenceAgent)
		wantProof string
		detail    string
	}{
		{"sql: reachable old master", func(e *execEnv) (LeaseWitness, map[string]*fakeFenceAgent) {
			e.f.set(mOld, func(n *fakeNode) { n.up = true })
			return nil, nil
		}, fsm.ProofSQL, "read_only=ON, killed 0 client sessions"},
		{"agent: fenced", func(e *execEnv) (LeaseWitness, map[string]*fakeFenceAgent) {
			return nil, map[string]*fakeFenceAgent{mOld: {status: agent.FenceStatus{State: agent.FenceFenced, Fenced: true, Actions: []string{"read_only=ON"}}}}
		}, fsm.ProofAgent, "agent fenced the server: read_only=ON"},
		{"agent: server not running", func(e *execEnv) (LeaseWitness, map[string]*fakeFenceAgent) {
			return nil, map[string]*fakeFenceAgent{mOld: {status: agent.FenceStatus{State: agent.FenceDisabled, ServerRunning: notRunning()}}}
		}, fsm.ProofAgent, "not running"},
		{"agent without fence endpoint: server not running", func(e *execEnv) (LeaseWitness, map[string]*fakeFenceAgent) {
			return nil, map[string]*fakeFenceAgent{mOld: {err: &agent.APIError{Status: http.StatusNotFound, Message: "404 page not found"},
				tail: agent.Tail{ServerRunning: notRunning()}}}
		}, fsm.ProofAgent, "not running"},
		{"lease_expired", func(e *execEnv) (LeaseWitness, map[string]*fakeFenceAgent) {
			// An agent fenced with errors is no proof; the lease is.
			return leaseLapsed(), map[string]*fakeFenceAgent{mOld: {status: agent.FenceStatus{State: agent.FenceFenced, Fenced: true, Errors: []string{"kill 7: denied"}}}}
		}, fsm.ProofLeaseExpired, "ttl + drift are past"},
		{"hook", func(e *execEnv) (LeaseWitness, map[string]*fakeFenceAgent) {
			e.cc.Hooks = ClusterHooks{Shutdown: "/shut"}
			return nil, nil
		}, fsm.ProofHook, "exited 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newExecEnv(t)
			lease, agents := c.setup(e)
			var ex *Executor
			if l, ok := lease.(*fakeLease); ok {
				ex = e.fenceExec(FenceRequired, l, agents)
			} else {
				ex = e.fenceExec(FenceRequired, nil, agents)
			}
			id := e.open(t, "")
			res, err := ex.Execute(context.Background(), e.cc, id)
			if err != nil || res != fsm.ResultSuccess {
				t.Fatalf("Execute = %q, %v; %+v", res, err, e.record(t, id))
			}
			e.requireFailedOver(t, id)
			r := e.record(t, id)
			fi := r.Fence
			if fi == nil || fi.State != fsm.FenceProven || fi.Proof != c.wantProof || len(fi.Targets) != 1 ||
				fi.Targets[0].Address != mOld || !strings.Contains(fi.Targets[0].Detail, c.detail) {
				t.Fatalf("fence = %+v, want proven by %s (%q)", fi, c.wantProof, c.detail)
			}
			if s, _ := stepNamed(r, StepFence); s.Outcome != fsm.OutcomeOK || !strings.Contains(s.Detail, c.wantProof) {
				t.Fatalf("fence step %+v", s)
			}
			if n := e.fenceUpdates(); n != 1 {
				t.Errorf("%d fence updates, want 1", n)
			}
			if c.wantProof == fsm.ProofSQL {
				if old := e.f.node(mOld); !old.readOnly || old.killed == 0 {
					t.Errorf("old master not fenced over SQL: %+v", old)
				}
			}
		})
	}
}

// startAwaiting opens a failover of the dead mOld with no proof available
// and runs it until the record awaits a fence.
func startAwaiting(t *testing.T, e *execEnv, lease *fakeLease) (uint64, func() (fsm.Result, error), context.CancelFunc) {
	t.Helper()
	ex := e.fenceExec(FenceRequired, lease, nil)
	id := e.open(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	wait := runAsync(ctx, ex, e.cc, id)
	pollUntil(t, "awaiting_fence", func() bool { return e.record(t, id).AwaitingFence() })
	r := e.record(t, id)
	if !strings.Contains(r.Fence.Reason, mOld+": sql: unreachable") || !strings.Contains(r.Fence.Reason, "lease: not lapsed") ||
		!r.Fence.Since.Equal(t0) || r.Fence.Proof != fsm.ProofNone {
		t.Fatalf("awaiting fence = %+v", r.Fence)
	}
	if s := r.Steps[len(r.Steps)-1]; s.Name != StepFence || s.Outcome != fsm.OutcomeRunning {
		t.Fatalf("last step %+v, want fence running", s)
	}
	return id, wait, cancel
}

func TestFence_AwaitingThenOperatorAccepts(t *testing.T) {
	t.Parallel()
	e := newExecEnv(t)
	id, wait, _ := startAwaiting(t, e, &fakeLease{lapsed: map[string]bool{}})
	// Several retries pass: the unchanged reason is committed once.
	time.Sleep(2500 * time.Millisecond)
	if n := e.fenceUpdates(); n != 1 {
		t.Fatalf("%d awaiting updates for an unchanged reason, want 1", n)
	}
	if w := e.f.writable(); len(w) != 0 {
		t.Fatalf("promoted while awaiting a fence: %v", w)
	}
	cmd, _ := fsm.Encode(fsm.FenceUpdateType, fsm.FenceUpdate{RecordID: id, At: t0.Add(time.Minute), State: fsm.FenceAccepted,
		Proof: fsm.ProofOperator, By: "alice"})
	if _, err := e.g.Apply(context.Background(), cmd); err != nil {
		t.Fatal(err)
	}
	if res, err := wait(); err != nil || res != fsm.ResultSuccess {
		t.Fatalf("Execute = %q, %v", res, err)
	}
	e.requireFailedOver(t, id)
	r := e.record(t, id)
	if r.Fence.State != fsm.FenceAccepted || r.Fence.By != "alice" || !strings.Contains(r.Fence.Reason, "sql: unreachable") {
		t.Fatalf("fence = %+v", r.Fence)
	}
	if s, _ := stepNamed(r, StepFence); s.Outcome != fsm.OutcomeWarning || !strings.Contains(s.Detail, "alice accepted") {
		t.Fatalf("fence step %+v", s)
	}
}

func TestFence_AwaitingThenLeaseLapses(t *testing.T) {
	e := newExecEnv(t)
	lease := &fakeLease{lapsed: map[string]bool{}}
	id, wait, _ := startAwaiting(t, e, lease)
	lease.set(mOld, true)
	if res, err := wait(); err != nil || res != fsm.ResultSuccess {
		t.Fatalf("Execute = %q, %v", res, err)
	}
	e.requireFailedOver(t, id)
	fi := e.record(t, id).Fence
	if fi.State != fsm.FenceProven || fi.Proof != fsm.ProofLeaseExpired || !fi.Since.Equal(t0) {
		t.Fatalf("fence = %+v", fi)
	}
}

// A new leader resuming a record that awaits a fence keeps waiting (and
// does not commit the same reason again).
func TestFence_NewLeaderKeepsWaiting(t *testing.T) {
	t.Parallel()
	e := newExecEnv(t)
	lease := &fakeLease{lapsed: map[string]bool{}}
	id, wait, cancel := startAwaiting(t, e, lease)
	cancel() // leadership lost
	if _, err := wait(); !errors.Is(err, ErrLeadershipLost) {
		t.Fatalf("err = %v, want ErrLeadershipLost", err)
	}
	if r := e.record(t, id); !r.AwaitingFence() || !r.IsOpen() {
		t.Fatalf("record after leadership loss: %+v", r)
	}
	ex := e.fenceExec(FenceRequired, lease, nil)
	wait = runAsync(context.Background(), ex, e.cc, id)
	time.Sleep(1500 * time.Millisecond)
	if n := e.fenceUpdates(); n != 1 {
		t.Fatalf("%d fence updates, want the first leader's only", n)
	}
	lease.set(mOld, true)
	if res, err := wait(); err != nil || res != fsm.ResultSuccess {
		t.Fatalf("resume = %q, %v", res, err)
	}
	// The first leader's fence step stays running in the journal; the
	// second one's ended.
	if w := e.f.writable(); !slices.Equal(w, []string{rA}) {
		t.Fatalf("writable = %v", w)
	}
	if fi := e.record(t, id).Fence; fi.Proof != fsm.ProofLeaseExpired {
		t.Fatalf("fence = %+v", fi)
	}
}

func TestFence_BestEffortRecordsNone(t *testing.T) {
	e := newExecEnv(t)
	ex := e.fenceExec(FenceBestEffort, nil, nil)
	id := e.open(t, "")
	if res, err := ex.Execute(context.Background(), e.cc, id); err != nil || res != fsm.ResultSuccess {
		t.Fatalf("Execute = %q, %v", res, err)
	}
	e.requireFailedOver(t, id)
	r := e.record(t, id)
	if r.Fence == nil || r.Fence.State != fsm.FenceUnproven || r.Fence.Proof != fsm.ProofNone ||
		!strings.Contains(r.Fence.Detail, "sql: unreachable") {
		t.Fatalf("fence = %+v", r.Fence)
	}
	if s, _ := stepNamed(r, StepFence); s.Outcome != fsm.OutcomeWarning || !strings.Contains(s.Detail, bestEffortNote) {
		t.Fatalf("fence step %+v", s)
	}
}

// TestFence_EarlierPromoteTargetIsFenced (issue 12, review item 1): a
// record that began promoting rA and was aborted leaves rA in the next
// record's fence targets. While rA is cut off (alive, maybe writable) the
// next failover must not promote anyone; once rA answers it is fenced
// over SQL before the promotion.
func TestFence_EarlierPromoteTargetIsFenced(t *testing.T) {
	t.Parallel()
	e := newExecEnv(t)
	apply := func(typ fsm.MessageType, p any) any {
		t.Helper()
		cmd, _ := fsm.Encode(typ, p)
		v, err := e.g.Apply(context.Background(), cmd)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	a := e.open(t, "")
	apply(fsm.CandidatesType, fsm.Candidates{RecordID: a, Candidates: []fsm.Candidate{{Address: rA, Chosen: true, Reason: "candidate_master"}}})
	apply(fsm.StepBeginType, fsm.StepBegin{RecordID: a, Name: StepPromote, Leader: "c1", At: t0})
	apply(fsm.RecordCloseType, fsm.RecordClose{RecordID: a, At: t0, Result: fsm.ResultAborted, Detail: "promote of rA began but never ended and rA is unreachable"})
	// rA was half promoted (writable, replicating from nobody) and is now
	// cut off from the controllers.
	e.f.set(rA, func(n *fakeNode) {
		n.up, n.readOnly, n.master, n.io, n.sql, n.seq, n.recv = false, false, "", false, false, 12, 12
	})

	lease := &fakeLease{lapsed: map[string]bool{mOld: true}} // the old master is fenced by its lease
	ex := e.fenceExec(FenceRequired, lease, nil)
	b := e.open(t, "")
	wait := runAsync(context.Background(), ex, e.cc, b)
	pollUntil(t, "awaiting_fence on rA", func() bool { return e.record(t, b).AwaitingFence() })
	r := e.record(t, b)
	if strings.Contains(r.Fence.Reason, mOld) || !strings.Contains(r.Fence.Reason, rA+": sql: unreachable") {
		t.Fatalf("reason %q: want only %s unfenced", r.Fence.Reason, rA)
	}
	if got := []string{r.Fence.Targets[0].Address, r.Fence.Targets[1].Address}; !slices.Equal(got, []string{mOld, rA}) || len(r.Fence.Targets) != 2 {
		t.Fatalf("targets %+v", r.Fence.Targets)
	}
	if r.Fence.Targets[0].Proof != fsm.ProofLeaseExpired || r.Fence.Targets[1].Proof != "" {
		t.Fatalf("awaiting update: targets %+v, want %s proven by its lease and %s not", r.Fence.Targets, mOld, rA)
	}
	time.Sleep(1500 * time.Millisecond)
	if n := e.f.node(rB); !n.readOnly {
		t.Fatal("rB promoted while rA, which an earlier record began to promote, was not fenced")
	}
	e.f.set(rA, func(n *fakeNode) { n.up = true }) // back, still writable
	if res, err := wait(); err != nil || res != fsm.ResultSuccess {
		t.Fatalf("Execute = %q, %v; %+v", res, err, e.record(t, b))
	}
	r = e.record(t, b)
	if r.Fence.State != fsm.FenceProven || r.Fence.Targets[1].Proof != fsm.ProofSQL || r.Fence.Targets[0].Proof != fsm.ProofLeaseExpired {
		t.Fatalf("fence = %+v", r.Fence)
	}
	if e.f.node(rA).killed == 0 {
		t.Fatal("rA's sessions were not killed before the promotion")
	}
	if w := e.f.writable(); len(w) != 1 || w[0] != r.NewMaster {
		t.Fatalf("writable %v, new master %s", w, r.NewMaster)
	}
}

func TestFenceTargets(t *testing.T) {
	rec := func(id uint64, kind fsm.RecordKind, res fsm.Result, chosen string, promoteBegan bool) fsm.Record {
		r := fsm.Record{ID: id, Kind: kind, Result: res, OldMaster: mOld}
		if chosen != "" {
			r.Candidates = []fsm.Candidate{{Address: chosen, Chosen: true}}
		}
		if promoteBegan {
			r.Steps = []fsm.Step{{Name: StepPromote, Outcome: fsm.OutcomeRunning}}
		}
		return r
	}
	cur := rec(10, fsm.KindFailover, fsm.ResultOpen, "", false)
	hist := []fsm.Record{
		cur,
		rec(9, fsm.KindFailover, fsm.ResultAborted, rA, true), // counts
		rec(8, fsm.KindFailover, fsm.ResultFailed, rB, false), // promote never began
		rec(7, fsm.KindDetection, fsm.ResultDetected, "", false),
		rec(6, fsm.KindFailover, fsm.ResultFailed, rB, true),  // counts
		rec(5, fsm.KindFailover, fsm.ResultAborted, rA, true), // duplicate
		rec(4, fsm.KindFailover, fsm.ResultSuccess, rA, true), // set the master: earlier incident
		rec(3, fsm.KindFailover, fsm.ResultAborted, "10.0.0.9:3306", true),
	}
	if got := fenceTargets(cur, hist); !slices.Equal(got, []string{mOld, rA, rB}) {
		t.Fatalf("targets %v", got)
	}
}

func TestPromote_ClearsTheTargetsAgentFence(t *testing.T) {
	cases := []struct {
		name    string
		ag      *fakeFenceAgent
		result  fsm.Result
		promote string
	}{
		{"cleared", &fakeFenceAgent{status: agent.FenceStatus{State: agent.FenceFenced, Fenced: true}}, fsm.ResultSuccess, "agent fence cleared"},
		{"unreachable: warning only", &fakeFenceAgent{clearErr: errors.New("dial tcp: connection refused"), err: errors.New("dial tcp: connection refused")},
			fsm.ResultSuccess, "not cleared"},
		{"answers fenced and clear fails: stop", &fakeFenceAgent{status: agent.FenceStatus{State: agent.FenceFenced, Fenced: true},
			clearErr: &agent.APIError{Status: 500, Message: "disk full"}}, fsm.ResultFailed, "would fence it again"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newExecEnv(t)
			ex := e.fenceExec(FenceRequired, leaseLapsed(), map[string]*fakeFenceAgent{rA: c.ag})
			id := e.open(t, "")
			res, err := ex.Execute(context.Background(), e.cc, id)
			if err != nil || res != c.result {
				t.Fatalf("Execute = %q, %v; want %s", res, err, c.result)
			}
			s, _ := stepNamed(e.record(t, id), StepPromote)
			if !strings.Contains(s.Detail, c.promote) {
				t.Fatalf("promote step %+v, want %q", s, c.promote)
			}
			if c.ag.clears != 1 {
				t.Fatalf("ClearFence called %d times", c.ag.clears)
			}
			if c.result != fsm.ResultSuccess {
				if w := e.f.writable(); len(w) != 0 {
					t.Fatalf("writable %v after a refused promote", w)
				}
			}
		})
	}
}

// After a switchover has made the old master a read-only replica, its
// agent's fence is cleared: otherwise it would fence (and lock) the
// demoted server once the controllers stop renewing its lease.
func TestSwitchover_OldAsReplicaClearsItsAgentFence(t *testing.T) {
	e := newExecEnv(t)
	e.f.set(mOld, func(n *fakeNode) { n.up, n.readOnly = true, true })
	ag := &fakeFenceAgent{status: agent.FenceStatus{State: agent.FenceHeld, Armed: true}}
	ex := e.fenceExec(FenceRequired, nil, map[string]*fakeFenceAgent{mOld: ag})
	run := &failoverRun{e: ex, cc: e.cc, id: 1, conns: map[string]Instance{}, log: ex.log,
		rec: fsm.Record{ID: 1, Kind: fsm.KindSwitchover, OldMaster: mOld}}
	res := run.switchoverStep(context.Background(), StepOldAsReplica, SwitchoverEvidence{Target: rA})
	if res.outcome != fsm.OutcomeOK || !strings.Contains(res.detail, "agent fence cleared") || ag.clears != 1 {
		t.Fatalf("old_as_replica = %+v; clears %d", res, ag.clears)
	}
	if n := e.f.node(mOld); n.master != rA {
		t.Fatalf("old master replicates from %q", n.master)
	}
}

// TestFence_LeaseLapseDoesNotWaitForAHangingAgent: the old master's host
// vanished, so its agent never answers; the lease witness is asked while
// the agent call is still pending, and its lapse proves the fence at once:
// the pending call is cancelled, not waited out to its timeout.
func TestFence_LeaseLapseDoesNotWaitForAHangingAgent(t *testing.T) {
	e := newExecEnv(t)
	e.f.set(mOld, func(n *fakeNode) { n.up = false })
	ag := &fakeFenceAgent{hang: true}
	lease := &fakeLease{lapsed: map[string]bool{}}
	ex := e.fenceExec(FenceRequired, lease, map[string]*fakeFenceAgent{mOld: ag})
	id := e.open(t, "")
	wait := runAsync(context.Background(), ex, e.cc, id)
	pollUntil(t, "the agent asked", func() bool {
		ag.mu.Lock()
		defer ag.mu.Unlock()
		return ag.fences > 0
	})
	lease.set(mOld, true)
	if res, err := wait(); err != nil || res != fsm.ResultSuccess {
		t.Fatalf("Execute = %q, %v", res, err)
	}
	if fi := e.record(t, id).Fence; fi.State != fsm.FenceProven || fi.Proof != fsm.ProofLeaseExpired {
		t.Fatalf("fence = %+v", fi)
	}
	ag.mu.Lock()
	defer ag.mu.Unlock()
	if !errors.Is(ag.ended, context.Canceled) {
		t.Errorf("the hanging agent call ended with %v, want cancelled once the lease proved the fence", ag.ended)
	}
}
