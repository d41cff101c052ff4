package recovery

import (
	"errors"
	"testing"

	"github.com/quorumha/quorumha/topology"
)

func filters(f topology.ReplicationFilters) func(*CandidateInput) {
	return func(c *CandidateInput) { c.Filters = f }
}

func TestSelectNewMaster_ReplicationFilters(t *testing.T) {
	ignoreLog := topology.ReplicationFilters{IgnoreDB: []string{"log"}}
	doApp := topology.ReplicationFilters{DoDB: []string{"app"}}
	tests := []struct {
		name    string
		cands   []CandidateInput
		wantErr error
		chosen  string
		refused map[string]string // address -> exact reason
	}{
		{
			name: "all alike (order of entries ignored)",
			cands: []CandidateInput{
				rep("r1", 1, "0-1-100", candidate, filters(topology.ReplicationFilters{IgnoreDB: []string{"a", "b"}})),
				rep("r2", 2, "0-1-100", filters(topology.ReplicationFilters{IgnoreDB: []string{"b", "a"}})),
			},
			chosen: "r1",
		},
		{
			name: "the odd one out is refused, even candidate_master and most advanced",
			cands: []CandidateInput{
				rep("r1", 1, "0-1-100", candidate, filters(ignoreLog)),
				rep("r2", 2, "0-1-100"),
				rep("r3", 3, "0-1-100"),
			},
			chosen: "r2",
			refused: map[string]string{
				"r1": "replication filters {replicate_ignore_db=log} differ from {none} on r2, r3",
			},
		},
		{
			name: "a tie goes to the replicas without filters",
			cands: []CandidateInput{
				rep("r1", 1, "0-1-100", candidate, filters(doApp)),
				rep("r2", 2, "0-1-100"),
			},
			chosen: "r2",
			refused: map[string]string{
				"r1": "replication filters {replicate_do_db=app} differ from {none} on r2",
			},
		},
		{
			name: "a majority with filters is the reference",
			cands: []CandidateInput{
				rep("r1", 1, "0-1-100", filters(doApp)),
				rep("r2", 2, "0-1-100", filters(doApp)),
				rep("r3", 3, "0-1-100", candidate),
			},
			chosen: "r1",
			refused: map[string]string{
				"r3": "replication filters {none} differ from {replicate_do_db=app} on r1, r2",
			},
		},
		{
			name: "unreachable replicas are not compared",
			cands: []CandidateInput{
				rep("r1", 1, "0-1-100", candidate, filters(doApp)),
				rep("r2", 2, "0-1-100", unreachable),
			},
			chosen:  "r1",
			refused: map[string]string{"r2": "unreachable"},
		},
		{
			name: "a tie between filtered groups is broken by one without filters",
			cands: []CandidateInput{
				rep("r1", 1, "0-1-100", filters(doApp)),
				rep("r2", 2, "0-1-100", filters(ignoreLog)),
				rep("r3", 3, "0-1-100"),
			},
			chosen: "r3",
			refused: map[string]string{
				"r2": "replication filters {replicate_ignore_db=log} differ from {none} on r3",
			},
		},
		{
			name: "no agreement at all: nobody eligible",
			cands: []CandidateInput{
				rep("r1", 1, "0-1-100", filters(doApp)),
				rep("r2", 2, "0-1-100", filters(ignoreLog)),
			},
			wantErr: ErrNoCandidate,
			refused: map[string]string{
				"r1": "replication filters differ with no majority: {replicate_do_db=app} on r1 vs {replicate_ignore_db=log} on r2",
				"r2": "replication filters differ with no majority: {replicate_do_db=app} on r1 vs {replicate_ignore_db=log} on r2",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := SelectNewMaster(tt.cands, SelectRules{})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if sel.Chosen != tt.chosen {
				t.Fatalf("chosen %q, want %q: %+v", sel.Chosen, tt.chosen, sel.Considered)
			}
			for _, c := range sel.Considered {
				if want, ok := tt.refused[c.Address]; ok && (c.Eligible || c.Reason != want) {
					t.Fatalf("%s: eligible=%t reason %q, want refused: %q", c.Address, c.Eligible, c.Reason, want)
				}
			}
		})
	}
}
