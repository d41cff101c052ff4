package recovery

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/quorumha/quorumha/fsm"
)

// The fake's GTID state setters, for rejoin.
func (c *fakeConn) SetGTIDSlavePos(_ context.Context, pos string) error {
	return c.do("gtid_slave_pos="+pos, func(*fakeNode) error { return nil })
}

func (c *fakeConn) ResetGTIDState(_ context.Context, pos string) error {
	return c.do("reset gtid state="+pos, func(*fakeNode) error { return nil })
}

// rejoinEnv is a runner whose cluster failed over from mOld to rA; mOld is
// back, read-only and alone, at rA's position.
func rejoinEnv(t *testing.T) *runnerEnv {
	t.Helper()
	e := newRunnerEnv(t)
	cmd, _ := fsm.Encode(fsm.SetMasterType, fsm.SetMaster{Cluster: "app1", Master: rA, At: t0})
	if _, err := e.g.Apply(context.Background(), cmd); err != nil {
		t.Fatal(err)
	}
	e.f.set(mOld, func(n *fakeNode) { n.up, n.readOnly, n.seq, n.recv = true, true, 10, 10 })
	e.f.set(rA, func(n *fakeNode) { n.master, n.readOnly = "", false })
	return e
}

func TestRunner_RejoinRefusals(t *testing.T) {
	ctx := context.Background()
	e := rejoinEnv(t)
	e.run(t)
	for _, tt := range []struct {
		name string
		req  RejoinRequest
		want error
		text string
	}{
		{"unknown cluster", RejoinRequest{Cluster: "nope", Instance: mOld}, ErrUnknownCluster, "nope"},
		{"not configured", RejoinRequest{Cluster: "app1", Instance: "10.9.9.9:3306"}, ErrRejoinRefused, "not a configured instance"},
		{"the master", RejoinRequest{Cluster: "app1", Instance: rA}, ErrRejoinRefused, "recorded master"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.r.Rejoin(ctx, tt.req)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("err %v, want %v naming %q", err, tt.want, tt.text)
			}
		})
	}
	t.Run("errant without rewind", func(t *testing.T) {
		e.f.set(mOld, func(n *fakeNode) { n.errant = "0-9-3" })
		defer e.f.set(mOld, func(n *fakeNode) { n.errant = "" })
		res, err := e.r.Rejoin(ctx, RejoinRequest{Cluster: "app1", Instance: mOld})
		if !errors.Is(err, ErrRejoinRefused) || !slices.Equal(res.Errant, []string{"0-9-1..3"}) || !strings.Contains(err.Error(), "0-9-1..3") {
			t.Fatalf("res %+v err %v", res, err)
		}
	})
	t.Run("no repl_user", func(t *testing.T) {
		cc := e.cc
		cc.ReplUser = ""
		e.r.cfg.Clusters = []ClusterConfig{cc}
		defer func() { e.r.cfg.Clusters = []ClusterConfig{e.cc} }()
		if _, err := e.r.Rejoin(ctx, RejoinRequest{Cluster: "app1", Instance: mOld}); !errors.Is(err, ErrRejoinRefused) || !strings.Contains(err.Error(), "clusters[].repl_user") {
			t.Fatalf("err %v", err)
		}
	})
	if n := e.g.f.RecordCount(); n != 0 {
		t.Fatalf("refusals opened %d records", n)
	}
	if ops := e.f.opsSnapshot(); len(ops) != 0 {
		t.Fatalf("refusals changed instances: %v", ops)
	}
}

func TestRunner_RejoinClean(t *testing.T) {
	ctx := context.Background()
	e := rejoinEnv(t)
	e.run(t)
	dry, err := e.r.Rejoin(ctx, RejoinRequest{Cluster: "app1", Instance: mOld, DryRun: true})
	if err != nil || !dry.DryRun || dry.RecordID != 0 || len(e.f.opsSnapshot()) != 0 {
		t.Fatalf("dry run %+v err %v ops %v", dry, err, e.f.opsSnapshot())
	}
	res, err := e.r.Rejoin(ctx, RejoinRequest{Cluster: "app1", Instance: mOld, By: "op"})
	if err != nil || res.RecordID == 0 {
		t.Fatalf("rejoin %+v: %v", res, err)
	}
	rec := e.waitClosed(t, res.RecordID)
	if rec.Kind != fsm.KindRejoin || rec.Result != fsm.ResultSuccess {
		t.Fatalf("record %+v", rec)
	}
	var names []string
	for _, s := range rec.Steps {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, RejoinPlan(false)) {
		t.Fatalf("steps %v, want %v", names, RejoinPlan(false))
	}
	n := e.f.node(mOld)
	if n.master != rA || !n.io || !n.sql || !n.readOnly {
		t.Fatalf("old master after rejoin: %+v", n)
	}
	if !slices.Contains(e.f.opsSnapshot(), mOld+" gtid_slave_pos=0-1-10") {
		t.Fatalf("gtid_slave_pos not set to the instance's position: %v", e.f.opsSnapshot())
	}
	if cs, _ := e.g.f.Cluster("app1"); cs.Master != rA {
		t.Fatalf("a rejoin changed the recorded master to %q", cs.Master)
	}
	// A second rejoin of the same instance is refused only if something
	// is open; this one runs again harmlessly.
	if _, err := e.r.Rejoin(ctx, RejoinRequest{Cluster: "app1", Instance: mOld}); err != nil {
		t.Fatalf("second rejoin: %v", err)
	}
}

func TestRejoinResumeClosesOpenRecord(t *testing.T) {
	e := rejoinEnv(t)
	cmd, _ := fsm.Encode(fsm.RecordOpenType, fsm.RecordOpen{Cluster: "app1", Kind: fsm.KindRejoin, Trigger: "manual", OldMaster: mOld, OpenedBy: "op", At: t0,
		Evidence: []byte(`{"by":"op","instance":"` + mOld + `","master":"` + rA + `"}`)})
	id, err := e.g.Apply(context.Background(), cmd)
	if err != nil {
		t.Fatal(err)
	}
	e.run(t)
	rec := e.waitClosed(t, id.(uint64))
	if rec.Result != fsm.ResultAborted || !strings.Contains(rec.Detail, "run rejoin again") {
		t.Fatalf("record left open by a previous leader: %+v", rec)
	}
}
