package recovery

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/quorumha/quorumha/detector"
	"github.com/quorumha/quorumha/fsm"
)

// TestExecutor_FailedBeforePromoteRestartsIO: a failover that fails after
// stop_io but before promote leaves the replicas replicating as before.
func TestExecutor_FailedBeforePromoteRestartsIO(t *testing.T) {
	e := newExecEnv(t)
	for i := range e.cc.Instances[1:] {
		e.cc.Instances[1+i].NoMaster = true // select finds no candidate
	}
	id := e.open(t, "")
	res, err := e.executor("c1").Execute(context.Background(), e.cc, id)
	if err != nil || res != fsm.ResultFailed {
		t.Fatalf("failover = %q, %v", res, err)
	}
	r := e.record(t, id)
	if s, _ := stepNamed(r, StepStopIO); s.Outcome != fsm.OutcomeOK {
		t.Fatalf("stop_io did not run: %+v", r.Steps)
	}
	for _, a := range []string{rA, rB} {
		if n := e.f.node(a); !n.io || n.master != mOld {
			t.Fatalf("%s: IO %t, master %q; want its IO thread running again towards %s", a, n.io, n.master, mOld)
		}
	}
	if !strings.Contains(r.Detail, "IO thread started again on "+rA+", "+rB) {
		t.Fatalf("detail %q", r.Detail)
	}
	if w := e.f.writable(); len(w) != 0 {
		t.Fatalf("writable after a failed failover: %v", w)
	}
}

// TestRunner_ManualFailoverOfLiveMasterNeedsForce: a master the leader's
// probe reaches, or that the controllers assess alive, is failed over only
// with Force, and the record says it was forced and why.
func TestRunner_ManualFailoverOfLiveMasterNeedsForce(t *testing.T) {
	alive := detector.ProbeResult{Instance: mOld, OK: true, Reason: detector.ReasonOK}
	healthy := with(deadApp(mOld), func(a *detector.Assessment) { a.State, a.Reason = detector.AssessHealthy, "3 of 3 up" })
	for _, tt := range []struct {
		name    string
		recheck *detector.ProbeResult
		assess  *detector.Assessment
	}{
		{"answers the leader's probe", &alive, nil},
		{"the quorum sees it up", nil, &healthy},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newRunnerEnv(t)
			if tt.recheck != nil {
				e.a.recheck = *tt.recheck
			}
			if tt.assess != nil {
				e.a.current = []detector.Assessment{*tt.assess}
			}
			e.f.set(mOld, func(n *fakeNode) { n.up, n.readOnly = true, false })
			e.run(t)
			ctx := context.Background()
			_, err := e.r.ManualFailover(ctx, ManualFailoverRequest{Cluster: "app1", By: "op"})
			if !errors.Is(err, ErrMasterAlive) || !strings.Contains(err.Error(), "--force") {
				t.Fatalf("err = %v, want ErrMasterAlive naming --force", err)
			}
			if n := e.g.f.RecordCount(); n != 0 {
				t.Fatalf("records = %d after a refusal", n)
			}
			res, err := e.r.ManualFailover(ctx, ManualFailoverRequest{Cluster: "app1", By: "op", Force: true})
			if err != nil || res.RecordID == 0 {
				t.Fatalf("forced: %+v, %v", res, err)
			}
			ev, ok := manualEvidence(e.record(t, res.RecordID))
			if !ok || !ev.Force || ev.Alive == "" {
				t.Fatalf("evidence %+v", ev)
			}
			e.waitClosed(t, res.RecordID)
		})
	}
}

// TestRunner_ResumedBeforeFenceRechecksMaster: a record left open before its
// fence began is closed, untouched, when the master answers the new
// leader's probe; one whose fence began is resumed.
func TestRunner_ResumedBeforeFenceRechecksMaster(t *testing.T) {
	t.Run("fence not begun", func(t *testing.T) {
		e := newRunnerEnv(t)
		id := e.open(t, "")
		e.a.recheck = detector.ProbeResult{Instance: mOld, OK: true, Reason: detector.ReasonOK}
		e.run(t)
		r := e.waitClosed(t, id)
		if r.Result != fsm.ResultAborted || !strings.Contains(r.Detail, "master answered again before fencing") || len(r.Steps) != 0 {
			t.Fatalf("record %+v", r)
		}
		if ops := e.f.opsSnapshot(); len(ops) != 0 {
			t.Fatalf("instances touched: %v", ops)
		}
	})
	t.Run("fence begun", func(t *testing.T) {
		e := newRunnerEnv(t)
		id := e.open(t, "")
		e.g.limit = 1 // the previous leader fenced, then died
		if _, err := e.executor("c0").Execute(context.Background(), e.cc, id); !errors.Is(err, ErrLeadershipLost) {
			t.Fatal(err)
		}
		e.g.mu.Lock()
		e.g.limit = -1
		e.g.mu.Unlock()
		e.a.recheck = detector.ProbeResult{Instance: mOld, OK: true, Reason: detector.ReasonOK}
		e.run(t)
		if r := e.waitClosed(t, id); r.Result != fsm.ResultSuccess {
			t.Fatalf("record %+v", r)
		}
	})
}
