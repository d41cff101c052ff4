package recovery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/fsm"
)

// roleChanging reports the fake cluster's statements that change a server's
// role: read_only off, CHANGE MASTER, START SLAVE (both threads or IO),
// RESET SLAVE ALL.
func roleChanging(op string) bool {
	for _, s := range []string{" read_only=false", " change master ", " start both", " start io", " reset replica all"} {
		if strings.Contains(op, s) {
			return true
		}
	}
	return false
}

// deposeAt runs one record with leadership lost right after statement
// number at (0-based) ran, and checks that no role-changing statement ran
// after it and the record stayed open for the next leader.
func deposeAt(t *testing.T, e *execEnv, id uint64, at int) {
	t.Helper()
	e.f.onOp = func(n int, _ string) {
		if n == at {
			e.g.setLost(true)
		}
	}
	_, err := e.executor("c1").Execute(context.Background(), e.cc, id)
	if !errors.Is(err, ErrLeadershipLost) {
		t.Fatalf("err = %v, want ErrLeadershipLost", err)
	}
	ops := e.f.opsSnapshot()
	for _, op := range ops[at+1:] {
		if roleChanging(op) {
			t.Fatalf("%q ran after leadership was lost at %q; ops %v", op, ops[at], ops)
		}
	}
	if r := e.record(t, id); !r.IsOpen() {
		t.Fatalf("a deposed leader closed the record: %+v", r)
	}
}

// TestExecutor_DeposedMidStepChangesNoRole deposes the leader right after
// each statement of a failover in turn, inside the step that runs it: the
// check before each role-changing statement stops the rest of the run.
func TestExecutor_DeposedMidStepChangesNoRole(t *testing.T) {
	base := newExecEnv(t)
	if res, err := base.executor("c1").Execute(context.Background(), base.cc, base.open(t, "")); err != nil || res != fsm.ResultSuccess {
		t.Fatalf("baseline = %q, %v", res, err)
	}
	ops := base.f.opsSnapshot()
	for i, op := range ops {
		t.Run(fmt.Sprintf("%d %s", i, op), func(t *testing.T) {
			e := newExecEnv(t)
			deposeAt(t, e, e.open(t, ""), i)
		})
	}
}

// switchoverEnv is a live master mOld with rA and rB level with it.
func switchoverEnv(t *testing.T) (*execEnv, uint64) {
	t.Helper()
	e := newExecEnv(t)
	e.f.set(mOld, func(n *fakeNode) { n.up, n.readOnly = true, false })
	e.f.set(rA, func(n *fakeNode) { n.seq, n.recv = 12, 12 })
	e.f.set(rB, func(n *fakeNode) { n.seq, n.recv = 12, 12 })
	ev := fmt.Sprintf(`{"by":"op","target":%q,"timeout":%d}`, rA, time.Second)
	cmd, _ := fsm.Encode(fsm.RecordOpenType, fsm.RecordOpen{Cluster: "app1", Kind: fsm.KindSwitchover, Trigger: "switchover",
		OldMaster: mOld, OpenedBy: "c1", At: t0, Evidence: []byte(ev)})
	id, err := e.g.Apply(context.Background(), cmd)
	if err != nil {
		t.Fatal(err)
	}
	cmd, _ = fsm.Encode(fsm.CandidatesType, fsm.Candidates{RecordID: id.(uint64), Candidates: []fsm.Candidate{{Address: rA, Chosen: true, Reason: "target"}}})
	if _, err := e.g.Apply(context.Background(), cmd); err != nil {
		t.Fatal(err)
	}
	return e, id.(uint64)
}

// TestSwitchover_DeposedMidStepChangesNoRole is the same for a switchover.
func TestSwitchover_DeposedMidStepChangesNoRole(t *testing.T) {
	base, id := switchoverEnv(t)
	if res, err := base.executor("c1").Execute(context.Background(), base.cc, id); err != nil || res != fsm.ResultSuccess {
		t.Fatalf("baseline = %q, %v; record %+v", res, err, base.record(t, id))
	}
	ops := base.f.opsSnapshot()
	for i, op := range ops {
		t.Run(fmt.Sprintf("%d %s", i, op), func(t *testing.T) {
			e, id := switchoverEnv(t)
			deposeAt(t, e, id, i)
		})
	}
}
