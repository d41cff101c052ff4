package recovery

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/quorumha/quorumha/fsm"
)

// TestExecutor_NoReplUserKeepsReplicaAccounts: without repl_user every
// CHANGE MASTER leaves the account out, so the replicas keep the working
// one they have (an empty MASTER_PASSWORD broke every repoint).
func TestExecutor_NoReplUserKeepsReplicaAccounts(t *testing.T) {
	e := newExecEnv(t)
	e.cc.ReplUser, e.cc.ReplPassword = "", ""
	e.f.accounts = map[string]string{"repl": "pw"}
	for _, a := range []string{rA, rB} {
		e.f.set(a, func(n *fakeNode) { n.user, n.pass = "repl", "pw" })
	}
	id := e.open(t, "")
	if res, err := e.executor("c1").Execute(context.Background(), e.cc, id); err != nil || res != fsm.ResultSuccess {
		t.Fatalf("failover = %q, %v; record %+v", res, err, e.record(t, id))
	}
	e.requireFailedOver(t, id)
	if b := e.f.node(rB); b.user != "repl" || b.pass != "pw" || b.ioErr != "" {
		t.Fatalf("repointed replica: account %q/%q, IO error %q", b.user, b.pass, b.ioErr)
	}
	if s, _ := stepNamed(e.record(t, id), StepCatchUp); !strings.Contains(s.Detail, "keeps its replication account") {
		t.Fatalf("catch_up detail %q does not say the account was kept", s.Detail)
	}
}

func TestSwitchover_RequiresReplUser(t *testing.T) {
	e := newRunnerEnv(t)
	e.cc.ReplUser = ""
	e.r.cfg.Clusters = []ClusterConfig{e.cc}
	e.run(t)
	_, err := e.r.Switchover(context.Background(), SwitchoverRequest{Cluster: "app1", To: rA, By: "op"})
	if !errors.Is(err, ErrSwitchoverRefused) || !strings.Contains(err.Error(), `"app1"`) || !strings.Contains(err.Error(), "repl_user") {
		t.Fatalf("err = %v, want a refusal naming the cluster and repl_user", err)
	}
	if n := e.g.f.RecordCount(); n != 0 {
		t.Fatalf("records = %d: a refused switchover opened one", n)
	}
}

// TestSwitchover_OldAsReplicaChecksIOThread: the old master pointed at the
// new one but unable to connect is reported in the step, not called done.
func TestSwitchover_OldAsReplicaChecksIOThread(t *testing.T) {
	e, id := switchoverEnv(t)
	e.f.accounts = map[string]string{"repl": "another password"}
	if res, err := e.executor("c1").Execute(context.Background(), e.cc, id); err != nil || res != fsm.ResultSuccess {
		t.Fatalf("switchover = %q, %v", res, err)
	}
	s, _ := stepNamed(e.record(t, id), StepOldAsReplica)
	if s.Outcome != fsm.OutcomeWarning || !strings.Contains(s.Detail, "does not replicate") || !strings.Contains(s.Detail, "Access denied") {
		t.Fatalf("old_as_replica = %s: %s", s.Outcome, s.Detail)
	}
}
