package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
	"github.com/quorumha/quorumha/tests/harness"
)

// Issue 19: the clusters and instances every controller watches live in
// the replicated state. A replica added at run time with `quorumha instance
// add` is probed by every controller and is a failover candidate; a replica
// of the master that is not in the state is discovered and reported, and
// with auto_add added as no_master.

// topoTimeout bounds the whole scenario (four MariaDB servers, a failover).
const topoTimeout = 5 * time.Minute

// topoCluster is the part of GET /v1/clusters/{name} this test reads.
type topoCluster struct {
	Master   string `json:"master"`
	Topology struct {
		Origin              string `json:"origin"`
		ConfiguredInstances []struct {
			Address  string `json:"address"`
			NoMaster bool   `json:"no_master"`
		} `json:"configured_instances"`
		Assessment *struct {
			ReplicaView []struct {
				Replica   string `json:"replica"`
				Reachable bool   `json:"reachable"`
			} `json:"replica_view"`
		} `json:"assessment"`
		Discovered []struct {
			Address string `json:"address"`
			Action  string `json:"action"`
		} `json:"discovered"`
	} `json:"topology"`
}

func getTopoCluster(ctx context.Context, c *harness.Controller) (topoCluster, error) {
	var resp struct {
		Cluster topoCluster `json:"cluster"`
	}
	_, err := harness.Do(ctx, http.MethodGet, c.URL("/v1/clusters/"+detCluster), nil, &resp)
	return resp.Cluster, err
}

// topoDefinition is one instance of GET /v1/topology.
type topoDefinition struct {
	Clusters []struct {
		Name      string `json:"name"`
		AutoAdd   bool   `json:"auto_add"`
		Instances []struct {
			Address  string `json:"address"`
			NoMaster bool   `json:"no_master"`
			AddedBy  string `json:"added_by"`
		} `json:"instances"`
	} `json:"clusters"`
}

// waitEveryController polls every running controller until check passes.
func waitEveryController(ctx context.Context, t *testing.T, g *harness.Group, what string, check func(topoCluster) error) {
	t.Helper()
	for _, c := range g.Running() {
		err := harness.Poll(ctx, 250*time.Millisecond, func() error {
			tc, err := getTopoCluster(ctx, c)
			if err != nil {
				return err
			}
			return check(tc)
		})
		if err != nil {
			t.Fatalf("%s on %s: %v", what, c.ID, err)
		}
	}
}

// startLoneReplica starts one MariaDB server with its own server_id and
// makes it a GTID replica of master. It starts read-only, as a replica must
// (a lone sandbox server is a writable master otherwise, and the failover
// rightly refuses to promote next to a writable server).
func startLoneReplica(ctx context.Context, t *testing.T, master sandbox.Instance, serverID int) *sandbox.Sandbox {
	t.Helper()
	sb := sandbox.New(t, sandbox.Options{Replicas: -1, GTID: true, SemiSync: true,
		ExtraConfig: []string{fmt.Sprintf("server_id=%d", serverID), "read_only=ON"}})
	if err := sb.ReplicateFrom(ctx, 0, master); err != nil {
		t.Fatal(err)
	}
	err := harness.Poll(ctx, 200*time.Millisecond, func() error {
		st, err := sb.ReplicaStatus(ctx, 0)
		if err != nil {
			return err
		}
		if st == nil || st.IORunning != "Yes" || st.SQLRunning != "Yes" {
			return fmt.Errorf("%s does not replicate yet: %+v", sb.Instance(0).Addr(), st)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

func TestTopology_RuntimeInstancesDiscoveryAndFailover(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), topoTimeout)
	defer cancel()
	e := startFailoverEnv(ctx, t, foOptions{})
	leader, _ := e.leaderAndFollower(ctx, t)
	api := "http://" + leader.HTTPAddr

	// The file seeded the replicated state: every controller watches the
	// cluster from the state.
	waitEveryController(ctx, t, e.g, "seeded topology", func(tc topoCluster) error {
		if tc.Topology.Origin != "state" || len(tc.Topology.ConfiguredInstances) != 3 {
			return fmt.Errorf("origin %q, %d instances", tc.Topology.Origin, len(tc.Topology.ConfiguredInstances))
		}
		return nil
	})

	// 1. A new replica of the master, not in the state: discovered and
	// reported by the leader, not added (no auto_add).
	sb4 := startLoneReplica(ctx, t, e.sb.Instance(0), 104)
	addr4 := sb4.Instance(0).Addr()
	err := harness.Poll(ctx, 500*time.Millisecond, func() error {
		li, err := e.g.WaitLeader(ctx, e.g.Running())
		if err != nil {
			return err
		}
		tc, err := getTopoCluster(ctx, e.g.Node(li.ID))
		if err != nil {
			return err
		}
		for _, d := range tc.Topology.Discovered {
			if d.Address == addr4 && d.Action == "reported" {
				return nil
			}
		}
		return fmt.Errorf("leader %s reports %+v, want %s reported", li.ID, tc.Topology.Discovered, addr4)
	})
	if err != nil {
		t.Fatal(err)
	}
	if out, code := cli(ctx, t, "status", "--addr", "http://"+e.g.Nodes[0].HTTPAddr); code != 0 || !strings.Contains(out, "DISCOVERED") || !strings.Contains(out, addr4) {
		t.Fatalf("status (exit %d) does not report the discovered %s:\n%s", code, addr4, out)
	}
	for _, c := range e.g.Running() {
		tc, err := getTopoCluster(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(tc.Topology.ConfiguredInstances, func(in struct {
			Address  string `json:"address"`
			NoMaster bool   `json:"no_master"`
		}) bool {
			return in.Address == addr4
		}) {
			t.Fatalf("%s: %s was added without auto_add", c.ID, addr4)
		}
	}

	// 2. `quorumha instance add`: every controller probes it.
	if out, code := cli(ctx, t, "instance", "add", "--cluster", detCluster, addr4, "--addr", api, "--by", "e2e"); code != 0 {
		t.Fatalf("instance add: exit %d: %s", code, out)
	}
	waitEveryController(ctx, t, e.g, "probe of the added replica", func(tc topoCluster) error {
		if tc.Topology.Assessment == nil {
			return fmt.Errorf("no assessment")
		}
		for _, o := range tc.Topology.Assessment.ReplicaView {
			if o.Replica == addr4 && o.Reachable {
				return nil
			}
		}
		return fmt.Errorf("replica view %+v lacks %s reachable", tc.Topology.Assessment.ReplicaView, addr4)
	})
	// Validation names the value and changes nothing.
	if out, code := cli(ctx, t, "instance", "add", "--cluster", detCluster, "nohost", "--addr", api); code == 0 || !strings.Contains(out, "nohost") {
		t.Fatalf("a bad address was accepted (exit %d): %s", code, out)
	}
	if out, code := cli(ctx, t, "instance", "remove", "--cluster", detCluster, e.addr(0), "--addr", api); code == 0 || !strings.Contains(out, "master") {
		t.Fatalf("removing the master was accepted (exit %d): %s", code, out)
	}

	// The controllers' files no longer list every instance: check-config
	// --for-run and status say so, and that the state wins.
	c1 := e.g.Nodes[0]
	out, code := cli(ctx, t, "check-config", "--for-run", "--config", c1.ConfigPath, "--addr", "http://"+c1.HTTPAddr)
	if code != 0 || !strings.Contains(out, "state wins") || !strings.Contains(out, addr4) {
		t.Fatalf("check-config --for-run (exit %d) does not report %s in the state only:\n%s", code, addr4, out)
	}
	out, code = cli(ctx, t, "status", "--addr", "http://"+c1.HTTPAddr)
	if code != 0 || !strings.Contains(out, "the state wins") || !strings.Contains(out, addr4) {
		t.Fatalf("status (exit %d) does not report %s in the state only:\n%s", code, addr4, out)
	}

	// 3. auto_add: a fifth server is discovered and added as no_master.
	if out, code := cli(ctx, t, "cluster", "set", detCluster, "--auto-add=true", "--addr", api); code != 0 {
		t.Fatalf("cluster set: exit %d: %s", code, out)
	}
	sb5 := startLoneReplica(ctx, t, e.sb.Instance(0), 105)
	addr5 := sb5.Instance(0).Addr()
	for _, c := range e.g.Running() {
		err := harness.Poll(ctx, 500*time.Millisecond, func() error {
			var td topoDefinition
			if _, err := harness.Do(ctx, http.MethodGet, c.URL("/v1/topology"), nil, &td); err != nil {
				return err
			}
			for _, cl := range td.Clusters {
				for _, in := range cl.Instances {
					if cl.Name == detCluster && in.Address == addr5 {
						if !in.NoMaster || !strings.HasPrefix(in.AddedBy, "discovery:") {
							t.Fatalf("%s: auto-added %s: no_master=%v added_by=%q", c.ID, addr5, in.NoMaster, in.AddedBy)
						}
						return nil
					}
				}
			}
			return fmt.Errorf("%s: %s not in the topology yet", c.ID, addr5)
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	// 4. The added replica is a failover candidate: with the sandbox's own
	// replicas marked no_master it is the only one, and a kill -9 of the
	// master promotes it.
	for _, i := range []int{1, 2} {
		if out, code := cli(ctx, t, "instance", "set", "--cluster", detCluster, e.addr(i), "--no-master", "--addr", api); code != 0 {
			t.Fatalf("instance set: exit %d: %s", code, out)
		}
	}
	waitEveryController(ctx, t, e.g, "no_master everywhere", func(tc topoCluster) error {
		n := 0
		for _, in := range tc.Topology.ConfiguredInstances {
			if in.NoMaster {
				n++
			}
		}
		if n != 3 { // instances 1, 2 and the auto-added one
			return fmt.Errorf("%d no_master instances, want 3", n)
		}
		return nil
	})
	rec := e.killMasterAndWaitFailover(ctx, t, 0)
	if rec.Result != "success" || rec.NewMaster != addr4 {
		t.Fatalf("want a successful failover to %s; got %s", addr4, rec.summary())
	}
	for _, c := range rec.Candidates {
		if c.Address == addr4 && !c.Chosen {
			t.Fatalf("%s considered but not chosen: %s", addr4, rec.summary())
		}
	}
	waitEveryController(ctx, t, e.g, "new master", func(tc topoCluster) error {
		if tc.Master != addr4 {
			return fmt.Errorf("master %q, want %s", tc.Master, addr4)
		}
		return nil
	})
}

// A controller restarted with a config file that differs from the others'
// (an extra instance, an extra cluster) keeps watching the replicated
// topology: the state wins, the file changes nothing, and the controller
// says how its file differs.
func TestTopology_DifferingFileStateWins(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), topoTimeout)
	defer cancel()
	e := startFailoverEnv(ctx, t, foOptions{NoAgents: true})
	_, follower := e.leaderAndFollower(ctx, t)
	waitEveryController(ctx, t, e.g, "seeded topology", func(tc topoCluster) error {
		if tc.Topology.Origin != "state" {
			return fmt.Errorf("origin %q", tc.Topology.Origin)
		}
		return nil
	})

	e.g.Stop(follower)
	b, err := os.ReadFile(follower.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	const bogus = "127.0.0.1:1"
	cfg := strings.Replace(string(b), "    instances:\n", "    instances:\n      - address: "+bogus+"\n        candidate_master: true\n", 1)
	cfg = strings.Replace(cfg, "clusters:\n", fmt.Sprintf("clusters:\n  - name: other\n    user: %s\n    password: %s\n    instances:\n      - address: 127.0.0.1:2\n      - address: 127.0.0.1:3\n",
		sandbox.AdminUser, sandbox.AdminPassword), 1)
	if cfg == string(b) {
		t.Fatal("config not changed")
	}
	if err := os.WriteFile(follower.ConfigPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.g.Start(follower); err != nil {
		t.Fatal(err)
	}

	var td struct {
		LocalDiff []string `json:"local_diff"`
	}
	err = harness.Poll(ctx, 250*time.Millisecond, func() error {
		if !follower.Running() {
			t.Fatalf("%s exited (%d) with the changed config", follower.ID, follower.ExitCode())
		}
		if _, err := harness.Do(ctx, http.MethodGet, follower.URL("/v1/topology"), nil, &td); err != nil {
			return err
		}
		d := strings.Join(td.LocalDiff, "\n")
		if !strings.Contains(d, bogus+": in the file, not in the state") || !strings.Contains(d, `cluster "other": in the file, not in the replicated state: not watched`) {
			return fmt.Errorf("local_diff %q", td.LocalDiff)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The restarted controller watches the state's three instances, and
	// not the file's extra cluster.
	err = harness.Poll(ctx, 250*time.Millisecond, func() error {
		tc, err := getTopoCluster(ctx, follower)
		if err != nil {
			return err
		}
		if tc.Topology.Origin != "state" || len(tc.Topology.ConfiguredInstances) != 3 {
			return fmt.Errorf("origin %q, instances %+v", tc.Topology.Origin, tc.Topology.ConfiguredInstances)
		}
		for _, in := range tc.Topology.ConfiguredInstances {
			if in.Address == bogus {
				return fmt.Errorf("the file's extra instance is watched")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := harness.Do(ctx, http.MethodGet, follower.URL("/v1/clusters/other"), nil, nil); err == nil || code != http.StatusNotFound {
		t.Fatalf("GET /v1/clusters/other on %s: %d %v, want 404", follower.ID, code, err)
	}
}
