package controller

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/quorumha/quorumha/config"
	"github.com/quorumha/quorumha/detector"
	"github.com/quorumha/quorumha/fsm"
)

// nopProber answers every probe as refused without touching the network.
type nopProber struct{}

func (nopProber) Probe(_ context.Context, t detector.Target) detector.ProbeResult {
	return detector.ProbeResult{Instance: t.Addr, Reason: detector.ReasonRefused, At: time.Now()}
}

func (nopProber) ProbeReplica(_ context.Context, t detector.Target, _ detector.ReplicaObservation) detector.ReplicaObservation {
	return detector.ReplicaObservation{Replica: t.Addr, Error: "refused", ObservedAt: time.Now()}
}

// applyTo applies one command to f at the next index and fails on a rejection.
func applyTo(t *testing.T, f *fsm.FSM, typ fsm.MessageType, p any) {
	t.Helper()
	buf, err := fsm.Encode(typ, p)
	if err != nil {
		t.Fatal(err)
	}
	if err, ok := f.Apply(&raft.Log{Index: f.AppliedIndex() + 1, Type: raft.LogCommand, Data: buf}).(error); ok {
		t.Fatalf("%s: %v", typ, err)
	}
}

// waitDetector polls the detector until check passes (no timing assertion:
// the deadline only bounds a hung test).
func waitDetector(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The detector follows the replicated topology through the FSM's change
// broadcast: instances added, masters recorded, clusters removed.
func TestFollowTopology_DetectorFollowsTheState(t *testing.T) {
	// Port 1 on loopback refuses at once: start-up discovery finds no
	// master and falls back to the first instance.
	a, b, n := "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"
	cfg := &config.Config{Detector: config.Detector{ProbeInterval: time.Hour, ProbeTimeout: 100 * time.Millisecond},
		Clusters: []config.Cluster{{Name: "app1", User: "m", Instances: []config.Instance{{Address: a}, {Address: b}}}}}
	cfg.Node.ID = "c1"
	log := slog.New(slog.DiscardHandler)
	state := fsm.New(nil)
	c := &Controller{cfg: cfg, log: log, state: state}
	c.topo = newTopoSource(cfg, state, log)
	det, err := detector.New(detector.Config{Controller: "c1", ProbeInterval: time.Hour,
		Clusters: []detector.ClusterSpec{clusterSpec(must(c.topo.current().cluster("app1")), a)}}, nopProber{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.detect = &detection{det: det}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = det.Run(ctx) })
	wg.Go(func() { c.followTopology(ctx, log) })
	defer wg.Wait()
	defer cancel()

	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	def := ClusterDefFromConfig(cfg.Clusters[0])
	applyTo(t, state, fsm.ClusterDefineType, fsm.ClusterDefine{Op: fsm.OpAdd, Name: "app1", Def: &def, At: now})
	applyTo(t, state, fsm.InstanceSetType, fsm.InstanceSet{Op: fsm.OpAdd, Cluster: "app1", Address: n, At: now})
	waitDetector(t, "new instance watched", func() error {
		spec, _ := det.Cluster("app1")
		if !slices.Contains(spec.Replicas, n) {
			return fmt.Errorf("replicas %v", spec.Replicas)
		}
		return nil
	})
	applyTo(t, state, fsm.SetMasterType, fsm.SetMaster{Cluster: "app1", Master: n, At: now.Add(time.Second)})
	waitDetector(t, "recorded master followed", func() error {
		if spec, _ := det.Cluster("app1"); spec.Master != n {
			return fmt.Errorf("master %s", spec.Master)
		}
		return nil
	})
	// A second cluster defined in the state only is watched too.
	applyTo(t, state, fsm.ClusterDefineType, fsm.ClusterDefine{Op: fsm.OpAdd, Name: "app2", At: now,
		Def: &fsm.ClusterDef{Name: "app2", User: "m", PasswordEnv: "NOPE", Instances: []fsm.InstanceDef{{Address: "127.0.0.1:4"}}}})
	waitDetector(t, "state-only cluster watched", func() error {
		if _, ok := det.Cluster("app2"); !ok {
			return fmt.Errorf("names %v", det.ClusterNames())
		}
		return nil
	})
	applyTo(t, state, fsm.ClusterRemoveType, fsm.ClusterRemove{Name: "app1", At: now})
	waitDetector(t, "removed cluster dropped", func() error {
		if got := det.ClusterNames(); !slices.Equal(got, []string{"app2"}) {
			return fmt.Errorf("names %v", got)
		}
		return nil
	})
}

func must[T any](v T, ok bool) T {
	if !ok {
		panic("not found")
	}
	return v
}
