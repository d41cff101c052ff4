package e2e

import (
	"encoding/json"
	"strings"
	"testing"
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
