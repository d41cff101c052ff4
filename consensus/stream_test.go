package consensus

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestShutdown_FrozenPeersDoNotHoldIt starts a voter whose two peers'
// hosts accept connections and never answer (a frozen or cut-off host),
// with an hour's transport timeout: its vote requests block reading their
// replies, and raft's Shutdown waits for them. Shutdown must still return.
func TestShutdown_FrozenPeersDoNotHoldIt(t *testing.T) {
	t.Parallel()
	var boot []Peer
	for _, id := range []string{"f2", "f3"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		boot = append(boot, Peer{ID: id, RaftAddr: ln.Addr().String()})
	}
	self := Peer{ID: "f1", RaftAddr: freeAddr(t)}
	boot = append(boot, self)
	n, err := New(Config{ID: self.ID, RaftAddr: self.RaftAddr, Bootstrap: boot, Timings: diskTimings(),
		InMemory: true, Logger: testLogger(t), transportTimeout: time.Hour}, &testFSM{})
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the node has asked its peers for votes: an election
	// started, so vote RPCs are in flight on the frozen connections.
	poll(t, 30*time.Second, "an election", func() bool { return n.raft.State() == raft.Candidate })

	done := make(chan error, 1)
	go func() { done <- n.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Shutdown still blocked a minute later: raft waits for RPCs to frozen peers")
	}
}
