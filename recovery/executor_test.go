package recovery

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumha/quorumha/fsm"
)

const (
	mOld = "10.0.0.1:3306"
	rA   = "10.0.0.2:3306" // candidate_master, behind
	rB   = "10.0.0.3:3306" // most advanced
)

// leaderGroup is an fsmGroup whose leadership ends before step number
// limit (0-based) begins, i.e. once limit steps have ended (-1: never), or
// as soon as a test sets lost. Counting steps, not VerifyLeader calls, keeps
// "stop before step k" meaningful however many leadership checks a step
// makes before its role-changing statements.
type leaderGroup struct {
	*fsmGroup
	mu       sync.Mutex
	verifies int
	limit    int
	lost     bool
}

func (g *leaderGroup) VerifyLeader(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.verifies++
	if g.lost || (g.limit >= 0 && g.stepsEnded() >= g.limit) {
		return errors.New("not leader")
	}
	return nil
}

// setLost deposes (true) or restores (false) the leader.
func (g *leaderGroup) setLost(lost bool) {
	g.mu.Lock()
	g.lost = lost
	g.mu.Unlock()
}

func (g *leaderGroup) stepsEnded() int {
	g.fsmGroup.mu.Lock()
	defer g.fsmGroup.mu.Unlock()
	n := 0
	for _, t := range g.applied {
		if t == fsm.StepEndType {
			n++
		}
	}
	return n
}

// testCluster is a dead master with two replicas: rA (candidate_master)
// applied 10 and received 10, rB applied 8 but received 12, so after relay
// logs are applied rB is most advanced and rA must catch up from it.
func testCluster() (*fakeCluster, ClusterConfig) {
	f := newFakeCluster()
	f.add(mOld, &fakeNode{up: false, seq: 12})
	f.add(rA, &fakeNode{up: true, readOnly: true, seq: 10, recv: 10, master: mOld, io: true, sql: true})
	f.add(rB, &fakeNode{up: true, readOnly: true, seq: 8, recv: 12, master: mOld, io: true, sql: true})
	// check_repl_delay on, as by default: replicas with stopped IO threads
	// report no lag, which must not make them ineligible.
	cc := ClusterConfig{Name: "app1", User: "admin", ReplUser: "repl", ReplPassword: "pw", ReplicationMode: "gtid", MaxLag: 30 * time.Second,
		Instances: []ClusterInstance{{Address: mOld}, {Address: rA, CandidateMaster: true, CheckReplDelay: true}, {Address: rB, CheckReplDelay: true}}}
	return f, cc
}

type execEnv struct {
	g     *leaderGroup
	f     *fakeCluster
	cc    ClusterConfig
	hooks *fakeHooks
}

type fakeHooks struct {
	mu    sync.Mutex
	calls []string
	exit  map[string]int // by --command value
}

func (h *fakeHooks) run(_ context.Context, path string, args []string, _ ...string) HookResult {
	h.mu.Lock()
	defer h.mu.Unlock()
	cmd := ""
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--command="); ok {
			cmd = v
		}
	}
	h.calls = append(h.calls, path+" "+cmd)
	return HookResult{ExitCode: h.exit[path+" "+cmd]}
}

func newExecEnv(t *testing.T) *execEnv {
	t.Helper()
	f, cc := testCluster()
	return &execEnv{g: &leaderGroup{fsmGroup: &fsmGroup{f: fsm.New(nil)}, limit: -1}, f: f, cc: cc, hooks: &fakeHooks{exit: map[string]int{}}}
}

func (e *execEnv) executor(node string) *Executor {
	return NewExecutor(ExecutorConfig{NodeID: node, ApplyTimeout: time.Second, Now: func() time.Time { return t0 }, Lease: leaseLapsed()},
		e.g, e.g.f, e.f.dial, e.hooks.run)
}

func (e *execEnv) open(t *testing.T, evidence string) uint64 {
	t.Helper()
	var ev []byte
	if evidence != "" {
		ev = []byte(evidence)
	}
	trigger := "automatic"
	if evidence != "" {
		trigger = "manual"
	}
	cmd, _ := fsm.Encode(fsm.RecordOpenType, fsm.RecordOpen{Cluster: "app1", Kind: fsm.KindFailover, Trigger: trigger,
		OldMaster: mOld, OpenedBy: "c1", At: t0, Evidence: ev})
	id, err := e.g.Apply(context.Background(), cmd)
	if err != nil {
		t.Fatal(err)
	}
	return id.(uint64)
}

func (e *execEnv) record(t *testing.T, id uint64) fsm.Record {
	t.Helper()
	r, ok := e.g.f.Record(id)
	if !ok {
		t.Fatalf("no record %d", id)
	}
	return r
}

// requireFailedOver checks the end state of a successful failover to rA:
// the journal, one writable instance, rB following rA with everything.
func (e *execEnv) requireFailedOver(t *testing.T, id uint64) {
	t.Helper()
	r := e.record(t, id)
	if r.Result != fsm.ResultSuccess || r.NewMaster != rA {
		t.Fatalf("record: result %q new master %q detail %q; steps %+v", r.Result, r.NewMaster, r.Detail, r.Steps)
	}
	if cs, _ := e.g.f.Cluster("app1"); cs.Master != rA || cs.LastFailoverID != id {
		t.Fatalf("cluster state %+v", cs)
	}
	if w := e.f.writable(); !slices.Equal(w, []string{rA}) {
		t.Fatalf("writable instances = %v, want only %s", w, rA)
	}
	a, b := e.f.node(rA), e.f.node(rB)
	if a.master != "" || a.seq != 12 {
		t.Fatalf("new master: replicates from %q, at %d; want no replication, at 12 (caught up)", a.master, a.seq)
	}
	if b.master != rA || !b.io || !b.sql || b.seq != 12 {
		t.Fatalf("other replica: master %q io %t sql %t seq %d", b.master, b.io, b.sql, b.seq)
	}
	// Every step journalled begin then end, the latest run of each ended.
	for _, s := range r.Steps {
		if s.Outcome == fsm.OutcomeRunning && s.Name != StepPromote {
			t.Fatalf("step %s still running: %+v", s.Name, r.Steps)
		}
	}
}

func TestExecutor_FailoverCatchesUpAndRepoints(t *testing.T) {
	e := newExecEnv(t)
	id := e.open(t, "")
	res, err := e.executor("c1").Execute(context.Background(), e.cc, id)
	if err != nil || res != fsm.ResultSuccess {
		t.Fatalf("Execute = %q, %v", res, err)
	}
	e.requireFailedOver(t, id)
	r := e.record(t, id)
	var names []string
	for _, s := range r.Steps {
		names = append(names, s.Name+":"+string(s.Outcome))
		if s.Leader != "c1" || s.Start.IsZero() || s.End.IsZero() {
			t.Fatalf("step %+v lacks leader or times", s)
		}
	}
	want := []string{"fence:ok", "stop_io:ok", "wait_relay:ok", "select:ok", "catch_up:ok", "salvage:skipped",
		"promote:ok", "repoint:ok", "ip_start:skipped", "report:skipped"}
	if !slices.Equal(names, want) {
		t.Fatalf("journal = %v\nwant      %v", names, want)
	}
	if len(r.Candidates) != 2 || !r.Candidates[0].Chosen || r.Candidates[0].Address != rA || r.Candidates[1].Reason == "" {
		t.Fatalf("candidates = %+v", r.Candidates)
	}
	// One VerifyLeader per step, before its StepBegin, plus one right
	// before each role-changing statement: catch_up's CHANGE MASTER and
	// START, promote's RESET and read_only off, repoint's CHANGE MASTER and
	// START on rB.
	if want := len(FailoverPlan()) + 6; e.g.verifies != want {
		t.Fatalf("VerifyLeader calls = %d, want %d", e.g.verifies, want)
	}
	// Journal first: StepBegin is applied before any step's first action, so
	// the applied command types interleave begin, (candidates), end.
	var seq []fsm.MessageType
	for _, m := range e.g.applied {
		if m == fsm.StepBeginType || m == fsm.StepEndType {
			seq = append(seq, m)
		}
	}
	for i, m := range seq {
		if want := []fsm.MessageType{fsm.StepBeginType, fsm.StepEndType}[i%2]; m != want {
			t.Fatalf("journal command %d is %s, want %s", i, m, want)
		}
	}
}

// TestExecutor_LeadershipLostThenResumed stops the first leader before each
// step in turn; the record stays open, nothing after that point happened,
// and a second leader finishes it with the same new master.
func TestExecutor_LeadershipLostThenResumed(t *testing.T) {
	for k := 0; k < len(FailoverPlan()); k++ {
		t.Run(FailoverPlan()[k], func(t *testing.T) {
			e := newExecEnv(t)
			id := e.open(t, "")
			e.g.limit = k
			_, err := e.executor("c1").Execute(context.Background(), e.cc, id)
			if !errors.Is(err, ErrLeadershipLost) {
				t.Fatalf("err = %v, want ErrLeadershipLost", err)
			}
			r := e.record(t, id)
			if !r.IsOpen() || len(r.Steps) != k {
				t.Fatalf("after losing leadership before step %d: open=%t steps=%d", k, r.IsOpen(), len(r.Steps))
			}
			if k <= 5 && len(e.f.writable()) != 0 {
				t.Fatalf("something writable before promote: %v", e.f.writable())
			}
			e.g.mu.Lock()
			e.g.limit, e.g.verifies = -1, 0
			e.g.mu.Unlock()
			res, err := e.executor("c2").Execute(context.Background(), e.cc, id)
			if err != nil || res != fsm.ResultSuccess {
				t.Fatalf("resume = %q, %v", res, err)
			}
			e.requireFailedOver(t, id)
			for _, s := range e.record(t, id).Steps[k:] {
				if s.Leader != "c2" {
					t.Fatalf("step %s after the resume run by %s", s.Name, s.Leader)
				}
			}
		})
	}
}

// beginPromote leaves a record as a leader dying inside promote would: the
// journal says promote began, and the target is half promoted.
func beginPromote(t *testing.T, e *execEnv) uint64 {
	t.Helper()
	id := e.open(t, "")
	e.g.limit = 5 // stop before promote
	if _, err := e.executor("c1").Execute(context.Background(), e.cc, id); !errors.Is(err, ErrLeadershipLost) {
		t.Fatalf("err = %v", err)
	}
	cmd, _ := fsm.Encode(fsm.StepBeginType, fsm.StepBegin{RecordID: id, Name: StepPromote, Leader: "c1", At: t0})
	if _, err := e.g.Apply(context.Background(), cmd); err != nil {
		t.Fatal(err)
	}
	e.f.set(rA, func(n *fakeNode) { n.master, n.io, n.sql = "", false, false }) // reset done, read_only not yet off
	e.g.mu.Lock()
	e.g.limit = -1
	e.g.mu.Unlock()
	return id
}

func TestExecutor_PromoteResumedWithRecordedTarget(t *testing.T) {
	e := newExecEnv(t)
	id := beginPromote(t, e)
	// Even if rB now looked better, the journalled choice stands.
	e.f.set(rB, func(n *fakeNode) { n.seq, n.recv = 20, 20 })
	e.f.set(rA, func(n *fakeNode) { n.seq = 12 })
	res, err := e.executor("c2").Execute(context.Background(), e.cc, id)
	if err != nil || res != fsm.ResultSuccess {
		t.Fatalf("resume = %q, %v", res, err)
	}
	r := e.record(t, id)
	if r.NewMaster != rA {
		t.Fatalf("new master %s, want the journalled %s", r.NewMaster, rA)
	}
	if w := e.f.writable(); !slices.Equal(w, []string{rA}) {
		t.Fatalf("writable = %v", w)
	}
}

func TestExecutor_PromoteResumeAbortsWhenTargetUnreachable(t *testing.T) {
	e := newExecEnv(t)
	id := beginPromote(t, e)
	e.f.set(rA, func(n *fakeNode) { n.up = false })
	res, err := e.executor("c2").Execute(context.Background(), e.cc, id)
	if err != nil || res != fsm.ResultAborted {
		t.Fatalf("resume = %q, %v; want aborted", res, err)
	}
	r := e.record(t, id)
	if !strings.Contains(r.Detail, "unreachable") || r.NewMaster != "" {
		t.Fatalf("record: %q new master %q", r.Detail, r.NewMaster)
	}
	if w := e.f.writable(); len(w) != 0 {
		t.Fatalf("writable = %v, want none", w)
	}
	if cs, _ := e.g.f.Cluster("app1"); cs.Master == rB {
		t.Fatal("another master recorded")
	}
}

func TestExecutor_Hooks(t *testing.T) {
	cases := []struct {
		name       string
		masterUp   bool
		exit       map[string]int
		wantResult fsm.Result
		wantCalls  []string
	}{
		{"ip stop fails: abort before anything", false, map[string]int{"/ip stop": 1}, fsm.ResultAborted,
			[]string{"/ip stop"}},
		{"ip stop warns: go on", false, map[string]int{"/ip stop": 10}, fsm.ResultSuccess,
			[]string{"/ip stop", "/shut stop", "/ip start", "/report "}},
		{"reachable master with ssh user: stopssh", true, nil, fsm.ResultSuccess,
			[]string{"/ip stopssh", "/shut stop", "/ip start", "/report "}},
		{"shutdown fails: abort", false, map[string]int{"/shut stop": 2}, fsm.ResultAborted,
			[]string{"/ip stop", "/shut stop"}},
		{"ip start and report fail: still success", false, map[string]int{"/ip start": 1, "/report ": 1}, fsm.ResultSuccess,
			[]string{"/ip stop", "/shut stop", "/ip start", "/report "}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newExecEnv(t)
			e.cc.Hooks = ClusterHooks{IPFailover: "/ip", Shutdown: "/shut", Report: "/report"}
			e.cc.SSHUser = "root"
			if c.exit != nil {
				e.hooks.exit = c.exit
			}
			if c.masterUp {
				e.f.set(mOld, func(n *fakeNode) { n.up = true })
			}
			id := e.open(t, "")
			res, err := e.executor("c1").Execute(context.Background(), e.cc, id)
			if err != nil || res != c.wantResult {
				t.Fatalf("Execute = %q, %v; want %s; record %+v", res, err, c.wantResult, e.record(t, id))
			}
			if !slices.Equal(e.hooks.calls, c.wantCalls) {
				t.Fatalf("hook calls %v, want %v", e.hooks.calls, c.wantCalls)
			}
			if c.wantResult == fsm.ResultAborted {
				if w := e.f.writable(); len(w) > 0 {
					t.Fatalf("aborted failover left %v writable", w)
				}
				for _, op := range e.f.opsSnapshot() {
					if strings.Contains(op, "stop") || strings.Contains(op, "read_only=false") {
						t.Fatalf("aborted failover touched a replica: %v", e.f.opsSnapshot())
					}
				}
			}
			if c.masterUp {
				old := e.f.node(mOld)
				if !old.readOnly || old.killed == 0 {
					t.Fatalf("reachable old master not fenced: %+v", old)
				}
			}
		})
	}
}

func TestExecutor_Refusals(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(e *execEnv)
		step   string
		detail string
	}{
		{"another instance writable", func(e *execEnv) {
			e.f.set(mOld, func(n *fakeNode) { n.up, n.failRO = true, true })
		}, StepPromote, "writable"},
		{"no candidate", func(e *execEnv) {
			for i := range e.cc.Instances {
				e.cc.Instances[i].NoMaster = true
			}
		}, StepSelect, "no_master set"},
		{"no replica reachable", func(e *execEnv) {
			e.f.set(rA, func(n *fakeNode) { n.up = false })
			e.f.set(rB, func(n *fakeNode) { n.up = false })
		}, StepStopIO, "no replica reachable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newExecEnv(t)
			c.setup(e)
			id := e.open(t, "")
			res, err := e.executor("c1").Execute(context.Background(), e.cc, id)
			if err != nil || res != fsm.ResultFailed {
				t.Fatalf("Execute = %q, %v; want failed", res, err)
			}
			r := e.record(t, id)
			last := r.Steps[len(r.Steps)-1]
			if last.Name != c.step || last.Outcome != fsm.OutcomeFailed || !strings.Contains(r.Detail, c.detail) {
				t.Fatalf("last step %+v, detail %q; want %s failed with %q", last, r.Detail, c.step, c.detail)
			}
			if e.f.node(rA).readOnly == false && e.f.node(rA).up {
				t.Fatal("a replica was promoted")
			}
			if c.step == StepSelect && len(r.Candidates) != 2 {
				t.Fatalf("candidates with reasons not journalled: %+v", r.Candidates)
			}
		})
	}
}

// TestExecutor_StoppedApplierStillCounts: rB's SQL thread was stopped with
// relay log left; wait_relay starts it, so what rB received is applied and
// rA catches up to it.
func TestExecutor_StoppedApplierStillCounts(t *testing.T) {
	e := newExecEnv(t)
	e.f.set(rB, func(n *fakeNode) { n.sql, n.seq = false, 3 })
	id := e.open(t, "")
	res, err := e.executor("c1").Execute(context.Background(), e.cc, id)
	if err != nil || res != fsm.ResultSuccess {
		t.Fatalf("Execute = %q, %v; %+v", res, err, e.record(t, id))
	}
	e.requireFailedOver(t, id)
}

func TestExecutor_ManualTargetFromEvidence(t *testing.T) {
	e := newExecEnv(t)
	id := e.open(t, `{"by":"op","target":"`+rB+`"}`)
	res, err := e.executor("c1").Execute(context.Background(), e.cc, id)
	if err != nil || res != fsm.ResultSuccess {
		t.Fatalf("Execute = %q, %v", res, err)
	}
	if r := e.record(t, id); r.NewMaster != rB {
		t.Fatalf("new master %s, want the operator's %s", r.NewMaster, rB)
	}
	if a := e.f.node(rA); a.master != rB || a.seq != 12 {
		t.Fatalf("rA: master %q seq %d", a.master, a.seq)
	}
}

// A semi-sync replica promoted becomes a semi-sync master before its first
// write, so acknowledged writes after the failover still wait for a replica.
func TestExecutor_PromoteKeepsSemiSync(t *testing.T) {
	e := newExecEnv(t)
	e.f.set(rA, func(n *fakeNode) { n.semiRepl = true })
	id := e.open(t, "")
	if _, err := e.executor("c1").Execute(context.Background(), e.cc, id); err != nil {
		t.Fatal(err)
	}
	if n := e.f.node(rA); !n.semiMast || n.readOnly {
		t.Fatalf("new master: semi-sync master=%v read_only=%v, want semi-sync on and writable", n.semiMast, n.readOnly)
	}
	r := e.record(t, id)
	if s, ok := stepNamed(r, StepPromote); !ok || !strings.Contains(s.Detail, "semi-sync master enabled") {
		t.Fatalf("promote step: %+v", s)
	}
}

func stepNamed(r fsm.Record, name string) (fsm.Step, bool) {
	for _, s := range r.Steps {
		if s.Name == name {
			return s, true
		}
	}
	return fsm.Step{}, false
}
