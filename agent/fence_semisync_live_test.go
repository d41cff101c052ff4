package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
)

// TestFence_SemiSyncWaitDoesNotHoldTheFence: a commit waiting for a
// semi-sync acknowledgement that never comes (its replica stopped, a 60 s timeout)
// holds SET GLOBAL read_only back. The agent's fence must not wait for it:
// it kills the waiting session while read_only waits, so the fence stands
// within its statement timeout, the waiting client gets an error (never an
// OK), and nothing is acknowledged afterwards. Setting read_only first and
// killing afterwards (the fence before this test) left the master writable
// until the semi-sync timeout: `make chaos` saw two servers with
// read_only=OFF after a promotion.
func TestFence_SemiSyncWaitDoesNotHoldTheFence(t *testing.T) {
	t.Parallel()
	lf := newLiveFenceWith(t, sandbox.Options{Replicas: 1, GTID: true, SemiSync: true,
		ExtraConfig: []string{"rpl_semi_sync_master_timeout=60000", "rpl_semi_sync_master_wait_no_slave=ON"}})
	lf.start()
	ctx := context.Background()

	stopRenew := lf.renewer("c1", "c2")
	lf.waitStatus("armed", func(s FenceStatus) bool { return s.State == FenceHeld })

	// The replica goes away: a write now waits for an acknowledgement no
	// replica will send (for 60 s).
	sctx, scancel := context.WithTimeout(ctx, 2*time.Minute)
	defer scancel()
	if err := lf.sb.StopInstance(sctx, 1); err != nil {
		t.Fatal(err)
	}
	type result struct{ err error }
	waiting := make(chan result, 1)
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer wcancel()
	go func() {
		conn, err := lf.admin.Conn(wctx)
		if err != nil {
			waiting <- result{err}
			return
		}
		defer conn.Close()
		_, err = conn.ExecContext(wctx, "INSERT INTO qha_test.f VALUES (100)")
		waiting <- result{err}
	}()
	// Precondition: it really waits for the ACK (else the test proves nothing).
	deadline := time.Now().Add(30 * time.Second)
	for !lf.semiSyncWaiter() {
		if time.Now().After(deadline) {
			t.Fatal("no session waits for a semi-sync ACK: the test's premise does not hold")
		}
		time.Sleep(50 * time.Millisecond) // polling the processlist
	}

	stopRenew()
	// The first attempt must stand: the controllers count the lease's
	// drift (0.5 s) for it, not the semi-sync timeout. Before the fix it
	// failed with a statement timeout on read_only (5 s, far below the
	// 60 s wait) and only a later attempt, after the kill, stood.
	st := lf.waitStatus("the first fencing attempt", func(s FenceStatus) bool {
		return s.State == FenceFenced && len(s.Actions) > 0
	})
	t.Logf("fenced: %+v", st)
	if len(st.Errors) != 0 || !strings.Contains(strings.Join(st.Actions, "; "), "global read lock held") {
		t.Fatalf("the first fencing attempt did not stand: errors %q, actions %q", st.Errors, st.Actions)
	}
	if on, ok := lf.readOnly(); !ok || !on {
		t.Fatalf("read_only after the fence: on=%v sampled=%v", on, ok)
	}
	select {
	case r := <-waiting:
		if r.err == nil {
			t.Fatal("the write waiting for a semi-sync ACK was acknowledged (OK) across the fence")
		}
		t.Logf("the waiting write's client got: %v", r.err)
	case <-time.After(30 * time.Second):
		t.Fatal("the write waiting for a semi-sync ACK still waits after the fence: its session was not killed")
	}
	if err := lf.adminWrite(101); !blockedByLock(err) {
		t.Fatalf("write as ALL PRIVILEGES while fenced: %v, want a lock wait error", err)
	}
}

// semiSyncWaiter reports whether a session of instance 0 waits for a
// semi-sync acknowledgement.
func (lf *liveFence) semiSyncWaiter() bool {
	lf.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	if err := lf.admin.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE LIKE '%semi-sync%'").Scan(&n); err != nil {
		lf.t.Fatal(err)
	}
	return n > 0
}
