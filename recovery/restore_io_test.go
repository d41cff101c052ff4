package recovery

import (
	"context"
	"strings"
	"testing"

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
