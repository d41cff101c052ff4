package consensus

import (
	"testing"
	"time"
)

// suffrageOf returns id's suffrage in node's configuration ("" if absent).
func suffrageOf(t *testing.T, tn *testNode, id string) string {
	t.Helper()
	peers, err := tn.node.Peers()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		if p.ID == id {
			return p.Suffrage
		}
	}
	return ""
}

// Security review item 6: a join with an address nobody answers at left a
// single-node group without quorum. A joined server is a nonvoter until it
// answers the leader's heartbeats.
func TestJoin_UnreachableStaysNonvoter(t *testing.T) {
	t.Parallel()
	c := makeCluster(t, 1, nil)
	l := c.Leader()
	if err := l.node.Join(ctxT(t, 2*time.Second), "zz", "nowhere"); err != nil {
		t.Fatalf("Join: %v", err)
	}
	if s := suffrageOf(t, l, "zz"); s != "nonvoter" {
		t.Fatalf("zz is %q, want nonvoter", s)
	}
	// The group still commits on its own, now and after the promotion
	// window has passed.
	for range 3 {
		if _, err := l.node.Apply(ctxT(t, 2*time.Second), []byte("x")); err != nil {
			t.Fatalf("apply after join: %v", err)
		}
		time.Sleep(time.Second) // lets the promotion window pass; not an assertion on timing
	}
	if s := suffrageOf(t, l, "zz"); s != "nonvoter" {
		t.Fatalf("unreachable zz became %q", s)
	}
}

func TestJoin_ReachablePromotedToVoter(t *testing.T) {
	t.Parallel()
	c := makeCluster(t, 3, nil)
	l := c.Leader()
	n4 := c.newTestNode("n4")
	c.connectAll()
	c.start(n4, nil, nil)
	if err := l.node.Join(ctxT(t, 2*time.Second), n4.id, string(n4.addr)); err != nil {
		t.Fatal(err)
	}
	poll(t, 30*time.Second, "n4 promoted to voter", func() bool { return suffrageOf(t, l, "n4") == "voter" })
}

// TestJoin_PromotionSurvivesLeaderChange joins n4 through a leader that
// cannot reach it (its heartbeats fail, so it never promotes n4), then
// stops that leader. The new leader reaches n4 and must finish the
// promotion: before, the promotion died with the old leader's term and n4
// stayed a nonvoter, in no quorum, until an operator joined it again.
func TestJoin_PromotionSurvivesLeaderChange(t *testing.T) {
	t.Parallel()
	c := makeCluster(t, 3, nil)
	l := c.Leader()
	n4 := c.newTestNode("n4")
	c.connectAll()
	l.trans.Disconnect(n4.addr)
	n4.trans.Disconnect(l.addr)
	c.start(n4, nil, nil)
	if err := l.node.Join(ctxT(t, 2*time.Second), n4.id, string(n4.addr)); err != nil {
		t.Fatal(err)
	}
	if s := suffrageOf(t, l, "n4"); s != "nonvoter" {
		t.Fatalf("n4 is %q right after the join, want nonvoter", s)
	}
	if err := l.node.Shutdown(ctxT(t, 5*time.Second)); err != nil {
		t.Fatalf("Shutdown(%s): %v", l.id, err)
	}
	nl := c.WaitForNewLeader(l)
	poll(t, 30*time.Second, "n4 promoted by the new leader", func() bool { return suffrageOf(t, nl, "n4") == "voter" })
}
