package recovery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/detector"
	"github.com/quorumha/quorumha/fsm"
)

type runnerEnv struct {
	*execEnv
	a *fakeAssessor
	r *Runner
}

func newRunnerEnv(t *testing.T) *runnerEnv {
	t.Helper()
	e := newExecEnv(t)
	a := &fakeAssessor{ch: make(chan detector.Assessment, 1), recheck: detector.ProbeResult{Instance: mOld, Reason: detector.ReasonRefused}}
	r := NewRunner(RunnerConfig{NodeID: "c1", AntiFlap: time.Hour, Now: func() time.Time { return t0 }, Clusters: []ClusterConfig{e.cc},
		Executor: ExecutorConfig{ApplyTimeout: time.Second, Lease: leaseLapsed()}}, e.g, e.g.f, a, e.f.dial, e.hooks.run)
	return &runnerEnv{execEnv: e, a: a, r: r}
}

// run starts the runner's leadership term; the returned stop ends it and
// waits for Run (and its executors) to return.
func (e *runnerEnv) run(t *testing.T) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.r.Run(ctx); close(done) }()
	// Run publishes its context first; wait for it so calls that need a
	// running term do not race the start.
	poll(t, func() error {
		e.r.mu.Lock()
		defer e.r.mu.Unlock()
		if e.r.runCtx == nil {
			return errors.New("runner not started")
		}
		return nil
	})
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// poll retries f every 5 ms until it succeeds or 10 s pass.
func poll(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *runnerEnv) waitClosed(t *testing.T, id uint64) fsm.Record {
	t.Helper()
	var r fsm.Record
	poll(t, func() error {
		r = e.record(t, id)
		if r.IsOpen() {
			return fmt.Errorf("record %d open, %d steps", id, len(r.Steps))
		}
		return nil
	})
	return r
}

// runUntilRecord starts the runner with the old master assessed dead and
// returns the id of the first record it opens.
func (e *runnerEnv) runUntilRecord(t *testing.T) uint64 {
	t.Helper()
	e.a.mu.Lock()
	e.a.current = []detector.Assessment{deadApp(mOld)}
	e.a.mu.Unlock()
	e.run(t)
	var id uint64
	poll(t, func() error {
		recs := e.g.f.History("app1", 0)
		if len(recs) == 0 {
			return errors.New("no record")
		}
		id = recs[0].ID
		return nil
	})
	return id
}

func deadApp(master string) detector.Assessment { return dead(master) } // cluster app1

func TestRunner_DeadConfirmedRunsFailover(t *testing.T) {
	e := newRunnerEnv(t)
	id := e.runUntilRecord(t)
	r := e.waitClosed(t, id)
	if r.Kind != fsm.KindFailover || r.Trigger != "automatic" || r.Result != fsm.ResultSuccess || r.NewMaster != rA {
		t.Fatalf("record %+v", r)
	}
	e.requireFailedOver(t, id)
	// The same incident (the old master still assessed dead) opens nothing more.
	if err := e.r.Handle(context.Background(), deadApp(mOld)); err != nil {
		t.Fatal(err)
	}
	if n := e.g.f.RecordCount(); n != 1 {
		t.Fatalf("records = %d, want 1", n)
	}
}

func TestRunner_RefusedOncePerIncident(t *testing.T) {
	e := newRunnerEnv(t)
	cmd, _ := fsm.Encode(fsm.MaintenanceType, fsm.Maintenance{Cluster: "app1", Until: t0.Add(time.Hour), Reason: "upgrade", By: "op"})
	if _, err := e.g.Apply(context.Background(), cmd); err != nil {
		t.Fatal(err)
	}
	e.run(t)
	for range 3 {
		if err := e.r.Handle(context.Background(), deadApp(mOld)); err != nil {
			t.Fatal(err)
		}
	}
	recs := e.g.f.History("app1", 0)
	if len(recs) != 1 {
		t.Fatalf("records = %d, want 1", len(recs))
	}
	r := recs[0]
	if r.Kind != fsm.KindFailover || r.Result != fsm.ResultRefused || !strings.Contains(r.Detail, "maintenance") || len(r.Steps) != 0 {
		t.Fatalf("record %+v", r)
	}
	if w := e.f.writable(); len(w) != 0 {
		t.Fatalf("refused failover changed instances: %v writable", w)
	}
}

func TestRunner_ResumesOpenRecordOnStart(t *testing.T) {
	e := newRunnerEnv(t)
	id := e.open(t, "")
	e.g.limit = 4 // a previous leader got through select and catch_up's start
	if _, err := e.executor("c0").Execute(context.Background(), e.cc, id); !errors.Is(err, ErrLeadershipLost) {
		t.Fatal(err)
	}
	e.g.mu.Lock()
	e.g.limit = -1
	e.g.mu.Unlock()
	e.run(t)
	r := e.waitClosed(t, id)
	if r.Result != fsm.ResultSuccess {
		t.Fatalf("record %+v", r)
	}
	e.requireFailedOver(t, id)
}

func TestRunner_ManualFailover(t *testing.T) {
	ctx := context.Background()
	t.Run("master alive", func(t *testing.T) {
		e := newRunnerEnv(t)
		e.a.recheck = detector.ProbeResult{Instance: mOld, OK: true, Reason: detector.ReasonOK}
		e.run(t)
		if _, err := e.r.ManualFailover(ctx, ManualFailoverRequest{Cluster: "app1", By: "op"}); !errors.Is(err, ErrMasterAlive) {
			t.Fatalf("err = %v, want ErrMasterAlive", err)
		}
	})
	t.Run("unknown and ineligible targets", func(t *testing.T) {
		// Validated the same way with and without DryRun.
		e := newRunnerEnv(t)
		if _, err := e.r.ManualFailover(ctx, ManualFailoverRequest{Cluster: "app1", To: "10.9.9.9:3306", DryRun: true}); !errors.Is(err, ErrTargetUnknown) {
			t.Fatalf("err = %v, want ErrTargetUnknown", err)
		}
		e.cc.Instances[2].NoMaster = true
		e.r.cfg.Clusters = []ClusterConfig{e.cc}
		res, err := e.r.ManualFailover(ctx, ManualFailoverRequest{Cluster: "app1", To: rB, DryRun: true})
		if !errors.Is(err, ErrTargetIneligible) || res.Selection == nil {
			t.Fatalf("err = %v (selection %v), want ErrTargetIneligible with the selection", err, res.Selection)
		}
		if _, err := e.r.ManualFailover(ctx, ManualFailoverRequest{Cluster: "nope"}); !errors.Is(err, ErrUnknownCluster) {
			t.Fatalf("err = %v, want ErrUnknownCluster", err)
		}
	})
	t.Run("dry run changes nothing", func(t *testing.T) {
		e := newRunnerEnv(t)
		res, err := e.r.ManualFailover(ctx, ManualFailoverRequest{Cluster: "app1", DryRun: true, By: "op"})
		if err != nil || !res.DryRun || res.Selection == nil || res.Selection.Chosen != rA || res.RecordID != 0 {
			t.Fatalf("dry run = %+v, %v", res, err)
		}
		if n := e.g.f.RecordCount(); n != 0 || len(e.f.opsSnapshot()) != 0 {
			t.Fatalf("dry run recorded %d records, ran %v", n, e.f.opsSnapshot())
		}
	})
	t.Run("runs in the term, not the request", func(t *testing.T) {
		e := newRunnerEnv(t)
		// Make anti-flap active: manual failover ignores it but says so.
		cmd, _ := fsm.Encode(fsm.MaintenanceType, fsm.Maintenance{Cluster: "app1", Until: t0.Add(time.Hour), Reason: "upgrade"})
		if _, err := e.g.Apply(ctx, cmd); err != nil {
			t.Fatal(err)
		}
		e.run(t)
		reqCtx, cancel := context.WithCancel(ctx)
		res, err := e.r.ManualFailover(reqCtx, ManualFailoverRequest{Cluster: "app1", To: rB, By: "alice"})
		cancel() // the request ends at once; the failover goes on
		if err != nil || res.RecordID == 0 {
			t.Fatalf("ManualFailover = %+v, %v", res, err)
		}
		r := e.waitClosed(t, res.RecordID)
		if r.Result != fsm.ResultSuccess || r.NewMaster != rB || r.Trigger != "manual" || r.OpenedBy != "alice" ||
			!strings.Contains(string(r.Evidence), "maintenance") || !strings.Contains(r.Detail, "manual failover by alice (manual failover ignores: maintenance") {
			t.Fatalf("record %+v evidence %s", r, r.Evidence)
		}
	})
	t.Run("not running: refused, nothing recorded", func(t *testing.T) {
		e := newRunnerEnv(t)
		if _, err := e.r.ManualFailover(ctx, ManualFailoverRequest{Cluster: "app1", By: "op"}); !errors.Is(err, ErrRunnerStopped) {
			t.Fatalf("err = %v, want ErrRunnerStopped", err)
		}
		if n := e.g.f.RecordCount(); n != 0 {
			t.Fatalf("records = %d", n)
		}
	})
	t.Run("open record: in progress", func(t *testing.T) {
		e := newRunnerEnv(t)
		e.open(t, "")
		e.r.exec.cfg.StepDelay = time.Minute // keep the resumed failover running
		e.run(t)
		if _, err := e.r.ManualFailover(ctx, ManualFailoverRequest{Cluster: "app1", By: "op"}); !errors.Is(err, ErrFailoverInProgress) {
			t.Fatalf("err = %v, want ErrFailoverInProgress", err)
		}
	})
}

// Scenario 22: after a failover, the old master restarted writable is made
// read-only again by the leader, and is not made a replica.
func TestRunner_FencesReturningOldMaster(t *testing.T) {
	e := newRunnerEnv(t)
	id := e.runUntilRecord(t)
	if r := e.waitClosed(t, id); r.Result != fsm.ResultSuccess {
		t.Fatalf("failover: %+v", r)
	}
	// The old master comes back writable and not replicating.
	e.f.set(mOld, func(n *fakeNode) { n.up, n.readOnly, n.master = true, false, "" })
	e.r.fenceReturned(context.Background())
	if n := e.f.node(mOld); !n.readOnly || n.master != "" {
		t.Fatalf("old master after fence: read_only=%v master=%q, want read-only and no replication", n.readOnly, n.master)
	}
	if w := e.f.writable(); len(w) != 1 || w[0] != rA {
		t.Fatalf("writable = %v, want only the new master %s", w, rA)
	}
}
