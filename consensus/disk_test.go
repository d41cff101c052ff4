package consensus

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/quorumha/quorumha/tests/harness"
)

// freeAddr is a loopback address no other test of this process was given
// and nothing listens on. The port comes from below the kernel's
// ephemeral range (harness.FreePorts): a port from bind(:0), closed and
// handed on, could be handed out again by the next bind(:0) (seen: two
// voters of one group given the same address) or taken as the source port
// of a connection before the node binds it.
func freeAddr(t *testing.T) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(harness.FreePorts(t, 1)[0]))
}

// diskTimings are testTimings relaxed for real TCP and bbolt's fsyncs on
// a busy machine, as tlsTimings are for TLS.
func diskTimings() Timings {
	t := testTimings()
	t.HeartbeatTimeout, t.ElectionTimeout, t.LeaderLeaseTimeout = time.Second, time.Second, 500*time.Millisecond
	return t
}

// startDiskNode runs a single-voter node on real TCP and bbolt in dir.
func startDiskNode(t *testing.T, id, addr, dir string, boot []Peer, fsm *testFSM) *Node {
	t.Helper()
	n, err := New(Config{
		ID:        id,
		RaftAddr:  addr,
		DataDir:   dir,
		Bootstrap: boot,
		Timings:   diskTimings(),
		Logger:    testLogger(t),
	}, fsm)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { shutdownAtCleanup(t, id, n) })
	return n
}

func TestRestart_FromDiskKeepsStateAndIgnoresBootstrap(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	addr := freeAddr(t)
	self := []Peer{{ID: "d1", RaftAddr: addr}}

	fsm1 := &testFSM{}
	n1 := startDiskNode(t, "d1", addr, dir, self, fsm1)
	if _, err := n1.WaitForLeader(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	want := []string{"one", "two", "three"}
	for _, cmd := range want {
		if _, err := n1.Apply(ctxT(t, 2*time.Second), []byte(cmd)); err != nil {
			t.Fatalf("Apply(%s): %v", cmd, err)
		}
	}
	if err := n1.Shutdown(ctxT(t, 5*time.Second)); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("DataDir mode = %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	for _, p := range []string{"raft.db", "snapshots"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Fatalf("missing %s: %v", p, err)
		}
	}

	// Restart with a different bootstrap list: existing state wins.
	boot2 := append(slices.Clone(self), Peer{ID: "ghost", RaftAddr: "127.0.0.1:1"})
	fsm2 := &testFSM{}
	n2 := startDiskNode(t, "d1", addr, dir, boot2, fsm2)
	if _, err := n2.WaitForLeader(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := n2.Apply(ctxT(t, 2*time.Second), []byte("four")); err != nil {
		t.Fatalf("Apply after restart: %v", err)
	}
	poll(t, 5*time.Second, "log replayed into the new FSM", func() bool {
		return slices.Equal(fsm2.Commands(), append(want, "four"))
	})
	peers, err := n2.Peers()
	if err != nil || len(peers) != 1 || peers[0].ID != "d1" || !peers[0].Leader {
		t.Fatalf("Peers after restart = %+v, %v; want only d1 as leader", peers, err)
	}
}
