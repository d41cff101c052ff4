package consensus

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// shutdownWithin runs n.Shutdown(ctx of d) and fails the test when it
// has not returned a minute later: every wait in Shutdown is bounded by
// its ctx.
func shutdownWithin(t *testing.T, n *Node, d time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		done <- n.Shutdown(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		t.Fatalf("Shutdown with a %v context still blocked a minute later", d)
		return nil
	}
}

// TestShutdown_StuckRaftIsReportedNotWaitedFor stalls raft's FSM goroutine
// (an Apply that never returns), so raft's own shutdown cannot finish.
// Shutdown must still return by its deadline, say what did not stop, and
// close the transport it owns so the port is free and peers' RPCs end.
func TestShutdown_StuckRaftIsReportedNotWaitedFor(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	fsm := &testFSM{}
	release := fsm.armGate()
	defer release()
	n, err := New(Config{ID: "s1", RaftAddr: addr, Bootstrap: []Peer{{ID: "s1", RaftAddr: addr}},
		Timings: diskTimings(), InMemory: true, Logger: testLogger(t)}, fsm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.WaitForLeader(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Apply(ctxT(t, 500*time.Millisecond), []byte("block")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Apply(block) = %v, want the FSM to hold it past the deadline", err)
	}

	err = shutdownWithin(t, n, 2*time.Second)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "raft still stopping") {
		t.Fatalf("Shutdown = %v, want a report that raft is still stopping", err)
	}
	if st := raftStacks(); !strings.Contains(st, "(*testFSM).Apply") {
		t.Fatalf("raft's stacks do not show the stalled FSM Apply:\n%s", st)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the transport's port is still taken after Shutdown returned: %v", err)
	}
	ln.Close()
	release()
}

// TestShutdown_StuckLeaderWorkIsReported: OnLeader ignores its context.
// Shutdown returns by its deadline, names the leader work, and still shuts
// raft down (the node stops answering as a member).
func TestShutdown_StuckLeaderWorkIsReported(t *testing.T) {
	t.Parallel()
	unblock, started := make(chan struct{}), make(chan struct{}, 1)
	defer close(unblock)
	c := makeCluster(t, 1, func(cfg *Config, _ *testNode) {
		cfg.OnLeader = func(context.Context) {
			started <- struct{}{}
			<-unblock
		}
	})
	l := c.Leader()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("OnLeader never started")
	}
	err := shutdownWithin(t, l.node, time.Second)
	if err == nil || !strings.Contains(err.Error(), "leader work still running") {
		t.Fatalf("Shutdown = %v, want a report that leader work is still running", err)
	}
	poll(t, 10*time.Second, "raft shut down", func() bool { return l.node.raft.State().String() == "Shutdown" })
}

// neverFuture is a raft future raft took and never answers: raft v1.7
// drops the entries still queued for its FSM when it stops.
type neverFuture struct{ ch chan struct{} }

func (f neverFuture) Error() error { <-f.ch; return nil }

// TestShutdown_UnansweredFutureEndsItsCaller: a caller waiting on a
// future raft never answers gets ErrShutdown with an unknown outcome when
// the node stops, instead of waiting for its own deadline; Shutdown itself
// succeeds (the waiting goroutine is abandoned, not waited for).
func TestShutdown_UnansweredFutureEndsItsCaller(t *testing.T) {
	t.Parallel()
	c := makeCluster(t, 1, nil)
	l := c.Leader()
	never := neverFuture{ch: make(chan struct{})}
	defer close(never.ch)
	got := make(chan error, 1)
	go func() { got <- l.node.await(context.Background(), never) }()
	poll(t, 10*time.Second, "the caller waiting", func() bool { return l.node.pending.Load() == 1 })

	if err := shutdownWithin(t, l.node, 10*time.Second); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case err := <-got:
		if !errors.Is(err, ErrShutdown) || !errors.Is(err, ErrOutcomeUnknown) {
			t.Fatalf("await = %v, want ErrShutdown and ErrOutcomeUnknown", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the caller still waits a minute after Shutdown returned")
	}
}
