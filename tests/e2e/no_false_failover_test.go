package e2e

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quorumha/quorumha/tests/harness"
)

// noFalseWindow is how long each scenario watches for a failover record
// that must not appear: two detection windows at the defaults
// (probe_interval 500ms x failure_threshold 3 with 500ms probe timeouts,
// ~1.8 s) and a raft commit. Each window starts once the fault is in
// place (and, where the controllers can see it, once every one of them
// does), so a wrong decision would come in the first. Absence is the
// point, so a fixed window is the assertion.
const noFalseWindow = 4 * time.Second

// TestNoFalseFailover runs the issue-14 faults that must not fail the
// master over, at MariaDB's default slave_net_timeout (60 s), in the
// isolated-master environment (controllers, master and replicas in their
// own network zones, an agent beside every server, fencing on, automatic
// failover on). The subtests share it and run in order; each heals what it
// broke and checks the topology is back before the next:
//
//   - MasterCutFromOneReplicaHost: the master's zone drops one replica
//     zone's packets; the controllers and the other replica still reach it.
//   - MasterFrozen1s: SIGSTOP of the master's server for 1 s, then SIGCONT.
//   - MasterCutFromControllersOnly: the master's zone drops the controllers'
//     packets while the replicas (and the writer) still reach it: the
//     replica hosts' agents must say "the master is reachable". Nobody can
//     renew its lease, so its agent fences it meanwhile (by design); once
//     healed, the leader unfences the recorded master and writes continue.
//   - ReplicaAgentDown: the agent beside a replica stops (last: it is not
//     restarted) while the master is healthy.
//
// Each asserts that no controller records a decision over noFalseWindow,
// that the group still names the old master and that writes continue.
// The controllers cut from the master with the replicas still connected
// is also TestDetect_RealFaults/AllControllersCut_ReplicasStillConnected,
// without agents and with failovers held by maintenance; here failover is
// on and the replica hosts' agents and heartbeats are in play.
func TestNoFalseFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MariaDB servers, agents and controllers in network namespaces")
	}
	lane(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	e := startIsolatedEnvWith(ctx, t, "info", isoOptions{SlaveNetTimeout: 60})
	if e.fencing {
		if err := e.waitLeaseHeld(ctx); err != nil {
			t.Fatalf("the master's lease is never held: %v", err)
		}
	}
	old := e.sb.Instance(0).Addr()
	load := e.groupWriter(ctx, t, 20*time.Millisecond)
	defer load.Stop()

	// settled checks that the topology is back: every controller sees the
	// old master healthy, the group names it, the replicas replicate from
	// it, and writes reach it.
	settled := func(t *testing.T) {
		t.Helper()
		e.fo.det.waitHealthy(ctx, t)
		err := harness.Poll(ctx, 200*time.Millisecond, func() error {
			for _, c := range e.g.Running() {
				a := askMaster(ctx, c)
				if a.err != nil || !strings.EqualFold(a.master, old) {
					return fmt.Errorf("%s names %q (HTTP %d, %v)", c.ID, a.master, a.code, a.err)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("the group does not name the old master %s: %v", old, err)
		}
		if err := e.sb.WaitReplicating(ctx); err != nil {
			t.Fatalf("replicas: %v", err)
		}
		waitAckedAfter(ctx, t, load, len(load.Snapshot().Acked))
	}
	noRecord := func(t *testing.T, after uint64) {
		t.Helper()
		seen := e.fo.det.observeNoRecord(ctx, t, e.g.Running(), after, noFalseWindow,
			func(c *harness.Controller, a detAssessment) error {
				if a.State == "dead_confirmed" {
					return fmt.Errorf("assesses %s: %s", a.State, a.Reason)
				}
				return nil
			})
		t.Logf("assessments seen over %s: %v", noFalseWindow, seen)
	}
	run := func(name string, f func(t *testing.T)) bool {
		start := time.Now()
		ok := t.Run(name, f)
		t.Logf("%s took %s", name, time.Since(start).Round(100*time.Millisecond))
		return ok
	}
	settled(t)

	if !run("MasterCutFromOneReplicaHost", func(t *testing.T) {
		after := e.fo.lastRecordID(ctx, t)
		e.nw.Isolate(e.zoneOf(0), e.zoneOf(1).IP)
		healed := false
		defer func() {
			if !healed {
				e.nw.Heal(e.zoneOf(0))
			}
		}()
		before := len(load.Snapshot().Acked)
		noRecord(t, after)
		// The other replica still acknowledges: writes go on during the cut.
		waitAckedAfter(ctx, t, load, before)
		e.nw.Heal(e.zoneOf(0))
		healed = true
		settled(t)
	}) {
		return
	}

	if !run("MasterFrozen1s", func(t *testing.T) {
		after := e.fo.lastRecordID(ctx, t)
		pid := e.sb.Instance(0).PID
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		frozen := time.Now()
		resumed := false
		defer func() {
			if !resumed {
				_ = syscall.Kill(pid, syscall.SIGCONT)
			}
		}()
		// The fault's length, not a wait for a condition.
		time.Sleep(time.Second)
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		resumed = true
		t.Logf("master frozen for %s", time.Since(frozen).Round(time.Millisecond))
		noRecord(t, after)
		settled(t)
	}) {
		return
	}

	if !run("MasterCutFromControllersOnly", func(t *testing.T) {
		after := e.fo.lastRecordID(ctx, t)
		var ctrl []string
		for i := 0; i < isoMasterZone; i++ {
			ctrl = append(ctrl, e.nw.Zones[i].IP)
		}
		e.nw.Isolate(e.zoneOf(0), ctrl...)
		healed := false
		defer func() {
			if !healed {
				e.nw.Heal(e.zoneOf(0))
			}
		}()
		// Every controller must see it fail, and still not decide.
		err := harness.Poll(ctx, 200*time.Millisecond, func() error {
			for _, c := range e.g.Running() {
				a, _, err := detAssess(ctx, c)
				if err != nil {
					return err
				}
				if a.State == "healthy" {
					return fmt.Errorf("%s still assesses the master healthy", c.ID)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		noRecord(t, after)
		e.nw.Heal(e.zoneOf(0))
		healed = true
		settled(t)
	}) {
		return
	}

	run("ReplicaAgentDown", func(t *testing.T) {
		after := e.fo.lastRecordID(ctx, t)
		e.agents[1].stop()
		before := len(load.Snapshot().Acked)
		noRecord(t, after)
		waitAckedAfter(ctx, t, load, before)
		settled(t)
	})
}
