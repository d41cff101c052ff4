package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
	"github.com/quorumha/quorumha/tests/harness"
)

// TestDetect_ReplicasNameMasterByAlias_AllCut_NoDecision: the replicas name
// their master 127.0.0.1:port while the controllers know it as the bridge
// address (two names of one live server). Every controller is cut from the
// master; the replicas are still connected to it. A replica whose master
// address differs from the watched one proves nothing either way, so it must
// not count as agreeing that the master is dead: no record.
func TestDetect_ReplicasNameMasterByAlias_AllCut_NoDecision(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MariaDB servers and controller processes")
	}
	parallel(t)
	path := bin.Path(t)
	nw := harness.NewNet(t, 3)
	sb := sandbox.New(t, sandbox.Options{Replicas: 2, GTID: true, ExtraConfig: []string{"bind-address=0.0.0.0"}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := &detEnv{sb: sb, master: fmt.Sprintf("%s:%d", nw.HostIP, sb.Instance(0).Port)}
	e.g = harness.StartGroup(t, path, harness.GroupOptions{N: 3, Net: nw,
		ClustersYAML: detClustersYAML(sb, nw.HostIP), ExtraYAML: detectYAML})
	if _, err := e.g.WaitLeader(ctx, e.g.Nodes); err != nil {
		t.Fatal(err)
	}
	e.waitHealthy(ctx, t)
	load := startLoad(ctx, t, sb)
	before := e.lastRecordID(ctx, t)
	for _, c := range e.g.Nodes {
		nw.CutTCP(c.NetZone(), nw.HostIP, sb.Instance(0).Port)
		defer nw.Heal(c.NetZone())
	}
	for _, c := range e.g.Nodes {
		waitVote(ctx, t, c, c.ID, "down")
	}
	// Bounded observation: a decision takes well under a second once the
	// votes are down.
	var wrong string
	seen := e.observeNoRecord(ctx, t, e.g.Nodes, before, 5*time.Second, func(c *harness.Controller, a detAssessment) error {
		if a.State == "dead_confirmed" && wrong == "" {
			wrong = a.Reason
			t.Logf("%s confirms a live master dead: %s", c.ID, a.Reason)
		}
		return nil
	})
	t.Logf("states seen %v", seen)
	if wrong != "" {
		t.Fatalf("a live master, still feeding its replicas, was confirmed dead: %s", wrong)
	}
	if st := load.Stop(); st.Failed > 0 {
		t.Fatalf("the master was never down, yet writes failed: %+v", st)
	}
}
