package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/quorumha/quorumha/consensus"
	"github.com/quorumha/quorumha/fsm"
)

// TestIntegration_WriteThroughFollower runs three real consensus nodes with
// real FSMs on an in-memory transport, each behind its own API server, and
// acknowledges a cluster through a follower's API.
func TestIntegration_WriteThroughFollower(t *testing.T) {
	ids := []string{"c1", "c2", "c3"}
	trans := map[string]*raft.InmemTransport{}
	var boot []consensus.Peer
	for _, id := range ids {
		addr, tr := raft.NewInmemTransport(raft.ServerAddress(id))
		trans[id] = tr
		boot = append(boot, consensus.Peer{ID: id, RaftAddr: string(addr)})
	}
	for _, a := range ids {
		for _, b := range ids {
			trans[a].Connect(raft.ServerAddress(b), trans[b])
		}
	}
	nodes := map[string]*consensus.Node{}
	states := map[string]*fsm.FSM{}
	urls := map[string]string{}
	for _, id := range ids {
		st := fsm.New(slog.New(slog.DiscardHandler))
		n, err := consensus.New(consensus.Config{ID: id, RaftAddr: id, Bootstrap: boot, Transport: trans[id], InMemory: true}, st)
		if err != nil {
			t.Fatalf("consensus.New %s: %v", id, err)
		}
		t.Cleanup(func() { _ = n.Shutdown(context.Background()) })
		srv, err := New(Config{NodeID: id, Token: "tok"}, Deps{Raft: n, State: st})
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(srv.Handler())
		t.Cleanup(ts.Close)
		nodes[id], states[id], urls[id] = n, st, ts.URL
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var leader string
	for leader == "" {
		for _, id := range ids {
			if nodes[id].IsLeader() {
				leader = id
			}
		}
		if err := sleepJitter(ctx, 2); err != nil {
			t.Fatal("no leader elected")
		}
	}
	apply := func(mt fsm.MessageType, p any) {
		t.Helper()
		buf, err := fsm.Encode(mt, p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nodes[leader].Apply(ctx, buf); err != nil {
			t.Fatalf("apply %s: %v", mt, err)
		}
	}
	for _, id := range ids {
		apply(fsm.NodeMetaType, fsm.NodeMeta{ID: id, HTTPAddr: urls[id]})
	}
	apply(fsm.SetMasterType, fsm.SetMaster{Cluster: "app1", Master: "db1:3306", At: time.Now().UTC()})
	follower := ids[0]
	if follower == leader {
		follower = ids[1]
	}
	for states[follower].AppliedIndex() < states[leader].AppliedIndex() {
		if err := sleepJitter(ctx, 2); err != nil {
			t.Fatal("follower did not catch up")
		}
	}

	req, _ := http.NewRequest("POST", urls[follower]+"/v1/clusters/app1/ack", strings.NewReader(`{"by":"it"}`))
	req.Header.Set("Authorization", "Bearer tok")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get(ForwardedToHeader) != leader {
		t.Fatalf("status %d, forwarded to %q, want 200 via %s", resp.StatusCode, resp.Header.Get(ForwardedToHeader), leader)
	}
	for _, id := range ids {
		for {
			if c, ok := states[id].Cluster("app1"); ok && c.AckedBy == "it" {
				break
			}
			if err := sleepJitter(ctx, 2); err != nil {
				t.Fatalf("%s never applied the ack", id)
			}
		}
	}
	resp, err = http.Get(urls[follower] + "/v1/leader")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("leader via follower: %d", resp.StatusCode)
	}
	t.Logf("leader %s, wrote through follower %s", leader, follower)
}
