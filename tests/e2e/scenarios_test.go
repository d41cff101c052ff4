package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
	"github.com/quorumha/quorumha/tests/harness"
)

// The failure scenarios of shared/scenarios.md that no other e2e test
// covers (issue 13). Each runs a write load, checks the action taken (or
// its absence), the history record that explains it, that no acknowledged
// write is lost and that two servers are never writable together (the
// sampler of every foEnv, checked at cleanup; the zone samplers where the
// test cuts the network).

// scnAbsence is how long a test watches for a failover that must not
// happen: two detection windows (probe_interval 500ms × the default
// failure_threshold 3 = 1.5 s each) plus the replica check's time (one
// probe_timeout) and a raft commit, with room to spare. Every use starts
// it once the controllers have seen the fault, so a wrong decision would
// come within the first detection window.
const scnAbsence = 4 * time.Second

// TestScenario_BrokenReplicas is scenarios 8, 9 and 10 on one sandbox,
// in order, each fault repaired before the next: a replica's mysqld killed,
// a replica's IO thread stopped, every replica lagging beyond
// recovery.max_replica_lag, a replica's SQL thread stopped by an error.
// None may fail the master over, each must be visible in the controllers'
// view of the cluster; then, with the SQL thread still broken, the master
// is killed: the broken replica is refused as a candidate with its reason
// and the healthy one promoted, nothing acknowledged lost.
func TestScenario_BrokenReplicas(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e := startScenarioEnv(ctx, t, scnOptions{Agents: true, Recovery: []string{"max_replica_lag: 3s"}})
	load := e.startFollowingLoad(ctx, t)
	after := e.lastRecordID(ctx, t)
	run := func(name string, f func(t *testing.T)) {
		start := time.Now()
		ok := t.Run(name, f)
		t.Logf("%s took %s", name, time.Since(start).Round(100*time.Millisecond))
		if !ok {
			t.FailNow()
		}
	}

	// Scenario 8: a replica's mysqld down.
	run("ReplicaDown", func(t *testing.T) {
		if err := e.sb.Kill(1); err != nil {
			t.Fatal(err)
		}
		e.waitReplicaReported(ctx, t, e.addr(1), "unreachable", func(o map[string]any) bool { return o["reachable"] == false })
		e.requireNoNewFailover(ctx, t, after, scnAbsence)
		if err := e.sb.StartInstance(ctx, 1); err != nil {
			t.Fatal(err)
		}
		e.waitReplicatesFrom(ctx, t, 1, 0)
	})

	// Scenario 10: IO thread stopped.
	run("IOThreadStopped", func(t *testing.T) {
		sqlOn(t, e.sb, 1, "STOP SLAVE IO_THREAD")
		e.waitReplicaReported(ctx, t, e.addr(1), "IO thread stopped", func(o map[string]any) bool {
			return o["reachable"] == true && o["io_running"] != "Yes"
		})
		e.requireNoNewFailover(ctx, t, after, scnAbsence)
		sqlOn(t, e.sb, 1, "START SLAVE IO_THREAD")
		e.waitReplicatesFrom(ctx, t, 1, 0)
	})

	// Scenario 9: every replica lags far beyond the limit (the SQL threads
	// hold back an hour; the IO threads still receive, so semi-sync acks).
	run("AllReplicasLagging", func(t *testing.T) {
		for _, i := range []int{1, 2} {
			sqlOn(t, e.sb, i, "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=3600", "START SLAVE")
		}
		for _, i := range []int{1, 2} {
			e.waitReplicaReported(ctx, t, e.addr(i), "lagging beyond max_replica_lag", func(o map[string]any) bool {
				sb, ok := o["seconds_behind"].(float64)
				return ok && sb > 3
			})
		}
		e.requireNoNewFailover(ctx, t, after, scnAbsence)
		for _, i := range []int{1, 2} {
			sqlOn(t, e.sb, i, "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=0", "START SLAVE")
		}
		if err := e.sb.WaitReplicating(ctx); err != nil {
			t.Fatal(err)
		}
	})

	// Scenario 10: SQL thread stopped by a duplicate key, then the master
	// dies while it is still broken.
	run("SQLThreadErrorThenMasterKilled", func(t *testing.T) {
		sqlOn(t, e.sb, 0, "CREATE TABLE qha_test.scn_dup (id INT PRIMARY KEY)")
		if err := e.sb.WaitReplicating(ctx); err != nil {
			t.Fatal(err)
		}
		sqlOn(t, e.sb, 1, "SET SESSION sql_log_bin=0", "INSERT INTO qha_test.scn_dup VALUES (1)")
		sqlOn(t, e.sb, 0, "INSERT INTO qha_test.scn_dup VALUES (1)")
		e.waitReplicaReported(ctx, t, e.addr(1), "SQL thread stopped", func(o map[string]any) bool {
			return o["reachable"] == true && o["sql_running"] == false
		})
		e.requireNoNewFailover(ctx, t, after, scnAbsence)

		rec := e.killMasterAndWaitFailover(ctx, t, 0)
		requireSuccessRecord(t, rec, e.addr(0), e.addr(2), "automatic")
		e.requireFenceProven(ctx, t, rec)
		requireCandidateRefused(t, rec, e.addr(1), "SQL thread error")
		e.requireFailedOver(ctx, t, load, 2, 0)
	})
}

// TestScenario_MasterAndCandidateDown is scenario 14: the master and the
// candidate_master replica both die; the next eligible replica is
// promoted, the dead candidate is refused with its reason, the last
// replica follows the new master and nothing acknowledged is lost.
func TestScenario_MasterAndCandidateDown(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), foTimeout)
	defer cancel()
	e := startScenarioEnv(ctx, t, scnOptions{Replicas: 3, Agents: true,
		Instances: map[int][]string{1: {"candidate_master: true"}}})
	load := e.startFollowingLoad(ctx, t)
	if err := e.sb.Kill(1); err != nil {
		t.Fatal(err)
	}
	rec := e.killMasterAndWaitFailover(ctx, t, 0)
	requireSuccessRecord(t, rec, e.addr(0), "", "automatic")
	e.requireFenceProven(ctx, t, rec)
	requireCandidateRefused(t, rec, e.addr(1), "unreachable")
	nm := e.index(rec.NewMaster)
	if nm != 2 && nm != 3 {
		t.Fatalf("new master %s, want replica 2 or 3: %s", rec.NewMaster, rec.summary())
	}
	e.requireFailedOver(ctx, t, load, nm, 5-nm)
}

// TestScenario_MasterCleanShutdown is scenario 4: the master's mysqld is
// shut down cleanly (SIGTERM, as `systemctl stop` does). Nothing tells the
// controllers this is planned, so it must be failed over like a crash:
// the agent's pid file check proves the server is not running.
func TestScenario_MasterCleanShutdown(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), foTimeout)
	defer cancel()
	e := startScenarioEnv(ctx, t, scnOptions{Agents: true})
	load := e.startFollowingLoad(ctx, t)
	before := e.lastRecordID(ctx, t)
	stopped := time.Now()
	if err := e.sb.StopInstance(ctx, 0); err != nil {
		t.Fatal(err)
	}
	rec := e.waitFailoverClosed(ctx, t, e.g.Running(), before)
	t.Logf("%s closed %s after the shutdown", rec.summary(), time.Since(stopped).Round(100*time.Millisecond))
	requireSuccessRecord(t, rec, e.addr(0), "", "automatic")
	e.requireFenceProven(ctx, t, rec)
	nm := e.index(rec.NewMaster)
	e.requireFailedOver(ctx, t, load, nm, otherReplica(nm))
}

// TestScenario_CandidateUnappliedRelayLog: the candidate_master replica's
// SQL thread is stopped while writes go on, so its relay log holds
// acknowledged transactions it has not applied (semi-sync acks on
// receipt). The other replica's IO thread was stopped before, so the
// candidate's unapplied relay log is the only copy of the newest
// acknowledged writes outside the master. The master dies: whichever
// replica is promoted must hold every acknowledged write, so the failover
// must apply that relay log first.
func TestScenario_CandidateUnappliedRelayLog(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), foTimeout)
	defer cancel()
	e := startScenarioEnv(ctx, t, scnOptions{Agents: true, Instances: map[int][]string{1: {"candidate_master: true"}}})
	load := e.startFollowingLoad(ctx, t)
	e.stopReplicaThread(ctx, t, 2, "IO_THREAD")
	waitAckedAfter(ctx, t, load, len(load.Snapshot().Acked)+5)
	e.stopReplicaThread(ctx, t, 1, "SQL_THREAD")
	waitAckedAfter(ctx, t, load, len(load.Snapshot().Acked)+20)
	st, err := e.sb.ReplicaStatus(ctx, 1)
	if err != nil || st == nil || st.SQLRunning == "Yes" {
		t.Fatalf("candidate's SQL thread: %+v %v", st, err)
	}
	rec := e.killMasterAndWaitFailover(ctx, t, 0)
	requireSuccessRecord(t, rec, e.addr(0), "", "automatic")
	e.requireFenceProven(ctx, t, rec)
	// Semi-sync acknowledged every committed write on the candidate's
	// receipt, so its relay log held all of them: beyond the one write in
	// flight, a salvage means the relay log was not applied.
	requireSalvageAtMost(t, rec, 1)
	nm := e.index(rec.NewMaster)
	e.requireFailedOver(ctx, t, load, nm, otherReplica(nm))
}

// TestScenario_ParallelReplication is scenario 18: the replicas apply with
// four optimistic parallel workers while four writers insert into four
// tables at once. A switchover and then a failover must each wait for
// every worker: every acknowledged write is on the new master and, once
// replication catches up, everywhere.
func TestScenario_ParallelReplication(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	e := startScenarioEnv(ctx, t, scnOptions{Agents: true,
		SandboxExtra: []string{"slave_parallel_threads=4", "slave_parallel_mode=optimistic"}})
	db, err := e.sb.AdminDB(1)
	if err != nil {
		t.Fatal(err)
	}
	var threads int
	var mode string
	err = db.QueryRowContext(ctx, "SELECT @@global.slave_parallel_threads, @@global.slave_parallel_mode").Scan(&threads, &mode)
	db.Close()
	if err != nil || threads != 4 || mode != "optimistic" {
		t.Fatalf("replica 1: slave_parallel_threads=%d mode=%q err=%v", threads, mode, err)
	}
	par := e.startParLoad(ctx, t, 4)
	load := e.startFollowingLoad(ctx, t)

	// Switchover 0 → 1 through a follower.
	_, follower := e.leaderAndFollower(ctx, t)
	before := e.lastRecordID(ctx, t)
	out, code := cli(ctx, t, "switchover", "--cluster", detCluster, "--to", e.addr(1), "--addr", follower.HTTPAddr)
	if code != 0 {
		t.Fatalf("switchover: exit %d: %s", code, out)
	}
	sw := e.waitSwitchoverClosed(ctx, t, before)
	e.requireSwitchedTo(ctx, t, sw, 0, 1)
	par.waitMore(ctx, t, 40)
	par.requireAll(ctx, t, e.sb, 1)
	requireNothingLost(ctx, t, e.sb, 1, load.Snapshot())

	// Failover: kill the new master.
	rec := e.killMasterAndWaitFailover(ctx, t, 1)
	requireSuccessRecord(t, rec, e.addr(1), "", "automatic")
	e.requireFenceProven(ctx, t, rec)
	// Every acknowledged transaction was received (semi-sync): the relay
	// logs, applied by all workers, leave at most the writers' in-flight
	// transactions to salvage.
	requireSalvageAtMost(t, rec, len(par.tables)+1) // the table writers and the following load
	nm := e.index(rec.NewMaster)
	if nm != 0 && nm != 2 {
		t.Fatalf("new master %s: %s", rec.NewMaster, rec.summary())
	}
	other := 2 - nm
	e.requireNewMaster(ctx, t, nm)
	e.waitReplicatesFrom(ctx, t, other, nm)
	par.waitMore(ctx, t, 40)
	par.stop()
	par.requireAll(ctx, t, e.sb, nm)
	waitAckedAfter(ctx, t, load, len(load.Snapshot().Acked))
	st := load.Stop()
	requireNothingLost(ctx, t, e.sb, nm, st)
	if err := e.sb.WaitReplicating(ctx); err != nil {
		t.Fatal(err)
	}
	par.requireAll(ctx, t, e.sb, other)
	requireNothingLost(ctx, t, e.sb, other, st)
}

// ---- partitions: controllers, servers and agents in network zones --------

// TestScenario_ControllersCutFromEverything is scenario 16: every
// controller loses the master and the replicas (and their agents) while
// the controllers still reach one another. Every vantage point sees the
// master down, but no replica can confirm it: no failover may be
// performed. The application beside the servers keeps writing. The
// master's agent may fence it when its quorum lease lapses (design: the
// lease holds only while a majority renews it); that costs writes, never
// safety, and is logged, not asserted.
func TestScenario_ControllersCutFromEverything(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MariaDB servers, agents and controllers in network namespaces")
	}
	lane(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	e := startIsolatedEnv(ctx, t, "info")
	_, samplers := e.samplers(t)
	// The application beside the master, not following the controllers
	// (they may answer 503 while cut off).
	dsn := e.sb.DSN(0, sandbox.AppUser, sandbox.AppPassword)
	app := harness.StartWriteLoad(t, func() string { return dsn }, 50*time.Millisecond)
	waitAcks(ctx, t, "application", app, 3)
	after := e.fo.lastRecordID(ctx, t)

	var dbZones []string
	for i := range e.sb.Instances() {
		dbZones = append(dbZones, e.zoneOf(i).IP)
	}
	for _, c := range e.g.Nodes {
		e.nw.Isolate(c.NetZone(), dbZones...)
	}
	cut := time.Now()
	// Every controller must see the master down: otherwise the absence
	// below proves nothing.
	for _, c := range e.g.Nodes {
		waitVote(ctx, t, c, c.ID, "down")
	}
	scnRequireNoPromotion(ctx, t, e.fo, after, scnAbsence)
	for _, c := range e.g.Nodes {
		e.nw.Heal(c.NetZone())
	}
	t.Logf("cut for %s", time.Since(cut).Round(100*time.Millisecond))
	scnRequireNoPromotion(ctx, t, e.fo, after, 3*time.Second)
	st := app.Stop()
	if st.Failed > 0 {
		t.Logf("the application saw %d failed writes (last: %s): the master's agent fenced it?", st.Failed, st.LastErr)
	}
	if a := e.agents[0]; a != nil {
		if f, err := agentFence(ctx, a); err == nil {
			t.Logf("master's agent fence state after the cut: %v", f["state"])
		}
	}
	requireNothingLost(ctx, t, e.sb, 0, st)
	if v := harness.CheckNeverTwoWritable(allSamples(samplers), harness.DefaultMaxGap); len(v) > 0 {
		t.Errorf("split brain:%s", harness.Violations(v))
	}
}

// scnRequireNoPromotion watches every running controller for window and
// fails as soon as a failover record newer than after names a new master
// or succeeded. A refused record is allowed (and logged): it explains
// why nothing was done.
func scnRequireNoPromotion(ctx context.Context, t *testing.T, e *foEnv, after uint64, window time.Duration) {
	t.Helper()
	logged := map[uint64]bool{}
	end := time.Now().Add(window)
	for time.Now().Before(end) {
		for _, c := range e.g.Running() {
			recs, err := foHistory(ctx, c)
			if err != nil {
				continue // a cut-off controller may not answer
			}
			for _, r := range failoversAfter(recs, after) {
				if r.NewMaster != "" || r.Result == "success" {
					t.Fatalf("%s recorded a promotion that must not happen: %s", c.ID, r.summary())
				}
				if !logged[r.ID] {
					logged[r.ID] = true
					t.Logf("%s: %s", c.ID, r.summary())
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// TestScenario_MinorityFollowerCut is scenario 20: one follower controller
// is cut from the other two (it still reaches every server). It must not
// promote and must stop naming a master (no leader contact); the majority
// goes on and, when the master is then killed, fails over as usual. After
// healing, the cut controller holds the same single record.
func TestScenario_MinorityFollowerCut(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MariaDB servers, agents and controllers in network namespaces")
	}
	lane(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e := startIsolatedEnv(ctx, t, "info")
	_, samplers := e.samplers(t)
	load := e.groupWriter(ctx, t, 50*time.Millisecond)
	old := e.sb.Instance(0).Addr()
	after := e.fo.lastRecordID(ctx, t)

	leader, minority := e.fo.leaderAndFollower(ctx, t)
	var majority []*harness.Controller
	var majorityIPs []string
	for _, c := range e.g.Nodes {
		if c.ID != minority.ID {
			majority = append(majority, c)
			majorityIPs = append(majorityIPs, c.NetZone().IP)
		}
	}
	e.nw.Isolate(minority.NetZone(), majorityIPs...)
	t.Logf("cut follower %s from %v (leader %s)", minority.ID, majorityIPs, leader.ID)

	// Safety rule 6: the cut controller stops naming a master once it has
	// lost leader contact (raft's election timeouts are about a second;
	// 20 s is generous on a loaded machine).
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	err := harness.Poll(rctx, 200*time.Millisecond, func() error {
		code, err := harness.Do(rctx, http.MethodGet, minority.URL("/v1/clusters/"+detCluster+"/master"), nil, nil)
		if code != http.StatusServiceUnavailable {
			return fmt.Errorf("%s answers %d (%v)", minority.ID, code, err)
		}
		return nil
	})
	rcancel()
	if err != nil {
		t.Errorf("the cut follower keeps naming a master (design.md safety rule 6): %v", err)
	}
	e.fo.requireNoNewFailover(ctx, t, after, scnAbsence)

	// The majority fails the master over.
	if err := e.sb.Kill(0); err != nil {
		t.Fatal(err)
	}
	rec := e.fo.waitFailoverClosed(ctx, t, majority, after)
	requireSuccessRecord(t, rec, old, "", "automatic")
	e.fo.requireFenceProven(ctx, t, rec)
	if slices.Contains(recordSteppers(rec), minority.ID) {
		t.Fatalf("the cut follower %s ran a step: %s", minority.ID, rec.summary())
	}
	recs, err := foHistory(ctx, minority)
	if err == nil && len(failoversAfter(recs, after)) > 0 {
		t.Fatalf("the cut follower holds a failover record while cut off: %s", failoversAfter(recs, after)[0].summary())
	}
	nm := e.fo.index(rec.NewMaster)
	waitAckedAfter(ctx, t, load, len(load.Snapshot().Acked))

	e.nw.Heal(minority.NetZone())
	e.fo.waitFailoverClosed(ctx, t, e.g.Nodes, after)
	e.fo.waitMasterEverywhere(ctx, t, rec.NewMaster)
	st := load.Stop()
	have, err := e.loadIDs(ctx, nm)
	if err != nil {
		t.Fatal(err)
	}
	v := harness.CheckNothingLost(st.Acked, have)
	v = append(v, harness.CheckNeverTwoWritable(allSamples(samplers), harness.DefaultMaxGap)...)
	if len(v) > 0 {
		t.Errorf("violations:%s", harness.Violations(v))
	}
}

// recordSteppers lists the controllers that ran a step of r.
func recordSteppers(r foRecord) []string {
	var out []string
	for _, s := range r.Steps {
		if !slices.Contains(out, s.Leader) {
			out = append(out, s.Leader)
		}
	}
	return out
}

// TestScenario_MasterNetworkFlaps is scenario 13: the master's zone is cut
// off and healed several times (cuts of 4-9 s, heals of 3 s), long enough
// to be detected. Exactly one failover may result, and the cluster must
// not flap back: the new master stays the master through the remaining
// flaps and after them, the old master stays read-only. Blips below the
// detection window are TestDetect_BlipBelowThreshold's.
func TestScenario_MasterNetworkFlaps(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MariaDB servers, agents and controllers in network namespaces")
	}
	lane(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e := startIsolatedEnv(ctx, t, "info")
	_, samplers := e.samplers(t)
	load := e.groupWriter(ctx, t, 50*time.Millisecond)
	old := e.sb.Instance(0).Addr()
	after := e.fo.lastRecordID(ctx, t)

	// The flap schedule is the point of the test: fixed waits.
	// The failover comes in the first cut (2.1 s into it in CI); the
	// others cut the fenced old master's zone again and again, which must
	// neither bring it back as a writable master nor start a second
	// failover. Every cut outlasts a detection window (1.5 s) and the
	// lease (isoLeaseTTL, 2 s), the last also the replicas'
	// slave_net_timeout (4 s); every heal outlasts the leader's 2 s upkeep
	// sweep, which is what would re-fence (or wrongly trust) the returned
	// old master. Three flaps are enough for that (five took 25 s more of
	// a serial test, longer cuts 7 s more).
	flaps := []struct{ cut, heal time.Duration }{
		{4 * time.Second, 3 * time.Second},
		{3 * time.Second, 3 * time.Second},
		{5 * time.Second, 3 * time.Second},
	}
	var lastHeal time.Time
	var cuts []time.Time
	for i, f := range flaps {
		cuts = append(cuts, time.Now())
		e.cutMaster()
		t.Logf("flap %d: cut for %s", i+1, f.cut)
		sleepCtx(ctx, t, f.cut)
		e.nw.Heal(e.zoneOf(0))
		lastHeal = time.Now()
		sleepCtx(ctx, t, f.heal)
	}
	rec := e.fo.waitFailoverClosed(ctx, t, e.g.Running(), after)
	requireSuccessRecord(t, rec, old, "", "automatic")
	e.fo.requireFenceProven(ctx, t, rec)
	for i := len(cuts) - 1; i >= 0; i-- {
		if !rec.Opened.Before(cuts[i]) {
			t.Logf("the failover record was opened %s into cut %d of %d", rec.Opened.Sub(cuts[i]).Round(100*time.Millisecond), i+1, len(cuts))
			break
		}
	}
	e.fo.waitMasterEverywhere(ctx, t, rec.NewMaster)
	// No flapping back: no second record over a few more detection windows
	// with everything reachable.
	e.fo.requireNoNewFailover(ctx, t, rec.ID, scnAbsence)
	e.fo.waitMasterEverywhere(ctx, t, rec.NewMaster)
	nm := e.fo.index(rec.NewMaster)
	waitAckedAfter(ctx, t, load, len(load.Snapshot().Acked))
	st := load.Stop()
	have, err := e.loadIDs(ctx, nm)
	if err != nil {
		t.Fatal(err)
	}
	samples := allSamples(samplers)
	v := harness.CheckNothingLost(st.Acked, have)
	v = append(v, harness.CheckNeverTwoWritable(samples, harness.DefaultMaxGap)...)
	if s, ok := harness.FirstObserved(samples, rec.NewMaster, harness.Writable, time.Time{}); ok {
		v = append(v, harness.CheckNotWritableAfter(samples, old, s.Answered)...)
	}
	if len(v) > 0 {
		t.Errorf("violations:%s", harness.Violations(v))
	}
	t.Logf("one failover %s → %s; last heal %s before the end", old, rec.NewMaster, time.Since(lastHeal).Round(100*time.Millisecond))
}

// sleepCtx waits d or until ctx ends; only for schedules whose timing is
// the point of the test.
func sleepCtx(ctx context.Context, t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(d):
	}
}

// requireSalvageAtMost fails when a failover of a semi-sync cluster applied
// more than inFlight transactions from the dead master's binlog. Semi-sync
// acknowledges a commit only once a replica received it, so every
// acknowledged write was in a replica's relay log; but MariaDB writes a
// transaction to its binlog before that acknowledgement, so each writer may
// leave one transaction that only the dead master has, unacknowledged, and
// salvaging it is right. More than one per concurrent writer means a relay
// log was not applied: without the master's host (no agent) acknowledged
// writes would have been lost.
func requireSalvageAtMost(t *testing.T, rec foRecord, inFlight int) {
	t.Helper()
	if rec.Salvage != nil && rec.Salvage.Applied > inFlight {
		t.Errorf("the failover salvaged %d transactions from the dead master's binlog, more than the %d writers could have in flight: "+
			"a replica's relay log was not applied (salvage: before %s, recovered %s)", rec.Salvage.Applied, inFlight, rec.Salvage.Before, rec.Salvage.Recovered)
	}
}

// TestSplitBrainSampler_CatchesTwoWritable is the negative control of the
// foEnv sampler: with the replica made writable too (by the test, which
// only ever makes a server writable, never read-only), the sampler must
// see both writable and its check must report it; a killed server must
// then be unknown, never read-only.
func TestSplitBrainSampler_CatchesTwoWritable(t *testing.T) {
	skipShort(t)
	lane(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sb := sandbox.New(t, sandbox.Options{Replicas: 1, GTID: true, Nice: niceOf(t)})
	s := newSplitBrainSampler(t, sb)
	defer s.stop()
	if w := s.writable(ctx, t); !slices.Equal(w, []int{0}) {
		t.Fatalf("writable %v before the fault, want only the master", w)
	}
	if v := s.violations(); len(v) > 0 {
		t.Fatalf("violations before the fault:%s", harness.Violations(v))
	}
	sqlOn(t, sb, 1, "SET GLOBAL read_only=0")
	if w := s.writable(ctx, t); !slices.Equal(w, []int{0, 1}) {
		t.Fatalf("writable %v after making the replica writable, want both", w)
	}
	v := s.violations()
	if len(v) == 0 || v[0].Rule != harness.RuleTwoWritable {
		t.Fatalf("the check reported %v for two writable servers", v)
	}
	t.Logf("caught:%s", harness.Violations(v))

	if err := sb.Kill(1); err != nil {
		t.Fatal(err)
	}
	since := time.Now()
	if _, err := s.s.WaitSample(ctx, sb.Instance(1).Addr(), since, harness.Unknown); err != nil {
		t.Fatal(err)
	}
	for _, smp := range s.s.Samples() {
		if smp.Server == sb.Instance(1).Addr() && smp.Sent.After(since) && smp.State == harness.ReadOnly {
			t.Fatalf("a killed server was sampled read-only: %+v", smp)
		}
	}
}
