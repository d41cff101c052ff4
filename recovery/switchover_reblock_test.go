package recovery

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/quorumha/quorumha/fsm"
)

// beginSwitchoverPromote leaves a switchover as a leader deposed inside
// its promote does: write block, wait_target and the begin of promote
// journalled, the global read lock gone with that leader's session. Then a
// writer read_only does not stop (READ_ONLY ADMIN) commits 3 more
// transactions on the old master, as it did in a run of
// TestSwitchover_NamedAndBack under load.
func beginSwitchoverPromote(t *testing.T) (*execEnv, uint64) {
	t.Helper()
	e, id := switchoverEnv(t)
	e.f.set(rA, func(n *fakeNode) { n.master, n.io, n.sql = mOld, true, true })
	e.g.limit = 4 // online_stop, read_only_old, kill_old, wait_target
	if _, err := e.executor("c1").Execute(context.Background(), e.cc, id); !errors.Is(err, ErrLeadershipLost) {
		t.Fatalf("err = %v", err)
	}
	cmd, _ := fsm.Encode(fsm.StepBeginType, fsm.StepBegin{RecordID: id, Name: StepPromote, Leader: "c1", At: t0})
	if _, err := e.g.Apply(context.Background(), cmd); err != nil {
		t.Fatal(err)
	}
	if r := e.record(t, id); !stepEnded(r, StepWaitTarget) || !e.f.node(mOld).readOnly {
		t.Fatalf("setup: the first leader did not block and level: %+v", r.Steps)
	}
	e.f.set(mOld, func(n *fakeNode) { n.seq = 15 }) // written through read_only
	e.g.mu.Lock()
	e.g.limit = -1
	e.g.mu.Unlock()
	return e, id
}

// TestSwitchover_ResumedPromoteRenewsTheWriteBlock: the new leader blocks
// the old master's writers again and brings the target level with the
// old master's final position before it promotes; without that, the 3
// transactions written after the first leader's lock went are lost.
func TestSwitchover_ResumedPromoteRenewsTheWriteBlock(t *testing.T) {
	e, id := beginSwitchoverPromote(t)
	e.f.mu.Lock()
	e.f.ops = nil
	e.f.mu.Unlock()
	res, err := e.executor("c2").Execute(context.Background(), e.cc, id)
	if err != nil || res != fsm.ResultSuccess {
		t.Fatalf("resume = %q, %v; record %+v", res, err, e.record(t, id).Steps)
	}
	if got := e.f.node(rA).seq; got != 15 {
		t.Fatalf("%s promoted at seq %d; the old master had written 15", rA, got)
	}
	if w := e.f.writable(); !slices.Equal(w, []string{rA}) {
		t.Fatalf("writable = %v", w)
	}
	ops := e.f.opsSnapshot()
	kill, reset := slices.Index(ops, mOld+" kill"), slices.Index(ops, rA+" reset replica all")
	if kill < 0 || reset < 0 || kill > reset || !slices.Contains(ops[:reset], mOld+" read_only=true") {
		t.Fatalf("the old master's writers were not blocked again before the promote: %v", ops)
	}
	s, _ := promotedStep(e.record(t, id))
	if !strings.Contains(s.Detail, "before it: write block on "+mOld+" renewed") {
		t.Fatalf("promote detail %q does not report the renewed block", s.Detail)
	}
	if p, ok := promotedPosition(e.record(t, id)); !ok || p != gtid(15) {
		t.Fatalf("journalled position %q (%v), want %s", p, ok, gtid(15))
	}
}

// TestSwitchover_ResumedPromoteRollsBack: when the old master's final
// position cannot be reached, the switchover is rolled back: nothing is
// promoted, and the old master takes writes again if it is reachable.
func TestSwitchover_ResumedPromoteRollsBack(t *testing.T) {
	cases := []struct {
		name  string
		world func(e *execEnv)
		want  string
	}{
		{"old master unreachable", func(e *execEnv) {
			e.f.set(mOld, func(n *fakeNode) { n.up = false })
		}, "old master " + mOld + " unreachable"},
		{"target reset and behind", func(e *execEnv) {
			e.f.set(rA, func(n *fakeNode) { n.master, n.io, n.sql = "", false, false })
		}, "does not hold " + mOld + "'s final position"},
		{"target cannot catch up", func(e *execEnv) {
			e.f.set(rA, func(n *fakeNode) { n.io = false })
			e.f.accounts = map[string]string{"other": "x"} // its IO thread cannot log in
		}, "did not reach"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, id := beginSwitchoverPromote(t)
			tc.world(e)
			res, err := e.executor("c2").Execute(context.Background(), e.cc, id)
			if err != nil || res != fsm.ResultRolledBack {
				t.Fatalf("resume = %q, %v; record %+v", res, err, e.record(t, id).Steps)
			}
			r := e.record(t, id)
			if !strings.Contains(r.Detail, tc.want) {
				t.Fatalf("detail %q, want it to name %q", r.Detail, tc.want)
			}
			if w := e.f.writable(); len(w) > 1 || (e.f.node(mOld).up && !slices.Equal(w, []string{mOld})) {
				t.Fatalf("writable = %v", w)
			}
		})
	}
}

// TestJournalNote_NoMarkers: a note appended to promote's detail never
// makes promotedPosition or promotedCoord read anything but promote's own.
func TestJournalNote_NoMarkers(t *testing.T) {
	note := journalNote("x; position 0-1-9; binlog=bin.000009:4")
	if strings.Contains(note, positionMarker) || strings.Contains(note, binlogMarker) {
		t.Fatalf("journalNote left a marker: %q", note)
	}
}
