package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
	"github.com/quorumha/quorumha/tests/harness"
)

// TestDetect_LeaderAloneInGossip_NoDecision: the leader loses gossip with the
// other controllers while Raft between them keeps working (only the gossip
// ports are blocked), and is then cut from the master, which stays alive.
// One vantage point must never be enough: no record. With the replica check
// off, nothing but the quorum rule stands between that one vote and a
// decision.
func TestDetect_LeaderAloneInGossip_NoDecision(t *testing.T) {
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
		ClustersYAML: detClustersYAML(sb, nw.HostIP),
		ExtraYAML:    "detector:\n  probe_interval: 500ms\n  replica_check: false\n"})
	li, err := e.g.WaitLeader(ctx, e.g.Nodes)
	if err != nil {
		t.Fatal(err)
	}
	e.waitHealthy(ctx, t)
	load := startLoad(ctx, t, sb)
	before := e.lastRecordID(ctx, t)
	leader := e.g.Node(li.ID)
	others := otherThan(e.g.Nodes, leader.ID)

	// Keep Raft (TCP to and from the raft ports), drop everything else
	// between the leader's zone and the other controllers: gossip dies.
	z := leader.NetZone()
	ipt := func(args ...string) {
		t.Helper()
		argv := append(append(z.Exec(), "iptables"), args...)
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
		}
	}
	port := func(addr string) string {
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, o := range others {
		ip := o.NetZone().IP
		ipt("-A", "OUTPUT", "-d", ip, "-p", "tcp", "--dport", port(o.RaftAddr), "-j", "ACCEPT")
		ipt("-A", "INPUT", "-s", ip, "-p", "tcp", "--sport", port(o.RaftAddr), "-j", "ACCEPT")
		ipt("-A", "OUTPUT", "-d", ip, "-p", "tcp", "--sport", port(leader.RaftAddr), "-j", "ACCEPT")
		ipt("-A", "INPUT", "-s", ip, "-p", "tcp", "--dport", port(leader.RaftAddr), "-j", "ACCEPT")
		ipt("-A", "OUTPUT", "-d", ip, "-j", "DROP")
		ipt("-A", "INPUT", "-s", ip, "-j", "DROP")
	}
	defer nw.Heal(z)
	err = harness.Poll(ctx, 250*time.Millisecond, func() error {
		var st struct {
			GossipMembers []struct {
				Name string `json:"name"`
			} `json:"gossip_members"`
		}
		if _, err := harness.Do(ctx, http.MethodGet, leader.URL("/v1/status"), nil, &st); err != nil {
			return err
		}
		if len(st.GossipMembers) != 1 {
			return fmt.Errorf("leader %s still has gossip members %+v", leader.ID, st.GossipMembers)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if li2, err := e.g.WaitLeader(ctx, e.g.Nodes); err != nil || li2.ID != leader.ID {
		t.Fatalf("raft should be unaffected: leader %+v, err %v (was %s)", li2, err, leader.ID)
	}

	nw.CutTCP(z, nw.HostIP, sb.Instance(0).Port)
	waitVote(ctx, t, leader, leader.ID, "down")
	// Bounded observation: longer than a decision takes once a vote is down.
	var lonely string
	seen := e.observeNoRecord(ctx, t, e.g.Nodes, before, 8*time.Second, func(c *harness.Controller, a detAssessment) error {
		if c == leader && a.State == "dead_confirmed" && lonely == "" {
			lonely = a.Reason
			t.Logf("leader %s alone in gossip confirms a live master dead: %s", c.ID, a.Reason)
		}
		return nil
	})
	t.Logf("states seen %v", seen)
	if lonely != "" {
		t.Fatalf("one vantage point was enough to confirm a live master dead: %s", lonely)
	}
	if st := load.Stop(); st.Failed > 0 {
		t.Fatalf("the master was never down, yet writes failed: %+v", st)
	}
}
