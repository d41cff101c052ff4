package consensus

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestRecover_SurvivorOfLostQuorumLeadsNewGroup: a three-voter group on disk
// loses two voters for good; the survivor alone cannot elect itself. With a
// peers.json naming only itself it restarts as a one-voter group with all
// committed state, and a replacement joins it.
func TestRecover_SurvivorOfLostQuorumLeadsNewGroup(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	ids := []string{"r1", "r2", "r3"}
	addrs := map[string]string{}
	var boot []Peer
	for _, id := range ids {
		addrs[id] = freeAddr(t)
		boot = append(boot, Peer{ID: id, RaftAddr: addrs[id]})
	}
	nodes := map[string]*Node{}
	for _, id := range ids {
		nodes[id] = startDiskNode(t, id, addrs[id], filepath.Join(root, id), boot, &testFSM{})
	}
	leaderID, err := nodes["r1"].WaitForLeader(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a", "b", "c"}
	for _, cmd := range want {
		if _, err := nodes[leaderID].Apply(ctxT(t, 5*time.Second), []byte(cmd)); err != nil {
			t.Fatalf("Apply(%s): %v", cmd, err)
		}
	}
	// r1 must hold everything before the others are lost.
	poll(t, 10*time.Second, "r1 applied every command", func() bool {
		return nodes["r1"].Status().AppliedIndex >= nodes[leaderID].Status().CommitIndex
	})
	for _, id := range ids {
		if err := nodes[id].Shutdown(ctxT(t, 5*time.Second)); err != nil {
			t.Fatalf("Shutdown %s: %v", id, err)
		}
	}

	// Without recovery, r1 alone would wait for r2/r3 for ever. The operator
	// writes peers.json naming r1 only (at a new address, as after moving it).
	dir := filepath.Join(root, "r1")
	newAddr := freeAddr(t)
	peers := fmt.Sprintf(`[{"id": "r1", "address": %q, "non_voter": false}]`, newAddr)
	if err := os.WriteFile(filepath.Join(dir, PeersFile), []byte(peers), 0o600); err != nil {
		t.Fatal(err)
	}
	fsm := &testFSM{}
	n := startDiskNode(t, "r1", newAddr, dir, nil, fsm)
	if _, err := n.WaitForLeader(ctxT(t, 10*time.Second)); err != nil {
		t.Fatalf("recovered node found no leader: %v", err)
	}
	poll(t, 10*time.Second, "r1 leads the recovered group", func() bool { return n.IsLeader() })
	if _, err := n.Apply(ctxT(t, 5*time.Second), []byte("d")); err != nil {
		t.Fatalf("Apply after recovery: %v", err)
	}
	poll(t, 5*time.Second, "state kept through recovery", func() bool {
		return slices.Equal(fsm.Commands(), append(slices.Clone(want), "d"))
	})
	got, err := n.Peers()
	if err != nil || len(got) != 1 || got[0].ID != "r1" || got[0].RaftAddr != newAddr {
		t.Fatalf("Peers after recovery = %+v, %v; want only r1 at %s", got, err, newAddr)
	}
	if _, err := os.Stat(filepath.Join(dir, PeersFile)); !os.IsNotExist(err) {
		t.Errorf("%s still present after recovery (stat err %v)", PeersFile, err)
	}
	if _, err := os.Stat(filepath.Join(dir, PeersFile+".applied")); err != nil {
		t.Errorf("%s.applied missing: %v", PeersFile, err)
	}

	// A replacement joins the recovered group.
	r4Addr := freeAddr(t)
	r4FSM := &testFSM{}
	startDiskNode(t, "r4", r4Addr, filepath.Join(root, "r4"), nil, r4FSM)
	if err := n.Join(ctxT(t, 10*time.Second), "r4", r4Addr); err != nil {
		t.Fatalf("Join r4: %v", err)
	}
	poll(t, 10*time.Second, "r4 replicated the recovered state", func() bool {
		return slices.Equal(r4FSM.Commands(), append(slices.Clone(want), "d"))
	})
}

func TestRecover_FileNotNamingThisNodeIsRefused(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	addr := freeAddr(t)
	n := startDiskNode(t, "d1", addr, dir, []Peer{{ID: "d1", RaftAddr: addr}}, &testFSM{})
	if _, err := n.WaitForLeader(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := n.Shutdown(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, PeersFile), []byte(`[{"id": "other", "address": "127.0.0.1:1"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(Config{ID: "d1", RaftAddr: addr, DataDir: dir, Timings: diskTimings(), Logger: testLogger(t)}, &testFSM{})
	if err == nil {
		t.Fatal("New accepted a recovery file that does not name this node")
	}
	if _, serr := os.Stat(filepath.Join(dir, PeersFile)); serr != nil {
		t.Errorf("refused recovery file was moved: %v", serr)
	}
}
