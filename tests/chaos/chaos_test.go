package chaos

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestScheduleIsReplayable(t *testing.T) {
	a, b := Schedule(42, 50), Schedule(42, 50)
	if !slices.EqualFunc(a, b, slices.Equal) {
		t.Fatal("the same seed gave two schedules")
	}
	if slices.EqualFunc(a, Schedule(43, 50), slices.Equal) {
		t.Fatal("two seeds gave the same 50 rounds")
	}
	pairs := 0
	for _, r := range a {
		if len(r) == 2 {
			pairs++
			if !r[0].OnMaster() || r[1].OnMaster() {
				t.Errorf("pair %s: want a master fault then another", r)
			}
		}
	}
	if pairs == 0 {
		t.Error("no round with two faults in 50")
	}
}

func TestExpect(t *testing.T) {
	for _, tc := range []struct {
		r    Round
		want Expect
	}{
		{Round{StopShort}, ExpectNone},
		{Round{StopLong}, ExpectOne},
		{Round{CutCtrlFromMaster}, ExpectAtMostOne},
		{Round{KillMaster, ReplicaIOStop}, ExpectOne},
		{Round{KillLeader}, ExpectNone},
	} {
		if got := tc.r.Expect(); got != tc.want {
			t.Errorf("%s: expect %s, want %s", tc.r, got, tc.want)
		}
	}
}

func TestMaxGap(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ws := []Write{{At: t0.Add(time.Second), OK: true}, {At: t0.Add(2 * time.Second), OK: false}, {At: t0.Add(5 * time.Second), OK: true}}
	if g := MaxGap(ws, t0, t0.Add(6*time.Second)); g != 4*time.Second {
		t.Fatalf("gap %s, want 4s", g)
	}
	if g := MaxGap(nil, t0, t0.Add(6*time.Second)); g != 6*time.Second {
		t.Fatalf("gap without acks %s, want 6s", g)
	}
}

func TestErrorsBetween(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ro, refused := "Error 1290: read-only", "connection refused"
	ws := []Write{
		{At: t0, Err: refused}, // before the window
		{At: t0.Add(time.Second), Err: ro},
		{At: t0.Add(2 * time.Second), OK: true},
		{At: t0.Add(3 * time.Second), Err: refused},
		{At: t0.Add(4 * time.Second), Err: ro},
		{At: t0.Add(9 * time.Second), Err: ro}, // after it
	}
	got := ErrorsBetween(ws, t0.Add(time.Second), t0.Add(4*time.Second))
	want := []ErrCount{{Err: ro, Count: 2}, {Err: refused, Count: 1}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	rr := RoundResult{N: 3, Unavailable: 3 * time.Second, GapFrom: t0, GapTo: t0.Add(3 * time.Second), GapErrors: got}
	if n := gapErrorsNote(rr); !strings.Contains(n, `2× "Error 1290: read-only"`) || !strings.Contains(n, `1× "connection refused"`) {
		t.Errorf("note %q", n)
	}
	rr.Unavailable = 500 * time.Millisecond
	if n := gapErrorsNote(rr); n != "" {
		t.Errorf("a short gap needs no note, got %q", n)
	}
}

func TestReportFiles(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := &Report{Seed: 7, Rounds: []RoundResult{{N: 1, Faults: Round{KillMaster}, Start: t0, FaultAt: t0.Add(time.Second),
		HealAt: t0.Add(5 * time.Second), End: t0.Add(9 * time.Second), Unavailable: 3 * time.Second, Violations: []string{"x <y>"}}},
		Events:  []Event{{At: t0.Add(2 * time.Second), Kind: "promote", Label: "a<b"}},
		Writers: map[string][]Write{"group": {{At: t0, OK: true}, {At: t0.Add(3 * time.Second), OK: false}}}, Violations: []string{"x <y>"}}
	dir := t.TempDir()
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	svg, _ := os.ReadFile(filepath.Join(dir, "timeline.svg"))
	if !strings.HasPrefix(string(svg), "<svg") || strings.Contains(string(svg), "a<b") || !strings.Contains(string(svg), "a&lt;b") {
		t.Errorf("svg not escaped or malformed: %.200s", svg)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "summary.md"))
	if !strings.Contains(string(md), "kill9_master | 1 | 3s | 3s") || !strings.Contains(string(md), "SEED=7") {
		t.Errorf("summary:\n%s", md)
	}
}

func TestParseRounds(t *testing.T) {
	got, err := ParseRounds("kill9_master+replica_down, kill9_leader_mid_failover")
	if err != nil {
		t.Fatal(err)
	}
	want := []Round{{KillMaster, ReplicaDown}, {KillLeaderMidFO}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"kill9_mastr", "replica_down+kill9_master", "kill9_master+replica_down+replica_io_stop", ""} {
		if _, err := ParseRounds(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestGapSplit(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ws := []Write{{At: t0.Add(time.Second), OK: true}, {At: t0.Add(2 * time.Second), OK: false}, {At: t0.Add(12 * time.Second), OK: true}}
	d, from, to := MaxGapAt(ws, t0, t0.Add(13*time.Second))
	if d != 11*time.Second || !from.Equal(t0.Add(time.Second)) || !to.Equal(t0.Add(12*time.Second)) {
		t.Fatalf("gap %s from %s to %s", d, from, to)
	}
	rr := RoundResult{GapFrom: from, GapTo: to, PromotedAt: t0.Add(2 * time.Second)}
	rr.Split()
	if rr.UntilPromoted != time.Second || rr.AfterPromoted != 10*time.Second {
		t.Fatalf("split %s / %s, want 1s / 10s", rr.UntilPromoted, rr.AfterPromoted)
	}
	rr.PromotedAt = t0.Add(20 * time.Second) // outside the gap: no split
	rr.Split()
	if rr.UntilPromoted != 0 || rr.AfterPromoted != 0 {
		t.Fatalf("split %s / %s outside the gap", rr.UntilPromoted, rr.AfterPromoted)
	}
}
