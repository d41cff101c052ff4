package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestChaosRecordProof is the negative control of the chaos runner's
// record checker: a promotion without evidence or without a proven fence
// is reported; open, refused and proven records are not.
func TestChaosRecordProof(t *testing.T) {
	proven := &foFence{State: "proven", Proof: "agent"}
	ev := json.RawMessage(`{"votes":3}`)
	for _, tc := range []struct {
		name string
		r    foRecord
		want []string
	}{
		{"proven with evidence", foRecord{ID: 1, Result: "success", Evidence: ev, Fence: proven}, nil},
		{"open", foRecord{ID: 2}, nil},
		{"refused", foRecord{ID: 3, Result: "refused"}, nil},
		{"no evidence", foRecord{ID: 4, Result: "success", Evidence: json.RawMessage("null"), Fence: proven}, []string{"without evidence"}},
		{"no fence", foRecord{ID: 5, Result: "success", Evidence: ev}, []string{"without a fence proof"}},
		{"unproven fence", foRecord{ID: 6, Result: "success", Evidence: ev, Fence: &foFence{State: "awaiting"}}, []string{"without a fence proof"}},
	} {
		got := checkRecordProof(tc.r)
		if len(got) != len(tc.want) {
			t.Errorf("%s: got %q, want %d findings", tc.name, got, len(tc.want))
			continue
		}
		for i, w := range tc.want {
			if !strings.Contains(got[i], w) {
				t.Errorf("%s: %q does not say %q", tc.name, got[i], w)
			}
		}
	}
	a := historyKey([]foRecord{{ID: 1, Kind: "failover", Result: "success"}})
	b := historyKey([]foRecord{{ID: 1, Kind: "failover", Result: ""}})
	if a == b {
		t.Error("histories differing in a result compare equal")
	}
}

// TestChaosMidFailoverDescribe: the report says a leader kill landed in the
// middle of a failover only when the record was open at the kill, names the
// step, and who resumed it.
func TestChaosMidFailoverDescribe(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	rec := foRecord{ID: 7, Result: "success", Closed: at(3000), NewMaster: "db2", Steps: []foStep{
		{Name: "fence", Leader: "c2", Start: at(0), End: at(1500)},
		{Name: "fence", Leader: "c1", Start: at(2000), End: at(2100)},
		{Name: "promote", Leader: "c1", Start: at(2100), End: at(2500)},
	}}
	open := foRecord{ID: 7, Steps: rec.Steps[:1]}
	for _, tc := range []struct {
		name    string
		k       midFailoverKill
		rec     *foRecord
		landed  bool
		contain string
	}{
		{"in a step", midFailoverKill{killed: "c2", at: at(1000), observed: open}, &rec, true, "in step fence (begun by c2 1s before the kill); resumed by c1"},
		{"between steps", midFailoverKill{killed: "c2", at: at(1700), observed: open}, &rec, true, "between steps, after fence"},
		{"after close", midFailoverKill{killed: "c2", at: at(3100), observed: open}, &rec, false, "not mid-failover"},
		{"seen closed", midFailoverKill{killed: "c2", at: at(1000), observed: rec}, &rec, false, "not mid-failover"},
		{"no record", midFailoverKill{killed: "c2", at: at(1000), observed: open}, nil, false, "not in the agreed history"},
	} {
		d, landed := tc.k.describe(tc.rec)
		if landed != tc.landed || !strings.Contains(d, tc.contain) {
			t.Errorf("%s: %q landed=%v, want %v and %q", tc.name, d, landed, tc.landed, tc.contain)
		}
	}
}
