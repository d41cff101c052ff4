package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
	"github.com/quorumha/quorumha/tests/harness"
	"github.com/quorumha/quorumha/topology"
)

// TestFailover_CandidateCannotApplyRelayLog is issue 13 item 3 on real
// MariaDB: the candidate_master (check_repl_delay off, MHA's recipe)
// received every write but its SQL thread is blocked by a table lock, so it
// cannot apply its relay log within recovery.apply_timeout. Catching it up
// or promoting it would purge what it received; it must not be chosen, the
// record must say why, and the new master must have every acknowledged
// write.
func TestFailover_CandidateCannotApplyRelayLog(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), foTimeout)
	defer cancel()
	e := startFailoverEnv(ctx, t, foOptions{
		Instances: map[int][]string{2: {"candidate_master: true", "check_repl_delay: false"}},
		ExtraYAML: "recovery:\n  apply_timeout: 3s\n",
	})
	load := e.startFollowingLoad(ctx, t)

	// Block the candidate's applier on the load table; its IO thread keeps
	// receiving (and acknowledging, semi-sync) every write.
	db, err := e.sb.AdminDB(2)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	lock, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.ExecContext(ctx, "LOCK TABLES qha_test.load WRITE"); err != nil {
		t.Fatal(err)
	}
	unlocked := false
	unlock := func() {
		if !unlocked {
			unlocked = true
			_, _ = lock.ExecContext(context.Background(), "UNLOCK TABLES")
			_ = lock.Close()
		}
	}
	defer unlock()
	waitAckedAfter(ctx, t, load, len(load.Snapshot().Acked)+10)

	rec := e.killMasterAndWaitFailover(ctx, t, 0)
	requireSuccessRecord(t, rec, e.addr(0), e.addr(1), "automatic")
	reason := ""
	for _, c := range rec.Candidates {
		if c.Address == e.addr(2) {
			reason = c.Reason
		}
	}
	if !strings.Contains(reason, "relay log not applied") {
		t.Fatalf("candidate_master %s refused without naming its relay log: %q; %s", e.addr(2), reason, rec.summary())
	}
	t.Logf("candidate refused: %s", reason)
	// The blocked applier also keeps STOP SLAVE from finishing, so the
	// candidate may not have been repointed (a warning the record keeps,
	// MHA's exit 10); what matters is the new master's data.
	if s, _ := rec.step("repoint"); s.Outcome != "ok" && !strings.Contains(s.Detail, e.addr(2)) {
		t.Fatalf("repoint %s/%s does not name the candidate", s.Outcome, s.Detail)
	}
	unlock()
	e.requireFailedOver(ctx, t, load, 1, 0)
}

// slaveStatusColumn reads one column of SHOW SLAVE STATUS on instance i.
func (e *foEnv) slaveStatusColumn(ctx context.Context, t *testing.T, i int, col string) string {
	t.Helper()
	db, err := e.sb.AdminDB(i)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	if !rows.Next() {
		t.Fatalf("instance %d is not a replica", i)
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for k := range vals {
		ptrs[k] = &vals[k]
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	for k, c := range cols {
		if c == col {
			return vals[k].String
		}
	}
	t.Fatalf("no column %s in SHOW SLAVE STATUS", col)
	return ""
}

// TestFailover_DelayedReplicaIsNotWaitedFor is issue 13 item 7: a replica
// with MASTER_DELAY holds back what it received on purpose. The failover
// must neither wait for it to apply its relay log (that took
// apply_timeout, 60 s, on every failover) nor choose it; it is repointed
// afterwards and keeps its delay. The assertions are on the record's
// steps, not on timings.
func TestFailover_DelayedReplicaIsNotWaitedFor(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), foTimeout)
	defer cancel()
	e := startFailoverEnv(ctx, t, foOptions{})
	db, err := e.sb.AdminDB(2)
	if err != nil {
		t.Fatal(err)
	}
	detExec(ctx, t, db, "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=3600", "START SLAVE")
	_ = db.Close()
	load := e.startFollowingLoad(ctx, t)
	waitAckedAfter(ctx, t, load, len(load.Snapshot().Acked)+10)

	rec := e.killMasterAndWaitFailover(ctx, t, 0)
	requireSuccessRecord(t, rec, e.addr(0), e.addr(1), "automatic")
	s, _ := rec.step("wait_relay")
	if s.Outcome != "ok" || !strings.Contains(s.Detail, "not waited for") || !strings.Contains(s.Detail, e.addr(2)+" (MASTER_DELAY 1h0m0s)") {
		t.Fatalf("wait_relay %s: %s", s.Outcome, s.Detail)
	}
	for _, c := range rec.Candidates {
		if c.Address == e.addr(2) && !strings.Contains(c.Reason, "MASTER_DELAY") {
			t.Fatalf("delayed replica's reason %q", c.Reason)
		}
	}
	if s, _ := rec.step("repoint"); s.Outcome != "ok" || !strings.Contains(s.Detail, e.addr(2)) {
		t.Fatalf("repoint %s: %s", s.Outcome, s.Detail)
	}
	e.waitReplicatesFrom(ctx, t, 2, 1)
	if d := e.slaveStatusColumn(ctx, t, 2, "SQL_Delay"); d != "3600" {
		t.Fatalf("delayed replica's SQL_Delay after the failover = %q, want 3600", d)
	}
	e.requireFailedOver(ctx, t, load, 1, 0)
}

// TestFailover_FilePositionReplicaBehindIsLeveled is issue 13 item 4: with
// binlog file/position replication a replica that applied less of the dead
// master's binlog than the new master must not be pointed at the new
// master's current coordinate (it would silently miss the transactions in
// between). On MariaDB it is leveled first, through the GTIDs MariaDB logs
// in every mode, then set to its own coordinate in the new master's binlog:
// it ends with every acknowledged write.
func TestFailover_FilePositionReplicaBehindIsLeveled(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), foTimeout)
	defer cancel()
	e := startFilePositionEnv(ctx, t, foOptions{})
	load := e.loadWithReplicaBehind(ctx, t, 2)

	rec := e.killMasterAndWaitFailover(ctx, t, 0)
	requireSuccessRecord(t, rec, e.addr(0), e.addr(1), "automatic")
	if s, _ := rec.step("repoint"); s.Outcome != "ok" || !strings.Contains(s.Detail, e.addr(2)) {
		t.Fatalf("repoint %s: %s", s.Outcome, s.Detail)
	}
	// requireFailedOver checks that the leveled replica follows the new
	// master and holds every acknowledged write, including those it
	// lacked when the master died.
	e.requireFailedOver(ctx, t, load, 1, 2)
	if u := e.slaveStatusColumn(ctx, t, 2, "Using_Gtid"); u != "No" {
		t.Fatalf("leveled replica left with Using_Gtid=%s, want file/position (No)", u)
	}
}

// startFilePositionEnv starts a semi-sync sandbox of a master and two
// replicas in file/position replication, and controllers that manage it as
// such (replication_mode: file added to opts).
func startFilePositionEnv(ctx context.Context, t *testing.T, opts foOptions) *foEnv {
	t.Helper()
	sb := sandbox.New(t, sandbox.Options{Replicas: 2, GTID: false, SemiSync: true})
	opts.ClusterYAML = append(opts.ClusterYAML, "replication_mode: file")
	return startFailoverEnvOn(ctx, t, sb, opts)
}

// loadWithReplicaBehind starts a following write load and stops replica
// i's IO thread until ten more writes are acknowledged: i is behind.
func (e *foEnv) loadWithReplicaBehind(ctx context.Context, t *testing.T, i int) *harness.WriteLoad {
	t.Helper()
	load := e.startFollowingLoad(ctx, t)
	e.stopReplicaThread(ctx, t, i, "IO_THREAD")
	waitAckedAfter(ctx, t, load, len(load.Snapshot().Acked)+10)
	return load
}

// gtidVar reads a global GTID position variable of instance i.
func (e *foEnv) gtidVar(ctx context.Context, i int, name string) (topology.MariaDBPos, error) {
	db, err := e.sb.AdminDB(i)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var v string
	if err := db.QueryRowContext(ctx, "SELECT @@GLOBAL."+name).Scan(&v); err != nil {
		return nil, err
	}
	return topology.ParseMariaDBPos(v)
}

// TestFailover_FilePositionLeaderKilledInSalvage: with file/position
// replication the salvage applies the dead master's binlog onto every
// replica, through a client session: the transactions reach the behind
// replica's binlog but not its gtid_slave_pos. The leader dies right after
// that apply, before the salvage is journalled. Its successor must not
// salvage again (nothing tells what was applied) and must level the behind
// replica without replaying what the salvage gave it: the replica ends
// replicating from the new master with every acknowledged write, its SQL
// thread running (a replay would stop it on a duplicate key).
func TestFailover_FilePositionLeaderKilledInSalvage(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), foTimeout)
	defer cancel()
	e := startFilePositionEnv(ctx, t, foOptions{Env: []string{"QUORUMHA_TEST_SALVAGE_PAUSE=3s"}})
	load := e.loadWithReplicaBehind(ctx, t, 2)
	before := e.lastRecordID(ctx, t)
	leader, _ := e.leaderAndFollower(ctx, t)
	if err := e.sb.Kill(0); err != nil {
		t.Fatal(err)
	}

	// The salvage has applied onto instance 2 once its binlog reaches
	// instance 1's (which received every write, semi-sync) past its own
	// slave position. The leader then pauses 3 s before journalling.
	err := harness.Poll(ctx, 20*time.Millisecond, func() error {
		slave, err := e.gtidVar(ctx, 2, "gtid_slave_pos")
		if err != nil {
			return err
		}
		logged, err := e.gtidVar(ctx, 2, "gtid_binlog_pos")
		if err != nil {
			return err
		}
		full, err := e.gtidVar(ctx, 1, "gtid_binlog_pos")
		if err != nil {
			return err
		}
		s, _ := slave.Domain(0)
		l, _ := logged.Domain(0)
		f, _ := full.Domain(0)
		if l.Seq <= s.Seq || l != f {
			return fmt.Errorf("instance 2: gtid_slave_pos %s, gtid_binlog_pos %s; instance 1 has %s", slave, logged, full)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Asked of the leader: it committed the salvage's begin before acting,
	// while a follower may learn of that commit a heartbeat later.
	recs, err := foHistory(ctx, leader)
	if err != nil {
		t.Fatal(err)
	}
	open := failoversAfter(recs, before)
	if len(open) != 1 || !open[0].open() {
		t.Fatalf("no open failover: %d records", len(open))
	}
	if s, begun := open[0].step("salvage"); !begun || s.Outcome != "running" || s.Leader != leader.ID {
		t.Fatalf("want the salvage running on leader %s: %s", leader.ID, open[0].summary())
	}
	e.g.Kill(leader)
	t.Logf("killed leader %s after the salvage applied onto %s: %s", leader.ID, e.addr(2), open[0].summary())

	rec := e.waitFailoverClosed(ctx, t, e.g.Running(), before)
	t.Logf("%s", rec.summary())
	requireSuccessRecord(t, rec, e.addr(0), e.addr(1), "automatic")
	if s, _ := rec.step("salvage"); s.Leader == leader.ID || !strings.Contains(s.Detail, "interrupted") {
		t.Fatalf("the successor's salvage: %s by %s: %s", s.Outcome, s.Leader, s.Detail)
	}
	if s, _ := rec.step("repoint"); s.Outcome != "ok" || !strings.Contains(s.Detail, e.addr(2)+" (leveled by GTID") {
		t.Fatalf("repoint %s: %s", s.Outcome, s.Detail)
	}
	e.requireFailedOver(ctx, t, load, 1, 2)
	if u := e.slaveStatusColumn(ctx, t, 2, "Using_Gtid"); u != "No" {
		t.Fatalf("leveled replica left with Using_Gtid=%s, want file/position (No)", u)
	}
}
