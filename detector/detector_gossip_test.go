package detector

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// controllerNode is one controller of an in-process group: real gossip on
// loopback, a scripted prober, real clock.
type controllerNode struct {
	prober *fakeProber
	det    *Detector
	gossip *Gossip
}

func startGroup(t *testing.T) []controllerNode {
	t.Helper()
	return startGroupWith(t, nil)
}

// startGroupWith starts the group, letting edit change each node's config.
func startGroupWith(t *testing.T, edit func(i int, cfg *Config)) []controllerNode {
	t.Helper()
	gs := threeGossips(t, "", [3][]byte{})
	var nodes []controllerNode
	for i, g := range gs {
		p := newFakeProber(RealClock{})
		p.setMaster(testMaster, ReasonOK)
		p.setReplica(ReplicaObservation{Replica: testReplica, Reachable: true, MasterHost: "10.0.0.1", MasterPort: 3306, IORunning: "Yes"})
		cfg := Config{Controller: g.cfg.NodeName, Zone: g.cfg.Zone, ProbeInterval: 50 * time.Millisecond,
			ProbeTimeout: 50 * time.Millisecond, FailureThreshold: 2,
			Rules:    Rules{ReplicaCheck: true, MultiZone: true, Freshness: time.Second},
			Clusters: []ClusterSpec{{Name: "app1", Master: testMaster, Replicas: []string{testReplica}}},
			Logger:   testLogger(t)}
		if edit != nil {
			edit(i, &cfg)
		}
		d, err := New(cfg, p, g)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run %d: %v", i, err)
			}
		})
		nodes = append(nodes, controllerNode{prober: p, det: d, gossip: g})
	}
	return nodes
}

func waitAll(t *testing.T, nodes []controllerNode, want AssessState) {
	t.Helper()
	waitFor(t, 10*time.Second, "all controllers "+want.String(), func() (bool, string) {
		for i, n := range nodes {
			a, ok := n.det.Assessment("app1")
			if !ok || a.State != want {
				return false, fmt.Sprintf("c%d: %s %s", i+1, a.State, a.Reason)
			}
		}
		return true, ""
	})
}

func TestDetectorGroup_MinorityCutOffIsIsolated(t *testing.T) {
	nodes := startGroup(t)
	waitAll(t, nodes, AssessHealthy)
	nodes[0].prober.setMaster(testMaster, ReasonTimeout) // c1 cut from the master
	waitAll(t, nodes, AssessIsolated)
}

func TestDetectorGroup_DeadMasterConfirmedEverywhere(t *testing.T) {
	nodes := startGroup(t)
	waitAll(t, nodes, AssessHealthy)
	for _, n := range nodes {
		n.prober.setMaster(testMaster, ReasonRefused)
	}
	// Replicas still connected: no failover.
	waitAll(t, nodes, AssessReplicasStillConnected)
	for _, n := range nodes {
		n.prober.setReplica(ReplicaObservation{Replica: testReplica, Reachable: true, MasterHost: "10.0.0.1", MasterPort: 3306, IORunning: "Connecting"})
	}
	waitAll(t, nodes, AssessDeadConfirmed)
	// Dead is confirmed once two vantage points agree; the third down vote
	// reaches c2 by gossip a moment later, so poll for the full evidence.
	waitFor(t, 10*time.Second, "c2 counts all three down votes", func() (bool, string) {
		a, _ := nodes[1].det.Assessment("app1")
		if a.State != AssessDeadConfirmed || a.DownCount != 3 || a.Needed != 2 || fmt.Sprint(a.Zones) != "[a b c]" {
			return false, fmt.Sprintf("evidence at c2: %s down=%d needed=%d zones=%v", a.State, a.DownCount, a.Needed, a.Zones)
		}
		return true, ""
	})
}

// TestDetectorGroup_LeaseGrantTravelsWithTheVerdict: each controller's
// grant of the master's lease reaches every other controller with its
// verdict, and a grant that changes (the controller stopped renewing) is
// what the others end up with.
func TestDetectorGroup_LeaseGrantTravelsWithTheVerdict(t *testing.T) {
	bound := time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	stopped := uint64(0)
	grantOf := func(i int) *LeaseGrant {
		mu.Lock()
		defer mu.Unlock()
		return &LeaseGrant{Bound: bound.Add(time.Duration(i) * time.Second), Enforced: true, Armed: i == 0, StoppedFor: stopped}
	}
	nodes := startGroupWith(t, func(i int, cfg *Config) {
		cfg.LeaseGrant = func(cluster, instance string) *LeaseGrant {
			if cluster != "app1" || instance != testMaster {
				return nil
			}
			return grantOf(i)
		}
	})
	check := func(want uint64) func() (bool, string) {
		return func() (bool, string) {
			for _, n := range nodes {
				vs := n.gossip.Verdicts()[testMaster]
				if len(vs) != 3 {
					return false, fmt.Sprintf("%s has %d verdicts", n.gossip.cfg.NodeName, len(vs))
				}
				for _, v := range vs {
					i := int(v.Controller[1] - '1')
					g := grantOf(i)
					g.StoppedFor = want
					if v.Lease == nil || *v.Lease != *g {
						return false, fmt.Sprintf("%s holds %s's grant %+v, want %+v", n.gossip.cfg.NodeName, v.Controller, v.Lease, g)
					}
				}
			}
			return true, ""
		}
	}
	waitFor(t, 10*time.Second, "every grant at every controller", check(0))
	mu.Lock()
	stopped = 42
	mu.Unlock()
	waitFor(t, 10*time.Second, "every stopped grant at every controller", check(42))
}
