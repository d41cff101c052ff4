package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/tests/harness"
)

// The failover scenarios (issue 5) run against a real MariaDB master with
// two GTID, semi-sync replicas, three real controllers and a write load
// that follows the master the controllers name. Each scenario has its own
// sandbox and group, and checks the action, that no acknowledged write is
// lost, that two instances are never writable at once (the split-brain
// sampler, for the whole test) and the failover record that explains it.

// foTimeout bounds one scenario.
const foTimeout = 3 * time.Minute

// skipShort skips the scenarios in -short runs.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts MariaDB servers and controller processes")
	}
}

// otherReplica is the replica (1 or 2) that is not i.
func otherReplica(i int) int { return 3 - i }

// stopReplicaThread runs STOP SLAVE <thread> on instance i.
func (e *foEnv) stopReplicaThread(ctx context.Context, t *testing.T, i int, thread string) {
	t.Helper()
	db, err := e.sb.AdminDB(i)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	detExec(ctx, t, db, "STOP SLAVE "+thread)
}

// killMasterAndWaitFailover kills instance 0 with SIGKILL and returns the
// failover record once every controller holds it closed.
func (e *foEnv) killMasterAndWaitFailover(ctx context.Context, t *testing.T, i int) foRecord {
	t.Helper()
	before := e.lastRecordID(ctx, t)
	if err := e.sb.Kill(i); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	rec := e.waitFailoverClosed(ctx, t, e.g.Running(), before)
	t.Logf("%s closed %s after the kill", rec.summary(), time.Since(killed).Round(100*time.Millisecond))
	return rec
}

// requireFailedOver checks the state after a successful failover to
// instance nm: it is the only writable master everywhere, the other
// replica (when given) replicates from it, writes reach it, and it and the
// other replica hold every acknowledged write.
func (e *foEnv) requireFailedOver(ctx context.Context, t *testing.T, load *harness.WriteLoad, nm, other int) {
	t.Helper()
	e.requireNewMaster(ctx, t, nm)
	if other > 0 {
		e.waitReplicatesFrom(ctx, t, other, nm)
	}
	waitAckedAfter(ctx, t, load, len(load.Snapshot().Acked))
	st := load.Stop()
	t.Logf("write load: %d acknowledged, %d failed (last: %s)", len(st.Acked), st.Failed, st.LastErr)
	requireNothingLost(ctx, t, e.sb, nm, st)
	if other > 0 {
		if err := e.sb.WaitReplicating(ctx); err != nil {
			t.Fatal(err)
		}
		requireNothingLost(ctx, t, e.sb, other, st)
	}
}

// TestFailover_KillMaster is scenarios 3 and 22: kill -9 of the master
// fails over once; the old master, restarted, stays read-only, replicates
// from no one and triggers nothing.
func TestFailover_KillMaster(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), foTimeout)
	defer cancel()
	e := startFailoverEnv(ctx, t, foOptions{})
	load := e.startFollowingLoad(ctx, t)

	rec := e.killMasterAndWaitFailover(ctx, t, 0)
	requireSuccessRecord(t, rec, e.addr(0), "", "automatic")
	// The master's agent says its server is not running: the fence proof
	// (recovery.fence: required).
	if f := rec.Fence; f == nil || f.State != "proven" || f.Proof != "agent" || len(f.Targets) != 1 || f.Targets[0].Address != e.addr(0) {
		t.Fatalf("fence %+v, want proven by the old master's agent; %s", f, rec.summary())
	}
	nm := e.index(rec.NewMaster)
	if nm != 1 && nm != 2 {
		t.Fatalf("new master %s is not a replica", rec.NewMaster)
	}
	e.requireFailedOver(ctx, t, load, nm, otherReplica(nm))

	// The old master comes back (read_only=ON in its my.cnf, as MHA
	// requires of every server): it must stay read-only, must not be made
	// a replica behind the operator's back, and must not start anything.
	after := e.lastRecordID(ctx, t)
	e.restartReadOnly(ctx, t, 0)
	e.requireNoNewFailover(ctx, t, after, scnAbsence)
	if ro, err := e.readOnly(ctx, 0); err != nil || !ro {
		t.Fatalf("old master after restart: read_only=%v err=%v", ro, err)
	}
	st, err := e.sb.ReplicaStatus(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st != nil && (st.IORunning == "Yes" || st.SQLRunning == "Yes") {
		t.Fatalf("old master replicates from port %d (IO %s SQL %s): rejoining must be explicit", st.MasterPort, st.IORunning, st.SQLRunning)
	}
	e.waitMasterEverywhere(ctx, t, e.addr(nm))
	if w := e.sampler.writable(ctx, t); len(w) != 1 || w[0] != nm {
		t.Fatalf("writable instances %v, want only %d", w, nm)
	}
}

// TestFailover_CandidateMasterLagsMost is scenario 7: the candidate_master
// replica is the furthest behind when the master dies. It is still the one
// promoted, after it has everything the other replica has.
func TestFailover_CandidateMasterLagsMost(t *testing.T) {
	skipShort(t)
	parallel(t)
	tests := []struct {
		name   string
		thread string // the replica thread stopped on the candidate
		// mayRefuse accepts that the candidate is refused, with a reason
		// naming its lag, and the other replica promoted (scenario 10:
		// "excluded or caught up as rules say").
		mayRefuse bool
	}{
		// Received less: it must catch up from the other replica first.
		{"IOThreadStopped", "IO_THREAD", false},
		// Received everything but applied nothing: wait_relay starts its
		// applier, so it is promoted with every acknowledged write, not
		// refused for a lag it no longer has.
		{"SQLThreadStopped", "SQL_THREAD", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), foTimeout)
			defer cancel()
			e := startFailoverEnv(ctx, t, foOptions{Instances: map[int][]string{2: {"candidate_master: true"}}})
			load := e.startFollowingLoad(ctx, t)
			e.stopReplicaThread(ctx, t, 2, tt.thread)
			// Writes the candidate does not have (or has not applied).
			waitAckedAfter(ctx, t, load, len(load.Snapshot().Acked)+15)

			rec := e.killMasterAndWaitFailover(ctx, t, 0)
			nm := 2
			if tt.mayRefuse && rec.NewMaster != e.addr(2) {
				reason := ""
				for _, c := range rec.Candidates {
					if c.Address == e.addr(2) {
						reason = c.Reason
					}
				}
				if !strings.Contains(reason, "lag") && !strings.Contains(reason, "SQL") {
					t.Fatalf("candidate_master %s refused without naming its lag or SQL thread: %s", e.addr(2), rec.summary())
				}
				t.Logf("candidate_master with a stopped SQL thread refused: %s", reason)
				nm = e.index(rec.NewMaster)
			}
			requireSuccessRecord(t, rec, e.addr(0), e.addr(nm), "automatic")
			if tt.thread == "IO_THREAD" {
				if s, _ := rec.step("catch_up"); s.Outcome != "ok" {
					t.Fatalf("the lagging candidate was not caught up: %s", rec.summary())
				}
			}
			e.requireFailedOver(ctx, t, load, nm, otherReplica(nm))
		})
	}
}

// TestFailover_NoMasterOnMostAdvanced: the most advanced replica is
// no_master. The other one is caught up from it, then promoted.
func TestFailover_NoMasterOnMostAdvanced(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), foTimeout)
	defer cancel()
	e := startFailoverEnv(ctx, t, foOptions{Instances: map[int][]string{1: {"no_master: true"}}})
	load := e.startFollowingLoad(ctx, t)
	e.stopReplicaThread(ctx, t, 2, "IO_THREAD")
	waitAckedAfter(ctx, t, load, len(load.Snapshot().Acked)+15)

	rec := e.killMasterAndWaitFailover(ctx, t, 0)
	requireSuccessRecord(t, rec, e.addr(0), e.addr(2), "automatic")
	for _, c := range rec.Candidates {
		if c.Address == e.addr(1) && !strings.Contains(c.Reason, "no_master") {
			t.Fatalf("no_master replica refused for %q, want no_master named", c.Reason)
		}
	}
	if s, _ := rec.step("catch_up"); s.Outcome != "ok" {
		t.Fatalf("the promoted replica was not caught up: %s", rec.summary())
	}
	e.requireFailedOver(ctx, t, load, 2, 1)
}

// TestFailover_LeaderKilledMidFailover is scenario 21: the leader dies
// between two steps of a failover (steps are slowed down by the test-only
// QUORUMHA_TEST_STEP_DELAY); the new leader finishes it, and there is one
// promotion only.
func TestFailover_LeaderKilledMidFailover(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), foTimeout)
	defer cancel()
	e := startFailoverEnv(ctx, t, foOptions{Env: []string{"QUORUMHA_TEST_STEP_DELAY=2s"}})
	load := e.startFollowingLoad(ctx, t)
	before := e.lastRecordID(ctx, t)
	leader, follower := e.leaderAndFollower(ctx, t)
	if err := e.sb.Kill(0); err != nil {
		t.Fatal(err)
	}

	// Wait, on a follower, for the first step to end; the next begins
	// 2 s later, which is when the leader dies.
	var open foRecord
	err := harness.Poll(ctx, 100*time.Millisecond, func() error {
		recs, err := foHistory(ctx, follower)
		if err != nil {
			return err
		}
		fresh := failoversAfter(recs, before)
		if len(fresh) != 1 || !fresh[0].open() || len(fresh[0].Steps) == 0 || fresh[0].Steps[0].Outcome == "running" {
			return fmt.Errorf("no open failover with a finished step yet: %d records", len(fresh))
		}
		open = fresh[0]
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, begun := open.step("promote"); begun {
		t.Fatalf("too late to test a resume: %s", open.summary())
	}
	if open.Steps[0].Leader != leader.ID {
		t.Fatalf("step 1 run by %s, the leader was %s", open.Steps[0].Leader, leader.ID)
	}
	e.g.Kill(leader)
	t.Logf("killed leader %s during %s", leader.ID, open.summary())

	rec := e.waitFailoverClosed(ctx, t, e.g.Running(), before)
	t.Logf("%s", rec.summary())
	if rec.ID != open.ID {
		t.Fatalf("record %d closed, %d was open", rec.ID, open.ID)
	}
	requireSuccessRecord(t, rec, e.addr(0), "", "automatic")
	leaders := map[string]bool{}
	promotions := 0
	for _, s := range rec.Steps {
		leaders[s.Leader] = true
		if s.Name == "promote" && s.Outcome == "ok" {
			promotions++
		}
	}
	if !leaders[leader.ID] || len(leaders) < 2 {
		t.Fatalf("steps run by %v; want the killed leader %s and its successor", leaders, leader.ID)
	}
	if promotions != 1 {
		t.Fatalf("%d promote steps ended ok: %s", promotions, rec.summary())
	}
	nm := e.index(rec.NewMaster)
	e.requireFailedOver(ctx, t, load, nm, otherReplica(nm))

	// The killed controller comes back and holds the same record.
	if err := e.g.Start(leader); err != nil {
		t.Fatal(err)
	}
	if again := e.waitFailoverClosed(ctx, t, []*harness.Controller{leader}, before); again.ID != rec.ID || again.Result != "success" {
		t.Fatalf("restarted %s holds %s", leader.ID, again.summary())
	}
}

// TestFailover_AntiFlap: a second master death inside recovery.anti_flap
// (1h by default) is refused and recorded; once an operator acknowledges
// the last failover, the next death fails over again.
func TestFailover_AntiFlap(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), foTimeout)
	defer cancel()
	e := startFailoverEnv(ctx, t, foOptions{})
	load := e.startFollowingLoad(ctx, t)

	first := e.killMasterAndWaitFailover(ctx, t, 0)
	requireSuccessRecord(t, first, e.addr(0), "", "automatic")
	nm := e.index(first.NewMaster)
	other := otherReplica(nm)
	e.requireNewMaster(ctx, t, nm)
	e.waitReplicatesFrom(ctx, t, other, nm)
	waitAckedAfter(ctx, t, load, len(load.Snapshot().Acked))
	if err := e.sb.WaitReplicating(ctx); err != nil {
		t.Fatal(err)
	}

	// The new master dies within the hour: refused, and recorded.
	refused := e.killMasterAndWaitFailover(ctx, t, nm)
	if refused.Result != "refused" || refused.OldMaster != e.addr(nm) ||
		!strings.Contains(refused.Detail, "anti_flap") || !strings.Contains(refused.Detail, "ack") {
		t.Fatalf("want a refusal naming anti_flap and ack; got %s", refused.summary())
	}
	e.requireAllReadOnly(ctx, t)

	// The operator acknowledges (through the CLI) and puts the master
	// back in service; its next death is a new incident.
	_, follower := e.leaderAndFollower(ctx, t)
	if out, code := cli(ctx, t, "ack", "--cluster", detCluster, "--by", "e2e", "--addr", follower.HTTPAddr); code != 0 {
		t.Fatalf("ack: exit %d: %s", code, out)
	}
	e.waitAckedEverywhere(ctx, t, "e2e")
	if err := e.sb.StartInstance(ctx, nm); err != nil {
		t.Fatal(err)
	}
	db, err := e.sb.AdminDB(nm)
	if err != nil {
		t.Fatal(err)
	}
	// Semi-sync, so the writes it acknowledges reach the replica before
	// it is killed again.
	detExec(ctx, t, db, "SET GLOBAL rpl_semi_sync_master_enabled=ON", "SET GLOBAL rpl_semi_sync_master_timeout=2000",
		"SET GLOBAL read_only=OFF")
	db.Close()
	rdb, err := e.sb.AdminDB(other)
	if err != nil {
		t.Fatal(err)
	}
	detExec(ctx, t, rdb, "STOP SLAVE", "START SLAVE") // reconnect now, not after master_connect_retry
	rdb.Close()
	e.waitReplicatesFrom(ctx, t, other, nm)
	e.det.master = e.addr(nm)
	e.det.waitHealthy(ctx, t)
	waitAckedAfter(ctx, t, load, len(load.Snapshot().Acked))
	if err := e.sb.WaitReplicating(ctx); err != nil {
		t.Fatal(err)
	}

	third := e.killMasterAndWaitFailover(ctx, t, nm)
	requireSuccessRecord(t, third, e.addr(nm), e.addr(other), "automatic")
	e.requireFailedOver(ctx, t, load, other, 0)
}

// ipHookScript logs its arguments, one call per line, and fails the
// --command=stop and --command=stopssh calls.
const ipHookScript = `#!/bin/sh
echo "$*" >> %s
for a in "$@"; do
  case "$a" in
    --command=stop|--command=stopssh) exit 1 ;;
  esac
done
exit 0
`

// TestFailover_IPHookFailsOnStop: the ip_failover hook cannot fence the
// dead master (its stop call exits 1). The failover is aborted and
// recorded, and nothing is promoted.
func TestFailover_IPHookFailsOnStop(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), foTimeout)
	defer cancel()
	dir := t.TempDir()
	logPath := filepath.Join(dir, "ip_failover.log")
	script := filepath.Join(dir, "master_ip_failover")
	if err := os.WriteFile(script, []byte(fmt.Sprintf(ipHookScript, logPath)), 0o755); err != nil {
		t.Fatal(err)
	}
	e := startFailoverEnv(ctx, t, foOptions{Hooks: []string{"ip_failover: " + script}})
	load := e.startFollowingLoad(ctx, t)

	rec := e.killMasterAndWaitFailover(ctx, t, 0)
	if !oneOf(rec.Result, "aborted", "failed") || rec.NewMaster != "" || !strings.Contains(rec.Detail+rec.summary(), "ip_failover") {
		t.Fatalf("want an aborted failover blaming ip_failover, no new master; got %s", rec.summary())
	}
	if _, promoted := rec.step("promote"); promoted {
		t.Fatalf("promote ran after fencing failed: %s", rec.summary())
	}
	e.requireAllReadOnly(ctx, t)

	calls, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatalf("the hook never ran: %v", err)
	}
	t.Logf("ip_failover calls:\n%s", calls)
	var stop string
	for _, line := range strings.Split(strings.TrimSpace(string(calls)), "\n") {
		if strings.Contains(line, "--command=start") {
			t.Fatalf("ip_failover start called although stop failed: %s", line)
		}
		if strings.Contains(line, "--command=stop") {
			stop = line
		}
	}
	for _, want := range []string{"--orig_master_host=127.0.0.1", "--orig_master_ip=127.0.0.1",
		"--orig_master_port=" + strconv.Itoa(e.sb.Instance(0).Port)} {
		if !strings.Contains(stop, want) {
			t.Fatalf("ip_failover stop call %q lacks %s", stop, want)
		}
	}

	// Nothing acknowledged is lost: each write is on a replica (semi-sync).
	st := load.Stop()
	err = harness.Poll(ctx, 200*time.Millisecond, func() error {
		lost := map[int64]int{}
		for _, i := range []int{1, 2} {
			db, err := e.sb.AdminDB(i)
			if err != nil {
				return err
			}
			missing, err := harness.MissingAcked(ctx, db, st.Acked)
			db.Close()
			if err != nil {
				return err
			}
			for _, id := range missing {
				lost[id]++
			}
		}
		for id, n := range lost {
			if n == 2 {
				return fmt.Errorf("acknowledged write %d is on no replica", id)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFailover_Manual is scenario 1: `quorumha failover` refuses a live
// master, plans without changing anything (--dry-run), and, asked through
// a follower, promotes the replica the operator named.
func TestFailover_Manual(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), foTimeout)
	defer cancel()
	e := startFailoverEnv(ctx, t, foOptions{})
	load := e.startFollowingLoad(ctx, t)
	_, follower := e.leaderAndFollower(ctx, t)
	addr := follower.HTTPAddr

	out, code := cli(ctx, t, "failover", "--cluster", detCluster, "--addr", addr)
	if code == 0 || !strings.Contains(out, "switchover") {
		t.Fatalf("failover of a live master: exit %d, want non-zero naming switchover: %s", code, out)
	}

	// Automatic failover off, so the operator's is the only one.
	if out, code := cli(ctx, t, "maintenance", "--cluster", detCluster, "--for", "30m", "--reason", "e2e", "--addr", addr); code != 0 {
		t.Fatalf("maintenance: exit %d: %s", code, out)
	}
	refused := e.killMasterAndWaitFailover(ctx, t, 0)
	if refused.Result != "refused" || !strings.Contains(refused.Detail, "maintenance") {
		t.Fatalf("want the automatic failover refused for maintenance; got %s", refused.summary())
	}
	port0 := e.sb.Instance(0).Port

	// The plan changes nothing.
	before := e.lastRecordID(ctx, t)
	out, code = cli(ctx, t, "failover", "--cluster", detCluster, "--dry-run", "--addr", addr)
	if code != 0 || !strings.Contains(out, "dry run") || !strings.Contains(out, "would promote") ||
		!strings.Contains(out, e.addr(1)) || !strings.Contains(out, e.addr(2)) {
		t.Fatalf("dry run: exit %d, want a plan naming both replicas: %s", code, out)
	}
	e.requireAllReadOnly(ctx, t)
	for _, i := range []int{1, 2} {
		st, err := e.sb.ReplicaStatus(ctx, i)
		if err != nil || st == nil || st.MasterPort != port0 {
			t.Fatalf("%s after the dry run: %+v err %v; want it still a replica of port %d", e.addr(i), st, err, port0)
		}
	}
	if id := e.lastRecordID(ctx, t); id != before {
		t.Fatalf("the dry run recorded something: last record %d, was %d", id, before)
	}

	// The real one, to the replica the operator names, through a follower.
	target := e.addr(2)
	out, code = cli(ctx, t, "failover", "--cluster", detCluster, "--to", target, "--wait", "90s", "--addr", addr)
	if code != 0 || !strings.Contains(out, "result: success") {
		t.Fatalf("manual failover: exit %d: %s", code, out)
	}
	rec := e.waitFailoverClosed(ctx, t, e.g.Running(), before)
	requireSuccessRecord(t, rec, e.addr(0), target, "manual")
	e.requireFailedOver(ctx, t, load, 2, 1)
}

// TestFailover_OldMasterBackWritableIsFenced is scenario 22 without help
// from my.cnf: the old master restarts writable (no read_only in its
// config). The leader must make it read-only again, and must not make it a
// replica. The split-brain sampler covers the failover itself; it is
// stopped before the restart, since a server that starts writable is
// writable until the leader's next sweep fences it.
func TestFailover_OldMasterBackWritableIsFenced(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), foTimeout)
	defer cancel()
	e := startFailoverEnv(ctx, t, foOptions{})
	rec := e.killMasterAndWaitFailover(ctx, t, 0)
	requireSuccessRecord(t, rec, e.addr(0), "", "automatic")
	nm := e.index(rec.NewMaster)
	e.sampler.stop()

	if err := e.sb.StartInstance(ctx, 0); err != nil {
		t.Fatal(err)
	}
	err := harness.Poll(ctx, 100*time.Millisecond, func() error {
		ro, err := e.readOnly(ctx, 0)
		if err != nil {
			return err
		}
		if !ro {
			return fmt.Errorf("old master %s still writable", e.addr(0))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("old master never fenced: %v", err)
	}
	st, err := e.sb.ReplicaStatus(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st != nil && (st.IORunning == "Yes" || st.SQLRunning == "Yes") {
		t.Fatalf("old master replicates (IO %s SQL %s): rejoining must be explicit", st.IORunning, st.SQLRunning)
	}
	e.waitMasterEverywhere(ctx, t, e.addr(nm))
	if ro, err := e.readOnly(ctx, nm); err != nil || ro {
		t.Fatalf("new master read_only=%v err=%v, want writable", ro, err)
	}
}

// TestFailover_AwaitingFenceUntilOperatorAccepts is safety rule 3: the
// master is killed and nothing can prove it fenced (no agent, no hook, no
// lease witness), so under recovery.fence: required the failover waits in
// awaiting_fence, promotes nobody, and says why in status; once an
// operator runs `failover --unfenced` it goes on, and the record names who
// accepted.
func TestFailover_AwaitingFenceUntilOperatorAccepts(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), foTimeout)
	defer cancel()
	e := startFailoverEnv(ctx, t, foOptions{NoAgents: true})
	before := e.lastRecordID(ctx, t)
	if err := e.sb.Kill(0); err != nil {
		t.Fatal(err)
	}
	addr := e.g.Nodes[0].HTTPAddr
	err := harness.Poll(ctx, 200*time.Millisecond, func() error {
		out, code := cli(ctx, t, "status", "--addr", addr)
		if code != 0 || !strings.Contains(out, "AWAITING_FENCE failover") || !strings.Contains(out, e.addr(0)+": sql: unreachable") {
			return fmt.Errorf("status (exit %d):\n%s", code, out)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("status never showed the failover awaiting a fence: %v", err)
	}
	// Several retries later, still nobody promoted and still one record.
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		if w := e.sampler.writable(ctx, t); len(w) != 0 {
			t.Fatalf("instances %v writable while the failover awaits a fence", w)
		}
		time.Sleep(500 * time.Millisecond)
	}
	recs, err := foHistory(ctx, e.g.Nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	if fresh := failoversAfter(recs, before); len(fresh) != 1 || !fresh[0].open() || fresh[0].Fence == nil || fresh[0].Fence.State != "awaiting" {
		t.Fatalf("want one open failover awaiting a fence, got %+v", fresh)
	}
	if out, code := cli(ctx, t, "history", "--addr", addr, "--cluster", detCluster); code != 0 || !strings.Contains(out, "awaiting_fence") {
		t.Fatalf("history (exit %d) does not show awaiting_fence:\n%s", code, out)
	}

	out, code := cli(ctx, t, "failover", "--cluster", detCluster, "--unfenced", "--by", "e2e-operator", "--addr", addr, "--wait", "0")
	if code != 0 || !strings.Contains(out, "goes on without a fence proof") {
		t.Fatalf("failover --unfenced: exit %d:\n%s", code, out)
	}
	rec := e.waitFailoverClosed(ctx, t, e.g.Running(), before)
	requireSuccessRecord(t, rec, e.addr(0), "", "automatic")
	if f := rec.Fence; f == nil || f.State != "accepted" || f.Proof != "operator" || f.By != "e2e-operator" {
		t.Fatalf("fence %+v, want accepted by e2e-operator; %s", f, rec.summary())
	}
	nm := e.index(rec.NewMaster)
	e.requireNewMaster(ctx, t, nm)

	// Accepting again, with nothing awaiting, is refused and changes nothing.
	out, code = cli(ctx, t, "failover", "--cluster", detCluster, "--unfenced", "--addr", addr, "--wait", "0")
	if code == 0 || !strings.Contains(out, "409") {
		t.Fatalf("second --unfenced: exit %d:\n%s", code, out)
	}
}
