package e2e

import (
	"context"
	"strings"
	"testing"
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
