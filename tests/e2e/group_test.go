package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/tests/harness"
)

// clustersYAML configures one cluster whose instances need not exist: these
// tests exercise the controller group, not MariaDB.
const clustersYAML = `  - name: app1
    user: monitor
    password: secret-pw
    instances:
      - address: 127.0.0.1:1
      - address: 127.0.0.1:2
`

func TestGroup_LeaderKillRestartJoinRemove(t *testing.T) {
	if testing.Short() {
		t.Skip("starts controller processes")
	}
	parallel(t)
	path := bin.Path(t)
	g := harness.StartGroup(t, path, harness.GroupOptions{N: 3, ClustersYAML: clustersYAML})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	leader, err := g.WaitLeader(ctx, g.Nodes)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first leader %s (term %d)", leader.ID, leader.Term)

	// The CLI against every node prints the same leader.
	for _, c := range g.Nodes {
		out, err := exec.CommandContext(ctx, path, "leader", "--addr", "http://"+c.HTTPAddr).CombinedOutput()
		if err != nil {
			t.Fatalf("quorumha leader --addr %s: %v\n%s", c.HTTPAddr, err, out)
		}
		if !strings.Contains(string(out), leader.ID) || !strings.Contains(string(out), leader.HTTPAddr) {
			t.Fatalf("quorumha leader on %s printed %q, want leader %s at %s", c.ID, out, leader.ID, leader.HTTPAddr)
		}
	}

	// A write through a follower is forwarded to the leader and replicated.
	follower := otherThan(g.Nodes, leader.ID)[0]
	ack := map[string]string{"by": "e2e", "comment": "first ack"}
	if _, err := harness.Do(ctx, http.MethodPost, follower.URL("/v1/clusters/app1/ack"), ack, nil); err != nil {
		t.Fatalf("ack through follower %s: %v", follower.ID, err)
	}
	waitAcked(ctx, t, g.Nodes, "e2e")

	// kill -9 the leader: the survivors agree on a new one and accept writes.
	old := g.Node(leader.ID)
	g.Kill(old)
	survivors := otherThan(g.Nodes, old.ID)
	leader2, err := g.WaitLeader(ctx, survivors)
	if err != nil {
		t.Fatal(err)
	}
	if leader2.ID == old.ID || leader2.Term <= leader.Term {
		t.Fatalf("new leader %s term %d after killing %s term %d", leader2.ID, leader2.Term, old.ID, leader.Term)
	}
	if _, err := harness.Do(ctx, http.MethodPost, survivors[0].URL("/v1/clusters/app1/ack"), map[string]string{"by": "after-kill"}, nil); err != nil {
		t.Fatalf("write after leader kill: %v", err)
	}
	waitAcked(ctx, t, survivors, "after-kill")

	// Restart the killed node: it rejoins as a follower with its state from
	// disk and catches up with the write it missed.
	if err := g.Start(old); err != nil {
		t.Fatal(err)
	}
	if _, err := g.WaitLeader(ctx, g.Nodes); err != nil {
		t.Fatal(err)
	}
	waitAcked(ctx, t, g.Nodes, "after-kill")
	var st struct {
		State string `json:"raft_state"`
	}
	if _, err := harness.Do(ctx, http.MethodGet, old.URL("/v1/status"), nil, &st); err != nil {
		t.Fatal(err)
	}
	if st.State != "Follower" {
		t.Fatalf("restarted %s is %s, want Follower", old.ID, st.State)
	}

	// Add a fourth controller with join (sent to a follower: forwarded), see
	// it in the peers everywhere, then remove it.
	c4 := g.AddNode()
	join := map[string]string{"id": c4.ID, "raft_addr": c4.RaftAddr}
	cur, err := g.WaitLeader(ctx, g.Running()[:3])
	if err != nil {
		t.Fatal(err)
	}
	via := otherThan(g.Nodes[:3], cur.ID)[0]
	if _, err := harness.Do(ctx, http.MethodPost, via.URL("/v1/raft/join"), join, nil); err != nil {
		t.Fatalf("join %s via %s: %v", c4.ID, via.ID, err)
	}
	waitPeers(ctx, t, g.Nodes, 4)
	if _, err := g.WaitLeader(ctx, g.Nodes); err != nil {
		t.Fatalf("4 nodes: %v", err)
	}
	waitAcked(ctx, t, []*harness.Controller{c4}, "after-kill")
	if _, err := harness.Do(ctx, http.MethodDelete, via.URL("/v1/raft/peers/"+c4.ID), nil, nil); err != nil {
		t.Fatalf("remove %s: %v", c4.ID, err)
	}
	g.Stop(c4)
	waitPeers(ctx, t, g.Nodes[:3], 3)
}

func otherThan(nodes []*harness.Controller, id string) []*harness.Controller {
	var out []*harness.Controller
	for _, c := range nodes {
		if c.ID != id && c.Running() {
			out = append(out, c)
		}
	}
	return out
}

// waitAcked polls until every node's replicated cluster state shows the ack.
func waitAcked(ctx context.Context, t *testing.T, nodes []*harness.Controller, by string) {
	t.Helper()
	for _, c := range nodes {
		err := harness.Poll(ctx, 100*time.Millisecond, func() error {
			var cl map[string]any
			if _, err := harness.Do(ctx, http.MethodGet, c.URL("/v1/clusters/app1"), nil, &cl); err != nil {
				return err
			}
			if got := findString(cl, "acked_by"); got != by {
				return fmt.Errorf("%s: acked_by=%q want %q", c.ID, got, by)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// findString looks for key anywhere in a decoded JSON object.
func findString(v any, key string) string {
	switch x := v.(type) {
	case map[string]any:
		if s, ok := x[key].(string); ok {
			return s
		}
		for _, e := range x {
			if s := findString(e, key); s != "" {
				return s
			}
		}
	case []any:
		for _, e := range x {
			if s := findString(e, key); s != "" {
				return s
			}
		}
	}
	return ""
}

func waitPeers(ctx context.Context, t *testing.T, nodes []*harness.Controller, want int) {
	t.Helper()
	for _, c := range nodes {
		if !c.Running() {
			continue
		}
		err := harness.Poll(ctx, 100*time.Millisecond, func() error {
			var resp struct {
				Peers []map[string]any `json:"peers"`
			}
			if _, err := harness.Do(ctx, http.MethodGet, c.URL("/v1/raft/peers"), nil, &resp); err != nil {
				return err
			}
			if len(resp.Peers) != want {
				return fmt.Errorf("%s sees %d peers, want %d", c.ID, len(resp.Peers), want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
