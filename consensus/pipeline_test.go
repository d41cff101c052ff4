package consensus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// scriptedFollower answers raft's RPCs on a real TCP transport the way a
// follower does, except that it turns down every rejectEvery-th append
// that carries entries (Success=false, as a follower whose log store
// failed answers). Only its run goroutine touches its state.
type scriptedFollower struct {
	trans       *raft.NetworkTransport
	id          string
	rejectEvery int

	last     uint64 // index of the last entry taken
	appends  int    // appends with entries that could be taken
	rejected int
}

func newScriptedFollower(t *testing.T, id string, rejectEvery int) *scriptedFollower {
	t.Helper()
	trans, err := raft.NewTCPTransport(freeAddr(t), nil, 3, 10*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = trans.Close() })
	return &scriptedFollower{trans: trans, id: id, rejectEvery: rejectEvery}
}

func (f *scriptedFollower) header() raft.RPCHeader {
	return raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(f.id), Addr: []byte(f.trans.LocalAddr())}
}

// run answers RPCs until ctx ends, then reports how many appends it
// turned down.
func (f *scriptedFollower) run(ctx context.Context, rejected chan<- int) {
	for {
		select {
		case <-ctx.Done():
			rejected <- f.rejected
			return
		case rpc := <-f.trans.Consumer():
			f.answer(rpc)
		}
	}
}

func (f *scriptedFollower) answer(rpc raft.RPC) {
	switch req := rpc.Command.(type) {
	case *raft.RequestPreVoteRequest:
		rpc.Respond(&raft.RequestPreVoteResponse{RPCHeader: f.header(), Term: req.Term, Granted: true}, nil)
	case *raft.RequestVoteRequest:
		rpc.Respond(&raft.RequestVoteResponse{RPCHeader: f.header(), Term: req.Term, Granted: true}, nil)
	case *raft.AppendEntriesRequest:
		resp := &raft.AppendEntriesResponse{RPCHeader: f.header(), Term: req.Term, NoRetryBackoff: true}
		switch {
		case len(req.Entries) == 0: // a heartbeat
			resp.Success = true
		case req.PrevLogEntry > f.last: // a gap: the leader backs off
		default:
			f.appends++
			if f.appends%f.rejectEvery == 0 {
				f.rejected++
				break
			}
			f.last = req.Entries[len(req.Entries)-1].Index
			resp.Success = true
		}
		resp.LastLog = f.last
		rpc.Respond(resp, nil)
	case *raft.TimeoutNowRequest:
		rpc.Respond(&raft.TimeoutNowResponse{RPCHeader: f.header()}, nil)
	default:
		rpc.Respond(nil, fmt.Errorf("scripted follower: unexpected %T", req))
	}
}

// TestReplication_RejectedAppendsDoNotStallTheLeader: a follower that
// turns appends down now and then must not stop the leader replicating to
// it, nor stop the leader shutting down. With raft's pipelined
// replication, a rejection that arrives while the leader sends the next
// append deadlocks the pipeline (hashicorp/raft#612): the follower gets
// heartbeats and never another entry, and raft's Shutdown never returns.
// In a group of two the stall shows as Apply never committing.
func TestReplication_RejectedAppendsDoNotStallTheLeader(t *testing.T) {
	t.Parallel()
	f := newScriptedFollower(t, "f2", 2)
	ctx, stop := context.WithCancel(context.Background())
	rejected := make(chan int, 1)
	go f.run(ctx, rejected)
	defer stop()

	self := Peer{ID: "p1", RaftAddr: freeAddr(t)}
	boot := []Peer{self, {ID: f.id, RaftAddr: string(f.trans.LocalAddr())}}
	n, err := New(Config{ID: self.ID, RaftAddr: self.RaftAddr, Bootstrap: boot, Timings: diskTimings(),
		InMemory: true, Logger: testLogger(t)}, &testFSM{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdownAtCleanup(t, self.ID, n) })
	poll(t, 30*time.Second, "p1 leading", n.IsLeader)

	const commands = 300
	for i := range commands {
		if _, err := n.Apply(ctxT(t, 15*time.Second), fmt.Appendf(nil, "c%d", i)); err != nil {
			if errors.Is(err, ErrNotLeader) {
				t.Fatalf("p1 lost leadership at command %d (the scripted follower votes for it): %v", i, err)
			}
			t.Fatalf("command %d of %d did not commit: replication to the follower stalled: %v", i, commands, err)
		}
	}
	if err := shutdownWithin(t, n, 15*time.Second); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	stop()
	if r := <-rejected; r < commands/4 {
		t.Fatalf("the follower turned down only %d appends; the test needs many to be meaningful", r)
	}
}
