package recovery

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/detector"
	"github.com/quorumha/quorumha/fsm"
)

func TestDecidedThisIncident(t *testing.T) {
	const m = "m:1"
	day := 24 * time.Hour
	cs := fsm.ClusterState{Name: "app1", Master: m, MasterSetAt: t0.Add(-30 * day)}
	failed := fsm.Record{Cluster: "app1", Kind: fsm.KindFailover, OldMaster: m, Opened: t0, Closed: t0.Add(time.Minute), Result: fsm.ResultFailed}
	withRec := func(r fsm.Record, f func(*fsm.Record)) fsm.Record { f(&r); return r }
	promoteBegan := []fsm.Step{{Name: StepFence, Outcome: fsm.OutcomeOK}, {Name: StepPromote, Outcome: fsm.OutcomeRunning}}
	tests := []struct {
		name      string
		rec       fsm.Record
		master    string
		cs        fsm.ClusterState
		lastAlive time.Time
		want      bool
	}{
		{"failed failover of this incident", failed, m, cs, t0.Add(-10 * time.Second), true},
		{"no controller has seen it alive since starting", failed, m, cs, time.Time{}, true},
		{"refused under anti-flap", withRec(failed, func(r *fsm.Record) { r.Result = fsm.ResultRefused }), m, cs, time.Time{}, true},
		{"detection record", withRec(failed, func(r *fsm.Record) { r.Kind, r.Result = fsm.KindDetection, fsm.ResultDetected }), m, cs, time.Time{}, true},
		{"master answered after the record closed", failed, m, cs, t0.Add(2 * time.Minute), false},
		{"rolled-back switchover weeks ago", withRec(failed, func(r *fsm.Record) {
			r.Kind, r.Result, r.Opened, r.Closed = fsm.KindSwitchover, fsm.ResultRolledBack, t0.Add(-21*day), t0.Add(-21*day)
		}), m, cs, time.Time{}, false},
		{"record older than the master's return", failed, m, recordedAt(cs, t0.Add(time.Hour)), time.Time{}, false},
		{"open record", withRec(failed, func(r *fsm.Record) { r.Result, r.Closed = fsm.ResultOpen, time.Time{} }), m, cs, time.Time{}, false},
		{"record of another master", failed, "m:2", cs, time.Time{}, false},
		{"master names differ only in case", failed, "M:1", cs, time.Time{}, true},
		{"aborted before anything changed", withRec(failed, func(r *fsm.Record) {
			r.Result, r.Steps = fsm.ResultAborted, []fsm.Step{{Name: StepFence, Outcome: fsm.OutcomeOK}, {Name: StepStopIO, Outcome: fsm.OutcomeFailed}}
		}), m, cs, time.Time{}, false},
		{"aborted at the fence", withRec(failed, func(r *fsm.Record) {
			r.Result, r.Steps = fsm.ResultAborted, []fsm.Step{{Name: StepFence, Outcome: fsm.OutcomeFailed}}
		}), m, cs, time.Time{}, true},
		{"aborted after promote began", withRec(failed, func(r *fsm.Record) { r.Result, r.Steps = fsm.ResultAborted, promoteBegan }), m, cs, time.Time{}, true},
		{"aborted after promote began, acked since", withRec(failed, func(r *fsm.Record) { r.Result, r.Steps = fsm.ResultAborted, promoteBegan }),
			m, ackedAt(cs, t0.Add(time.Hour)), time.Time{}, false},
		{"aborted after promote began, acked before it closed", withRec(failed, func(r *fsm.Record) { r.Result, r.Steps = fsm.ResultAborted, promoteBegan }),
			m, ackedAt(cs, t0.Add(-time.Hour)), time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DecidedThisIncident(tt.rec, tt.master, tt.cs, tt.lastAlive); got != tt.want {
				t.Fatalf("DecidedThisIncident = %v, want %v", got, tt.want)
			}
		})
	}
}

// recordedAt sets when the master was (re)recorded.
func recordedAt(cs fsm.ClusterState, at time.Time) fsm.ClusterState { cs.MasterSetAt = at; return cs }

// ackedAt sets when the cluster was acknowledged.
func ackedAt(cs fsm.ClusterState, at time.Time) fsm.ClusterState {
	cs.AckedAt, cs.AckedBy = at, "op"
	return cs
}

func TestLastSeenAlive(t *testing.T) {
	a := dead("m:1")
	a.Votes[0].LastPositionAt = t0.Add(-3 * time.Second)
	a.Votes[1].LastPositionAt = t0.Add(-2 * time.Second)
	a.Stale = []detector.Verdict{
		{Controller: "c4", Instance: "m:1", LastPositionAt: t0.Add(-time.Second)},
		{Controller: "c1", Instance: "old:1", LastPositionAt: t0}, // another instance says nothing
	}
	if got := LastSeenAlive(a); !got.Equal(t0.Add(-time.Second)) {
		t.Fatalf("LastSeenAlive = %v", got)
	}
}

// TestDecider_OldClosedRecordIsNotThisIncident is issue 13's case: weeks
// after a rolled-back switchover of the same master, a new leader (no
// memory) must decide the master's real death.
func TestDecider_OldClosedRecordIsNotThisIncident(t *testing.T) {
	d, g, _ := newTestDecider(t)
	ctx := context.Background()
	old := t0.Add(-21 * 24 * time.Hour)
	for _, c := range []struct {
		typ fsm.MessageType
		p   any
	}{
		{fsm.SetMasterType, fsm.SetMaster{Cluster: "app1", Master: "m:1", At: old.Add(-time.Hour)}},
		{fsm.RecordOpenType, fsm.RecordOpen{Cluster: "app1", Kind: fsm.KindSwitchover, Trigger: "switchover", OldMaster: "m:1", OpenedBy: "c9", At: old}},
		{fsm.RecordCloseType, fsm.RecordClose{RecordID: 2, At: old, Result: fsm.ResultRolledBack, Detail: "rolled back"}},
	} {
		cmd, _ := fsm.Encode(c.typ, c.p)
		if _, err := g.Apply(ctx, cmd); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Handle(ctx, dead("m:1")); err != nil {
		t.Fatal(err)
	}
	if n := g.f.RecordCount(); n != 2 {
		t.Fatalf("records = %d, want the old switchover and a new decision", n)
	}
}

// TestRunner_AbortedAfterPromoteNeedsOperator: a failover aborted after its
// promote began is not decided again automatically, says why in its detail,
// and an ack lets the next assessment decide again.
func TestRunner_AbortedAfterPromoteNeedsOperator(t *testing.T) {
	e := newRunnerEnv(t)
	id := beginPromote(t, e.execEnv)
	e.f.set(rA, func(n *fakeNode) { n.up = false }) // nobody can tell whether it was promoted
	e.a.mu.Lock()
	e.a.current = []detector.Assessment{deadApp(mOld)}
	e.a.mu.Unlock()
	e.run(t)
	r := e.waitClosed(t, id)
	if r.Result != fsm.ResultAborted || !strings.Contains(r.Detail, "not retried automatically") {
		t.Fatalf("record %+v", r)
	}
	for range 3 {
		if err := e.r.Handle(context.Background(), deadApp(mOld)); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.g.f.RecordCount(); n != 1 {
		t.Fatalf("records = %d: an aborted-after-promote failover was decided again", n)
	}
	cmd, _ := fsm.Encode(fsm.AckType, fsm.Ack{Cluster: "app1", By: "op", At: r.Closed.Add(time.Minute)})
	if _, err := e.g.Apply(context.Background(), cmd); err != nil {
		t.Fatal(err)
	}
	if err := e.r.Handle(context.Background(), deadApp(mOld)); err != nil {
		t.Fatal(err)
	}
	if n := e.g.f.RecordCount(); n != 2 {
		t.Fatalf("records = %d after an ack, want a new decision", n)
	}
}
