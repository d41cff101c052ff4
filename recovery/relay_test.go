package recovery

import (
	"context"
	"strings"
	"testing"

	"github.com/quorumha/quorumha/fsm"
)

// candidateReason is the journalled reason of addr.
func candidateReason(r fsm.Record, addr string) string {
	for _, c := range r.Candidates {
		if c.Address == addr {
			return c.Reason
		}
	}
	return ""
}

// countOps counts the fake cluster's operations that are exactly op on addr.
func countOps(f *fakeCluster, addr, op string) int {
	n := 0
	for _, o := range f.opsSnapshot() {
		if o == addr+" "+op {
			n++
		}
	}
	return n
}

// The candidate_master (check_repl_delay off, MHA's recipe) received up to
// 20 but applied 10, and its applier does not finish within wait_relay's
// apply_timeout. It ranks first on what it received; catching it up from rB
// (which applied 12) or resetting it would purge 13-20, acknowledged under
// semi-sync. It must apply all of it before anything purges its relay log.
func TestExecutor_ChosenAppliesItsRelayLogFirst(t *testing.T) {
	e := newExecEnv(t)
	e.cc.Instances[1].CheckReplDelay = false
	e.f.set(rA, func(n *fakeNode) { n.seq, n.recv, n.sql, n.slowWaits = 10, 20, false, 1 })
	e.f.set(rB, func(n *fakeNode) { n.seq, n.recv = 12, 12 })
	id := e.open(t, "")
	res, err := e.executor("c1").Execute(context.Background(), e.cc, id)
	if err != nil || res != fsm.ResultSuccess {
		t.Fatalf("Execute = %q, %v; %+v", res, err, e.record(t, id))
	}
	r := e.record(t, id)
	if r.NewMaster != rA {
		t.Fatalf("new master %s, want %s; candidates %+v", r.NewMaster, rA, r.Candidates)
	}
	if a := e.f.node(rA); a.seq != 20 {
		t.Fatalf("new master at %d, want 20: received transactions were purged; steps %+v", a.seq, r.Steps)
	}
	if b := e.f.node(rB); b.master != rA || b.seq != 20 {
		t.Fatalf("other replica: master %q at %d, want %s at 20", b.master, b.seq, rA)
	}
}

// A chosen replica that never finishes applying its relay log is not
// promoted: the choice falls on another, and the record says why.
func TestExecutor_ReplicaThatCannotApplyIsNotChosen(t *testing.T) {
	e := newExecEnv(t)
	e.cc.Instances[1].CheckReplDelay = false
	e.f.set(rA, func(n *fakeNode) { n.seq, n.recv, n.sql, n.slowWaits = 10, 20, false, 1000 })
	e.f.set(rB, func(n *fakeNode) { n.seq, n.recv = 12, 12 })
	id := e.open(t, "")
	res, err := e.executor("c1").Execute(context.Background(), e.cc, id)
	if err != nil || res != fsm.ResultSuccess {
		t.Fatalf("Execute = %q, %v; %+v", res, err, e.record(t, id))
	}
	r := e.record(t, id)
	if r.NewMaster != rB {
		t.Fatalf("new master %s, want %s (rA cannot apply its relay log)", r.NewMaster, rB)
	}
	if why := candidateReason(r, rA); !strings.Contains(why, "relay log not applied") || !strings.Contains(why, "received 0-1-20") {
		t.Fatalf("rA's reason %q does not say it could not apply what it received", why)
	}
}

// A journalled choice that has a backlog when catch_up runs (a resumed
// record) applies it before CHANGE MASTER, or the failover stops with
// nothing promoted.
func TestExecutor_CatchUpRefusesATargetWithBacklog(t *testing.T) {
	e := newExecEnv(t)
	id := e.open(t, "")
	e.g.limit = 4 // stop before catch_up: select journalled rA
	if _, err := e.executor("c1").Execute(context.Background(), e.cc, id); err == nil {
		t.Fatal("first leader did not stop")
	}
	// Since then rA received more that it cannot apply.
	e.f.set(rA, func(n *fakeNode) { n.recv, n.sql, n.slowWaits = 15, false, 1000 })
	e.g.mu.Lock()
	e.g.limit, e.g.verifies = -1, 0
	e.g.mu.Unlock()
	res, err := e.executor("c2").Execute(context.Background(), e.cc, id)
	if err != nil || res != fsm.ResultFailed {
		t.Fatalf("resume = %q, %v; want failed", res, err)
	}
	r := e.record(t, id)
	if s, _ := stepNamed(r, StepCatchUp); s.Outcome != fsm.OutcomeFailed || !strings.Contains(s.Detail, "relay log not applied") {
		t.Fatalf("catch_up %+v", s)
	}
	if w := e.f.writable(); len(w) != 0 {
		t.Fatalf("writable %v after a refused catch-up", w)
	}
	if a := e.f.node(rA); a.recv != 15 {
		t.Fatalf("rA's relay log purged (received %d)", a.recv)
	}
}

// A MASTER_DELAY replica and a no_master replica behind the others are not
// waited for: the choice needs neither. The delayed one is refused with its
// delay named and repointed afterwards.
func TestExecutor_WaitRelaySkipsDelayedAndBehindNoMaster(t *testing.T) {
	const rC, rD = "10.0.0.4:3306", "10.0.0.5:3306"
	e := newExecEnv(t)
	// rC received everything but holds it back for an hour; rD is
	// no_master and received less than rB.
	e.f.add(rC, &fakeNode{up: true, readOnly: true, seq: 5, recv: 12, master: mOld, io: true, sql: true, slowWaits: 1000, delay: 3600})
	e.f.add(rD, &fakeNode{up: true, readOnly: true, seq: 6, recv: 9, master: mOld, io: true, sql: true, slowWaits: 1000})
	e.cc.Instances = append(e.cc.Instances, ClusterInstance{Address: rC}, ClusterInstance{Address: rD, NoMaster: true})
	id := e.open(t, "")
	res, err := e.executor("c1").Execute(context.Background(), e.cc, id)
	if err != nil || res != fsm.ResultSuccess {
		t.Fatalf("Execute = %q, %v; %+v", res, err, e.record(t, id))
	}
	r := e.record(t, id)
	for _, a := range []string{rC, rD} {
		if n := countOps(e.f, a, "wait relay"); n != 0 {
			t.Fatalf("%s waited for %d times; want none", a, n)
		}
	}
	if n := countOps(e.f, rB, "wait relay"); n == 0 {
		t.Fatalf("rB (most advanced) not waited for")
	}
	s, _ := stepNamed(r, StepWaitRelay)
	if s.Outcome != fsm.OutcomeOK || !strings.Contains(s.Detail, rC+" (MASTER_DELAY 1h0m0s)") || !strings.Contains(s.Detail, rD+" (no_master") {
		t.Fatalf("wait_relay %+v", s)
	}
	if why := candidateReason(r, rC); !strings.Contains(why, "MASTER_DELAY") {
		t.Fatalf("delayed replica's reason %q", why)
	}
	if r.NewMaster != rA {
		t.Fatalf("new master %s", r.NewMaster)
	}
	for _, a := range []string{rC, rD} {
		if n := e.f.node(a); n.master != rA || n.delay != 3600 && a == rC {
			t.Fatalf("%s after the failover: master %q delay %d", a, n.master, n.delay)
		}
	}
}

// fileEnv is testCluster with file/position replication.
func fileEnv(t *testing.T) *execEnv {
	e := newExecEnv(t)
	e.cc.ReplicationMode = "file"
	for _, a := range []string{rA, rB} {
		e.f.set(a, func(n *fakeNode) { n.file = true })
	}
	return e
}

// File/position replication: a replica that applied a different amount of
// the old master's binlog than the new master is not pointed at the new
// master's binlog coordinate (that would skip or repeat transactions); the
// repoint step says so and ends with a warning.
func TestExecutor_FilePositionRepointRefusesAReplicaNotLevel(t *testing.T) {
	e := fileEnv(t)
	id := e.open(t, "")
	res, err := e.executor("c1").Execute(context.Background(), e.cc, id)
	if err != nil || res != fsm.ResultSuccess {
		t.Fatalf("Execute = %q, %v; %+v", res, err, e.record(t, id))
	}
	r := e.record(t, id)
	s, _ := stepNamed(r, StepRepoint)
	if s.Outcome != fsm.OutcomeWarning || !strings.Contains(s.Detail, rB) || !strings.Contains(s.Detail, "not level") ||
		!strings.Contains(s.Detail, "bin.000001:1204") || !strings.Contains(s.Detail, "bin.000001:1004") {
		t.Fatalf("repoint %+v", s)
	}
	if b := e.f.node(rB); b.master != mOld {
		t.Fatalf("rB pointed at %s although it is not level with it", b.master)
	}
}

func TestExecutor_FilePositionRepointsALevelReplica(t *testing.T) {
	e := fileEnv(t)
	e.f.set(rB, func(n *fakeNode) { n.seq, n.recv = 10, 10 })
	id := e.open(t, "")
	res, err := e.executor("c1").Execute(context.Background(), e.cc, id)
	if err != nil || res != fsm.ResultSuccess {
		t.Fatalf("Execute = %q, %v; %+v", res, err, e.record(t, id))
	}
	r := e.record(t, id)
	if s, _ := stepNamed(r, StepRepoint); s.Outcome != fsm.OutcomeOK {
		t.Fatalf("repoint %+v", s)
	}
	if b := e.f.node(rB); b.master != rA {
		t.Fatalf("level rB replicates from %q", b.master)
	}
}

// File/position replication on MariaDB: a replica behind the new master is
// leveled through GTIDs (MariaDB keeps gtid_slave_pos in every mode), then
// pointed at its own applied coordinate in the new master's binlog.
func TestExecutor_FilePositionLevelsABehindReplicaThroughGTID(t *testing.T) {
	e := fileEnv(t)
	e.f.set(rB, func(n *fakeNode) { n.seq, n.recv = 7, 7 })
	id := e.open(t, "")
	res, err := e.executor("c1").Execute(context.Background(), e.cc, id)
	if err != nil || res != fsm.ResultSuccess {
		t.Fatalf("Execute = %q, %v; %+v", res, err, e.record(t, id))
	}
	r := e.record(t, id)
	if s, _ := stepNamed(r, StepRepoint); s.Outcome != fsm.OutcomeOK {
		t.Fatalf("repoint %+v", s)
	}
	if b := e.f.node(rB); b.master != rA || b.seq != 10 || !b.io || !b.sql {
		t.Fatalf("rB: master %q at %d io %t sql %t; want following %s at 10", b.master, b.seq, b.io, b.sql, rA)
	}
	var sawGTID, sawFile bool
	for _, op := range e.f.opsSnapshot() {
		if op == rB+" change master "+rA {
			if !sawGTID {
				sawGTID = true
			} else {
				sawFile = true
			}
		}
	}
	if !sawGTID || !sawFile {
		t.Fatalf("rB not leveled by GTID then set to a file position: %v", e.f.opsSnapshot())
	}
}
