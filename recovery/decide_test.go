package recovery

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/quorumha/quorumha/detector"
	"github.com/quorumha/quorumha/fsm"
)

// fsmGroup applies commands straight to a real FSM, as a one-node group.
type fsmGroup struct {
	mu        sync.Mutex
	f         *fsm.FSM
	index     uint64
	applied   []fsm.MessageType
	notLeader bool
}

func (g *fsmGroup) Apply(_ context.Context, cmd []byte) (any, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.index++
	t, _, _ := fsm.Decode(cmd)
	g.applied = append(g.applied, t)
	resp := g.f.Apply(&raft.Log{Index: g.index, Term: 1, Type: raft.LogCommand, Data: cmd})
	if err, ok := resp.(error); ok {
		return nil, err
	}
	return resp, nil
}

func (g *fsmGroup) VerifyLeader(context.Context) error {
	if g.notLeader {
		return errors.New("not leader")
	}
	return nil
}

func (g *fsmGroup) Term() uint64 { return 1 }

type fakeAssessor struct {
	mu      sync.Mutex
	current []detector.Assessment
	ch      chan detector.Assessment
	recheck detector.ProbeResult
	calls   int
}

func (a *fakeAssessor) Updates() <-chan detector.Assessment { return a.ch }
func (a *fakeAssessor) Assessments() []detector.Assessment {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.current
}
func (a *fakeAssessor) Recheck(context.Context, string) (detector.ProbeResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	return a.recheck, nil
}

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func dead(master string) detector.Assessment {
	return detector.Assessment{
		Cluster: "app1", Master: master, State: detector.AssessDeadConfirmed,
		Reason: "3 of 3 fresh votes down from 3 zones; no replica connected",
		Votes: []detector.Verdict{
			{Controller: "c1", Zone: "a", Instance: master, State: detector.StateDown},
			{Controller: "c2", Zone: "b", Instance: master, State: detector.StateDown},
			{Controller: "c3", Zone: "c", Instance: master, State: detector.StateDown},
		},
		DownCount: 3, Needed: 2, Zones: []string{"a", "b", "c"}, At: t0,
	}
}

func newTestDecider(t *testing.T) (*Runner, *fsmGroup, *fakeAssessor) {
	t.Helper()
	g := &fsmGroup{f: fsm.New(nil)}
	a := &fakeAssessor{ch: make(chan detector.Assessment, 1), recheck: detector.ProbeResult{Instance: "m:3306", Reason: detector.ReasonRefused}}
	// app1 is not configured for recovery: these tests cover the decision
	// alone (a detection record); failover records are in runner_test.go.
	d := NewRunner(RunnerConfig{NodeID: "c1", AntiFlap: time.Hour, Now: func() time.Time { return t0 }}, g, g.f, a, nil, nil)
	return d, g, a
}

func TestDecider_DeadConfirmedCommitsRecordWithEvidence(t *testing.T) {
	d, g, a := newTestDecider(t)
	if err := d.Handle(context.Background(), dead("m:3306")); err != nil {
		t.Fatal(err)
	}
	recs := g.f.History("app1", 0)
	if len(recs) != 1 {
		t.Fatalf("records = %d, want 1", len(recs))
	}
	r := recs[0]
	if r.Kind != fsm.KindDetection || r.Result != fsm.ResultDetected || r.OldMaster != "m:3306" || r.OpenedBy != "c1" || r.IsOpen() {
		t.Fatalf("record = %+v", r)
	}
	var ev Evidence
	if err := json.Unmarshal(r.Evidence, &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Assessment.Votes) != 3 || ev.Recheck.Reason != detector.ReasonRefused || ev.Rule == "" {
		t.Fatalf("evidence = %+v", ev)
	}
	if a.calls != 1 {
		t.Fatalf("recheck calls = %d, want 1", a.calls)
	}
	if !strings.Contains(r.Detail, "no recovery configured") {
		t.Fatalf("detail = %q", r.Detail)
	}
}

func TestDecider_NoDecision(t *testing.T) {
	cases := []struct {
		name   string
		a      detector.Assessment
		probe  detector.ProbeResult
		leader bool
	}{
		{"suspect", with(dead("m:1"), func(a *detector.Assessment) { a.State = detector.AssessSuspect }), detector.ProbeResult{Reason: detector.ReasonRefused}, true},
		{"isolated", with(dead("m:1"), func(a *detector.Assessment) { a.State = detector.AssessIsolated }), detector.ProbeResult{Reason: detector.ReasonRefused}, true},
		{"replicas connected", with(dead("m:1"), func(a *detector.Assessment) { a.State = detector.AssessReplicasStillConnected }), detector.ProbeResult{Reason: detector.ReasonRefused}, true},
		{"recheck answers", dead("m:1"), detector.ProbeResult{OK: true, Reason: detector.ReasonOK}, true},
		{"recheck degraded", dead("m:1"), detector.ProbeResult{Reason: detector.ReasonTooManyConnections}, true},
		{"lost leadership", dead("m:1"), detector.ProbeResult{Reason: detector.ReasonTimeout}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, g, a := newTestDecider(t)
			a.recheck = c.probe
			g.notLeader = !c.leader
			err := d.Handle(context.Background(), c.a)
			if !c.leader && err == nil {
				t.Fatal("want an error when leadership cannot be verified")
			}
			if n := g.f.RecordCount(); n != 0 {
				t.Fatalf("records = %d, want none", n)
			}
		})
	}
}

func with(a detector.Assessment, f func(*detector.Assessment)) detector.Assessment { f(&a); return a }

func TestDecider_OneDecisionPerIncident(t *testing.T) {
	d, g, _ := newTestDecider(t)
	ctx := context.Background()
	for range 3 {
		if err := d.Handle(ctx, dead("m:1")); err != nil {
			t.Fatal(err)
		}
	}
	if n := g.f.RecordCount(); n != 1 {
		t.Fatalf("records after repeated DeadConfirmed = %d, want 1", n)
	}
	// A new leader (fresh Decider, same replicated state) does not decide
	// the same incident again.
	d2 := NewRunner(RunnerConfig{NodeID: "c2", Now: func() time.Time { return t0 }}, g, g.f, &fakeAssessor{recheck: detector.ProbeResult{Reason: detector.ReasonRefused}}, nil, nil)
	if err := d2.Handle(ctx, dead("m:1")); err != nil {
		t.Fatal(err)
	}
	if n := g.f.RecordCount(); n != 1 {
		t.Fatalf("records after leader change = %d, want 1", n)
	}
	// Healthy again, then dead again: a new incident, a new decision.
	if err := d2.Handle(ctx, with(dead("m:1"), func(a *detector.Assessment) { a.State = detector.AssessHealthy })); err != nil {
		t.Fatal(err)
	}
	if err := d2.Handle(ctx, dead("m:1")); err != nil {
		t.Fatal(err)
	}
	if n := g.f.RecordCount(); n != 2 {
		t.Fatalf("records after a second incident = %d, want 2", n)
	}
}

func TestDecider_OpenRecordBlocksDecision(t *testing.T) {
	d, g, _ := newTestDecider(t)
	cmd, _ := fsm.Encode(fsm.RecordOpenType, fsm.RecordOpen{Cluster: "app1", Kind: fsm.KindSwitchover, Trigger: "manual", OpenedBy: "op", At: t0})
	if _, err := g.Apply(context.Background(), cmd); err != nil {
		t.Fatal(err)
	}
	if err := d.Handle(context.Background(), dead("m:1")); err != nil {
		t.Fatal(err)
	}
	if n := g.f.RecordCount(); n != 1 {
		t.Fatalf("records = %d, want only the open switchover", n)
	}
}

func TestDecider_RunStopsWithContext(t *testing.T) {
	d, g, a := newTestDecider(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	// A stale update queued while this controller was a follower is
	// dropped; the current assessment is what counts.
	a.ch <- with(dead("m:0"), func(a *detector.Assessment) { a.Cluster = "stale" })
	a.mu.Lock()
	a.current = []detector.Assessment{dead("m:1")}
	a.mu.Unlock()
	go func() { d.Run(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for g.f.RecordCount() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if g.f.RecordCount() != 1 {
		t.Fatalf("records = %d, want 1", g.f.RecordCount())
	}
	if _, ok := g.f.Cluster("stale"); ok {
		t.Fatal("a stale queued update was acted on")
	}
}

func TestDecider_HealthyRecordsFirstMasterOnly(t *testing.T) {
	d, g, _ := newTestDecider(t)
	healthy := with(dead("m:1"), func(a *detector.Assessment) { a.State = detector.AssessHealthy })
	if err := d.Handle(context.Background(), healthy); err != nil {
		t.Fatal(err)
	}
	if cs, _ := g.f.Cluster("app1"); cs.Master != "m:1" {
		t.Fatalf("recorded master = %q, want m:1", cs.Master)
	}
	// A later healthy assessment of another instance does not overwrite it:
	// only failover and switchover records move a recorded master.
	if err := d.Handle(context.Background(), with(healthy, func(a *detector.Assessment) { a.Master = "m:2" })); err != nil {
		t.Fatal(err)
	}
	if cs, _ := g.f.Cluster("app1"); cs.Master != "m:1" {
		t.Fatalf("recorded master = %q after another healthy master, want m:1", cs.Master)
	}
}

func TestRunnerSetHooks_OverridesNamedClustersOnly(t *testing.T) {
	d := NewRunner(RunnerConfig{NodeID: "c1", Clusters: []ClusterConfig{
		{Name: "a", Hooks: ClusterHooks{Report: "/old/report"}},
		{Name: "b", Hooks: ClusterHooks{Report: "/b/report"}},
	}}, nil, nil, nil, nil, nil)
	d.SetHooks(map[string]ClusterHooks{"a": {Report: "/new/report", Shutdown: "/new/shutdown"}})
	a, _ := d.clusterConfig("a")
	if a.Hooks != (ClusterHooks{Report: "/new/report", Shutdown: "/new/shutdown"}) {
		t.Errorf("a hooks %+v", a.Hooks)
	}
	b, _ := d.clusterConfig("b")
	if b.Hooks.Report != "/b/report" {
		t.Errorf("b hooks %+v", b.Hooks)
	}
	if _, ok := d.clusterConfig("c"); ok {
		t.Error("hooks of an unconfigured cluster made it configured")
	}
}
