package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
	"github.com/quorumha/quorumha/tests/harness"
)

// masterAnswer is one controller's answer to GET /v1/clusters/{c}/master.
type masterAnswer struct {
	code   int
	master string
	err    error
}

func askMaster(ctx context.Context, c *harness.Controller) masterAnswer {
	var m struct {
		Master string `json:"master"`
		Source string `json:"source"`
	}
	code, err := harness.Do(ctx, http.MethodGet, c.URL("/v1/clusters/"+detCluster+"/master"), nil, &m)
	return masterAnswer{code: code, master: m.Master, err: err}
}

// TestMasterEndpoint_CutOffFollowerAnswers503 checks safety rule 6 with
// real controllers in three network zones: a follower cut off from the
// other two controllers, but still reaching the master (its own detector
// keeps calling the master healthy), stops naming it within a generous
// deadline, while the two that still form the group keep answering 200
// with the recorded master; healed, it names the master again. The same
// holds for the leader cut off from both followers.
func TestMasterEndpoint_CutOffFollowerAnswers503(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MariaDB servers and controller processes")
	}
	parallel(t)
	path := bin.Path(t)
	nw := harness.NewNet(t, 3)
	sb := sandbox.New(t, sandbox.Options{Replicas: 2, GTID: true, ExtraConfig: []string{"bind-address=0.0.0.0"}})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// The replicas name their master by the bridge address, as the
	// controllers do, so the replica check recognises it.
	for i := 1; i <= 2; i++ {
		db, err := sb.AdminDB(i)
		if err != nil {
			t.Fatal(err)
		}
		detExec(ctx, t, db, "STOP SLAVE", "CHANGE MASTER TO MASTER_HOST='"+nw.HostIP+"'", "START SLAVE")
		db.Close()
	}
	if err := sb.WaitReplicating(ctx); err != nil {
		t.Fatal(err)
	}
	e := &detEnv{sb: sb, master: fmt.Sprintf("%s:%d", nw.HostIP, sb.Instance(0).Port)}
	e.g = harness.StartGroup(t, path, harness.GroupOptions{N: 3, Net: nw,
		ClustersYAML: detClustersYAML(sb, nw.HostIP), ExtraYAML: detectYAML})
	li, err := e.g.WaitLeader(ctx, e.g.Nodes)
	if err != nil {
		t.Fatal(err)
	}
	e.waitHealthy(ctx, t)

	// Every controller names the recorded master once it is recorded.
	err = harness.Poll(ctx, 200*time.Millisecond, func() error {
		for _, c := range e.g.Nodes {
			if a := askMaster(ctx, c); a.code != http.StatusOK || a.master != e.master {
				return fmt.Errorf("%s: %d %q %v", c.ID, a.code, a.master, a.err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("not every controller names %s: %v", e.master, err)
	}

	cut := otherThan(e.g.Nodes, li.ID)[0]
	rest := otherThan(e.g.Nodes, cut.ID)
	t.Logf("cutting follower %s from %s and %s", cut.ID, rest[0].ID, rest[1].ID)
	nw.Isolate(cut.NetZone(), rest[0].NetZone().IP, rest[1].NetZone().IP)
	healed := false
	defer func() {
		if !healed {
			nw.Heal(cut.NetZone())
		}
	}()
	// Generous: api.leader_contact_window (5s) plus raft noticing the cut.
	cutCtx, cutCancel := context.WithTimeout(ctx, 60*time.Second)
	defer cutCancel()
	err = harness.Poll(cutCtx, 200*time.Millisecond, func() error {
		if a := askMaster(ctx, cut); a.code != http.StatusServiceUnavailable {
			return fmt.Errorf("cut-off %s still answers %d %q %v", cut.ID, a.code, a.master, a.err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The two that still form the group keep naming the master (a new
	// election may run meanwhile if the cut one led, so poll).
	err = harness.Poll(ctx, 200*time.Millisecond, func() error {
		for _, c := range rest {
			if a := askMaster(ctx, c); a.code != http.StatusOK || a.master != e.master {
				return fmt.Errorf("%s: %d %q %v", c.ID, a.code, a.master, a.err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the majority stopped naming the master: %v", err)
	}
	// The cut one is still 503, every time it is asked, while cut off.
	for range 5 {
		if a := askMaster(ctx, cut); a.code != http.StatusServiceUnavailable {
			t.Fatalf("cut-off %s answered %d %q %v", cut.ID, a.code, a.master, a.err)
		}
	}

	nw.Heal(cut.NetZone())
	healed = true
	err = harness.Poll(ctx, 200*time.Millisecond, func() error {
		if a := askMaster(ctx, cut); a.code != http.StatusOK || a.master != e.master {
			return fmt.Errorf("healed %s: %d %q %v", cut.ID, a.code, a.master, a.err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// The leader cut off from both followers loses its quorum: raft steps
	// it down, and it stops naming the master too.
	li, err = e.g.WaitLeader(ctx, e.g.Nodes)
	if err != nil {
		t.Fatal(err)
	}
	lone := e.g.Node(li.ID)
	others := otherThan(e.g.Nodes, lone.ID)
	t.Logf("cutting leader %s from %s and %s", lone.ID, others[0].ID, others[1].ID)
	nw.Isolate(lone.NetZone(), others[0].NetZone().IP, others[1].NetZone().IP)
	defer nw.Heal(lone.NetZone())
	leaderCtx, leaderCancel := context.WithTimeout(ctx, 60*time.Second)
	defer leaderCancel()
	err = harness.Poll(leaderCtx, 200*time.Millisecond, func() error {
		if a := askMaster(ctx, lone); a.code != http.StatusServiceUnavailable {
			return fmt.Errorf("cut-off former leader %s still answers %d %q %v", lone.ID, a.code, a.master, a.err)
		}
		for _, c := range others {
			if a := askMaster(ctx, c); a.code != http.StatusOK || a.master != e.master {
				return fmt.Errorf("%s: %d %q %v", c.ID, a.code, a.master, a.err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
