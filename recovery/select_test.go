package recovery

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/topology"
)

// rep returns a healthy replica at a MariaDB GTID position; opts adjust it.
func rep(addr string, order int, pos string, opts ...func(*CandidateInput)) CandidateInput {
	c := CandidateInput{
		Address: addr, ConfigOrder: order, Reachable: true, LogBin: true, LogSlaveUpdates: true,
		LagKnown: true, CheckReplDelay: true, PositionKnown: true,
		Position: topology.MariaDBGTIDPosition(topology.MustParseMariaDBPos(pos)),
	}
	for _, o := range opts {
		o(&c)
	}
	return c
}

func candidate(c *CandidateInput)   { c.CandidateMaster = true }
func noMaster(c *CandidateInput)    { c.NoMaster = true }
func unreachable(c *CandidateInput) { c.Reachable = false }
func noBinlog(c *CandidateInput)    { c.LogBin = false }
func noLSU(c *CandidateInput)       { c.LogSlaveUpdates = false }
func zone(z string) func(*CandidateInput) {
	return func(c *CandidateInput) { c.Zone = z }
}
func lag(d time.Duration) func(*CandidateInput) {
	return func(c *CandidateInput) { c.Lag = d }
}

func TestSelectNewMaster_Rules(t *testing.T) {
	tests := []struct {
		name      string
		cands     []CandidateInput
		rules     SelectRules
		wantErr   error
		chosen    string
		catchUp   string
		advanced  []string
		reasons   map[string]string // address -> exact reason
		ineligble []string          // addresses that must be refused
	}{
		{
			// MHA: "a latest replica that is candidate_master" comes first,
			// even after an earlier latest replica in config order.
			name: "mha tier 1: latest candidate_master",
			cands: []CandidateInput{
				rep("r1", 1, "0-1-100"),
				rep("r2", 2, "0-1-100", candidate),
				rep("r3", 3, "0-1-90", candidate),
			},
			chosen: "r2", advanced: []string{"r1", "r2"},
			reasons: map[string]string{
				"r1": "eligible but not candidate_master",
				"r2": "chosen: candidate_master and most advanced",
				"r3": "eligible but behind the most advanced",
			},
		},
		{
			// MHA: "any candidate_master in config order" beats a latest
			// replica that is not one; it is caught up from the latest first.
			name: "mha tier 2: candidate_master behind beats latest",
			cands: []CandidateInput{
				rep("r1", 1, "0-1-100"),
				rep("r2", 2, "0-1-80", candidate),
				rep("r3", 3, "0-1-90", candidate),
			},
			chosen: "r2", catchUp: "r1", advanced: []string{"r1"},
			reasons: map[string]string{
				"r1": "eligible but not candidate_master",
				"r2": "chosen: candidate_master, behind the most advanced (catch up from r1)",
				"r3": "eligible; r2 comes first in config order",
			},
		},
		{
			// MHA: "any latest replica" when no candidate_master is eligible.
			name: "mha tier 3: latest replica",
			cands: []CandidateInput{
				rep("r1", 1, "0-1-90"),
				rep("r2", 2, "0-1-100"),
				rep("r3", 3, "0-1-100"),
				rep("r4", 4, "0-1-100", candidate, unreachable),
			},
			chosen: "r2", advanced: []string{"r2", "r3"},
			reasons: map[string]string{
				"r1": "eligible but behind the most advanced",
				"r2": "chosen: most advanced; no candidate_master eligible",
				"r3": "eligible; r2 comes first in config order",
				"r4": "unreachable",
			},
			ineligble: []string{"r4"},
		},
		{
			// MHA: "any replica" last; the latest is no_master but still the
			// source to catch up from, so nothing it holds is lost.
			name: "mha tier 4: any replica, caught up from a no_master latest",
			cands: []CandidateInput{
				rep("r1", 1, "0-1-100", noMaster),
				rep("r2", 2, "0-1-80"),
				rep("r3", 3, "0-1-90"),
			},
			chosen: "r2", catchUp: "r1", advanced: []string{"r1"},
			reasons: map[string]string{
				"r1": "no_master set",
				"r2": "chosen: no candidate_master or most advanced replica eligible; behind (catch up from r1)",
				"r3": "eligible; r2 comes first in config order",
			},
			ineligble: []string{"r1"},
		},
		{
			name: "exclusions each give their reason",
			cands: []CandidateInput{
				rep("a", 1, "0-1-100", candidate, noBinlog),
				rep("b", 2, "0-1-100", candidate, noLSU),
				rep("c", 3, "0-1-100", candidate, func(c *CandidateInput) { c.Errant, c.ErrantDetail = true, "0-9-3" }),
				rep("d", 4, "0-1-100", candidate, lag(45*time.Second)),
				rep("e", 5, "0-1-100", candidate, func(c *CandidateInput) { c.SQLError = "Duplicate entry '1'" }),
				rep("f", 6, "0-1-100", candidate, func(c *CandidateInput) { c.PositionKnown = false }),
				rep("g", 7, "0-1-100", candidate, func(c *CandidateInput) { c.LagKnown = false }),
				rep("h", 8, "0-1-100", lag(time.Hour), func(c *CandidateInput) { c.CheckReplDelay = false }),
			},
			rules:  SelectRules{MaxLag: 30 * time.Second, NeedOthersFollow: true},
			chosen: "h", advanced: []string{"a", "b", "d", "e", "g", "h"},
			reasons: map[string]string{
				"a": "log_bin off",
				"b": "log_slave_updates off (other replicas must follow it)",
				"c": "errant GTIDs: 0-9-3",
				"d": "lags 45s > limit 30s",
				"e": "SQL thread error: Duplicate entry '1'",
				"f": "position unknown",
				"g": "lag unknown (limit 30s)",
				"h": "chosen: most advanced; no candidate_master eligible",
			},
			ineligble: []string{"a", "b", "c", "d", "e", "f", "g"},
		},
		{
			name: "log_slave_updates off is fine when nobody follows",
			cands: []CandidateInput{
				rep("r1", 1, "0-1-100", candidate, noLSU),
				rep("r2", 2, "0-1-100"),
			},
			chosen: "r1", advanced: []string{"r1", "r2"},
			reasons: map[string]string{
				"r1": "chosen: candidate_master and most advanced",
				"r2": "eligible but not candidate_master",
			},
		},
		{
			name: "several reasons are joined; no_master and unreachable",
			cands: []CandidateInput{
				rep("r1", 1, "0-1-100", noMaster, unreachable),
				rep("r2", 2, "0-1-100", noMaster, noBinlog, lag(time.Minute)),
				rep("r3", 3, "0-1-100"),
			},
			rules:  SelectRules{MaxLag: 30 * time.Second},
			chosen: "r3", advanced: []string{"r2", "r3"},
			reasons: map[string]string{
				"r1": "no_master set; unreachable",
				"r2": "no_master set; log_bin off; lags 1m0s > limit 30s",
			},
			ineligble: []string{"r1", "r2"},
		},
		{
			name: "diverged replica is refused",
			cands: []CandidateInput{
				rep("r1", 1, "0-1-100"),
				rep("r2", 2, "0-1-100"),
				rep("r3", 3, "0-7-100", candidate), // same seq, other server: split brain
				rep("r4", 4, "0-1-50"),
			},
			chosen: "r1", advanced: []string{"r1", "r2"},
			reasons: map[string]string{
				"r3": "position 0-7-100 diverged from the most advanced r1 (0-1-100)",
				"r4": "eligible but behind the most advanced",
			},
			ineligble: []string{"r3"},
		},
		{
			name: "diverged groups with equal support need an operator",
			cands: []CandidateInput{
				rep("r1", 1, "0-1-100"),
				rep("r2", 2, "0-7-100"),
			},
			wantErr: ErrDivergedPositions,
			reasons: map[string]string{
				"r1": "positions diverged with no single most advanced replica (r1 at 0-1-100 vs r2 at 0-7-100)",
			},
			ineligble: []string{"r1", "r2"},
		},
		{
			name: "operator target settles diverged groups",
			cands: []CandidateInput{
				rep("r1", 1, "0-1-100"),
				rep("r2", 2, "0-7-100"),
			},
			rules:  SelectRules{Target: "r2"},
			chosen: "r2", advanced: []string{"r2"},
			reasons: map[string]string{
				"r1": "position 0-1-100 diverged from the most advanced r2 (0-7-100)",
				"r2": "chosen: requested target, most advanced",
			},
			ineligble: []string{"r1"},
		},
		{
			name: "target behind is caught up; others told why not",
			cands: []CandidateInput{
				rep("r1", 1, "0-1-100", candidate),
				rep("r2", 2, "0-1-90"),
			},
			rules:  SelectRules{Target: "r2"},
			chosen: "r2", catchUp: "r1", advanced: []string{"r1"},
			reasons: map[string]string{
				"r1": "eligible; not the requested target r2",
				"r2": "chosen: requested target, behind the most advanced (catch up from r1)",
			},
		},
		{
			name: "ineligible target fails with its reason",
			cands: []CandidateInput{
				rep("r1", 1, "0-1-100"),
				rep("r2", 2, "0-1-100", noMaster),
			},
			rules:     SelectRules{Target: "r2"},
			wantErr:   ErrTargetIneligible,
			advanced:  []string{"r1", "r2"},
			ineligble: []string{"r2"},
			reasons: map[string]string{
				"r1": "eligible; not the requested target r2",
				"r2": "no_master set",
			},
		},
		{
			name:     "unknown target",
			cands:    []CandidateInput{rep("r1", 1, "0-1-100")},
			rules:    SelectRules{Target: "r9"},
			wantErr:  ErrTargetUnknown,
			advanced: []string{"r1"},
			reasons:  map[string]string{"r1": "eligible; not the requested target r9"},
		},
		{
			name: "nothing eligible",
			cands: []CandidateInput{
				rep("r1", 1, "0-1-100", unreachable),
				rep("r2", 2, "0-1-100", noMaster),
			},
			wantErr:   ErrNoCandidate,
			advanced:  []string{"r2"},
			reasons:   map[string]string{"r1": "unreachable", "r2": "no_master set"},
			ineligble: []string{"r1", "r2"},
		},
		{
			name:    "no replicas at all",
			wantErr: ErrNoCandidate,
		},
		{
			name: "zone preference breaks ties within a tier only",
			cands: []CandidateInput{
				rep("r1", 1, "0-1-100", zone("a")),
				rep("r2", 2, "0-1-100", zone("b")),
				rep("r3", 3, "0-1-100", zone("c")),
				rep("r4", 4, "0-1-90", zone("c"), candidate),
			},
			rules:  SelectRules{PreferZones: []string{"c", "b"}},
			chosen: "r4", catchUp: "r1", advanced: []string{"r1", "r2", "r3"},
		},
		{
			name: "zone preference within the latest tier",
			cands: []CandidateInput{
				rep("r1", 1, "0-1-100", zone("a")),
				rep("r2", 2, "0-1-100", zone("b")),
				rep("r3", 3, "0-1-100", zone("c")),
			},
			rules:  SelectRules{PreferZones: []string{"c", "b"}},
			chosen: "r3", advanced: []string{"r1", "r2", "r3"},
			reasons: map[string]string{
				"r1": "eligible; r3 is in a more preferred zone (c)",
				"r3": "chosen: most advanced; no candidate_master eligible; preferred zone c",
			},
		},
		{
			// Catching the candidate up needs a latest replica whose binlog
			// holds replicated events; without one it would lose them.
			name: "behind with no source to catch up from",
			cands: []CandidateInput{
				rep("r1", 1, "0-1-100", noLSU),
				rep("r2", 2, "0-1-90", candidate),
			},
			chosen: "r1", advanced: []string{"r1"},
			reasons: map[string]string{
				"r2": "behind the most advanced, and none of those has log_bin and log_slave_updates to catch it up from",
			},
			ineligble: []string{"r2"},
		},
		{
			name: "io thread error is quoted, not decisive",
			cands: []CandidateInput{
				rep("r1", 1, "0-1-100", candidate, func(c *CandidateInput) {
					c.IOError = "error reconnecting to master"
					c.ReplicationMode = "gtid"
				}),
			},
			chosen: "r1", advanced: []string{"r1"},
			reasons: map[string]string{
				"r1": "chosen: candidate_master and most advanced; replication gtid (IO thread error: error reconnecting to master)",
			},
		},
		{
			name: "duplicate address",
			cands: []CandidateInput{
				rep("r1", 1, "0-1-100"),
				rep("r1", 2, "0-1-100"),
			},
			wantErr: ErrDuplicateCandidate,
		},
		{
			name: "comparator error counts as diverged",
			cands: []CandidateInput{
				rep("r1", 1, "0-1-100"),
				rep("r2", 2, "0-1-90"),
				rep("r3", 3, "0-1-80", candidate),
			},
			rules: SelectRules{Compare: func(a, b topology.Position) (topology.Ordering, error) {
				if a.String() == "0-1-80" || b.String() == "0-1-80" {
					return 0, topology.ErrIncomparable
				}
				return topology.ComparePositions(a, b)
			}},
			chosen: "r1", advanced: []string{"r1"},
			reasons: map[string]string{
				"r3": "position not comparable with the most advanced r1: " + topology.ErrIncomparable.Error(),
			},
			ineligble: []string{"r3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := SelectNewMaster(tt.cands, tt.rules)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if sel.Chosen != tt.chosen || sel.CatchUpFrom != tt.catchUp {
				t.Errorf("chosen %q catch up from %q, want %q and %q", sel.Chosen, sel.CatchUpFrom, tt.chosen, tt.catchUp)
			}
			if !slices.Equal(sel.MostAdvanced, tt.advanced) {
				t.Errorf("most advanced %v, want %v", sel.MostAdvanced, tt.advanced)
			}
			if tt.wantErr == ErrDuplicateCandidate {
				return
			}
			if len(sel.Considered) != len(tt.cands) {
				t.Fatalf("considered %d replicas, want %d", len(sel.Considered), len(tt.cands))
			}
			for _, c := range sel.Considered {
				if c.Reason == "" {
					t.Errorf("%s has no reason", c.Address)
				}
				if want, ok := tt.reasons[c.Address]; ok && c.Reason != want {
					t.Errorf("%s reason\n got %q\nwant %q", c.Address, c.Reason, want)
				}
				if c.Chosen != (c.Address == tt.chosen) {
					t.Errorf("%s chosen = %v", c.Address, c.Chosen)
				}
				if wantRefused := slices.Contains(tt.ineligble, c.Address); c.Eligible == wantRefused {
					t.Errorf("%s eligible = %v, want %v", c.Address, c.Eligible, !wantRefused)
				}
			}
		})
	}
}

func TestSelectNewMaster_ErrorMessages(t *testing.T) {
	tests := []struct {
		name  string
		cands []CandidateInput
		rules SelectRules
		want  string
	}{
		{"every reason listed", []CandidateInput{
			rep("10.0.0.1:3306", 1, "0-1-5", unreachable),
			rep("10.0.0.2:3306", 2, "0-1-5", noBinlog),
		}, SelectRules{}, "no eligible replica to promote: 10.0.0.1:3306: unreachable; 10.0.0.2:3306: log_bin off"},
		{"target refused with its reason", []CandidateInput{
			rep("10.0.0.1:3306", 1, "0-1-5"),
			rep("10.0.0.2:3306", 2, "0-1-5", lag(time.Minute)),
		}, SelectRules{Target: "10.0.0.2:3306", MaxLag: time.Second},
			"requested target is not eligible: 10.0.0.2:3306: lags 1m0s > limit 1s"},
		{"diverged groups named", []CandidateInput{
			rep("10.0.0.1:3306", 1, "0-1-5"),
			rep("10.0.0.2:3306", 2, "0-2-5"),
		}, SelectRules{},
			"replica positions diverged: no single most advanced replica: 10.0.0.1:3306 at 0-1-5 vs 10.0.0.2:3306 at 0-2-5; use --to to choose"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SelectNewMaster(tt.cands, tt.rules)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("err = %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestSelectNewMaster_InputOrderDoesNotMatter(t *testing.T) {
	cands := []CandidateInput{
		rep("r1", 1, "0-1-100,1-2-5"),
		rep("r2", 2, "0-1-100,1-2-7", zone("b")),
		rep("r3", 3, "0-1-100,1-2-7", zone("a")),
		rep("r4", 4, "0-1-99,1-2-7", candidate),
		rep("r5", 5, "0-1-99,1-2-7", candidate),
	}
	rules := SelectRules{PreferZones: []string{"a"}}
	want, err := SelectNewMaster(cands, rules)
	if err != nil {
		t.Fatal(err)
	}
	if want.Chosen != "r4" || want.CatchUpFrom != "r2" {
		t.Fatalf("chosen %s from %s, want r4 from r2", want.Chosen, want.CatchUpFrom)
	}
	for rot := 1; rot < len(cands); rot++ {
		perm := append(slices.Clone(cands[rot:]), cands[:rot]...)
		slices.Reverse(perm[:2])
		got, err := SelectNewMaster(perm, rules)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("rotation %d: got %+v, want %+v", rot, got, want)
		}
	}
}

func TestSelectNewMaster_FilePositionsAndMySQLGTID(t *testing.T) {
	file := func(addr string, order int, coord string, opts ...func(*CandidateInput)) CandidateInput {
		c := rep(addr, order, "0-1-1", opts...)
		bc, err := topology.ParseBinlogCoord(coord)
		if err != nil {
			t.Fatal(err)
		}
		c.Position = topology.FilePosition(bc)
		return c
	}
	sel, err := SelectNewMaster([]CandidateInput{
		file("r1", 1, "mysql-bin.000009:900"),
		file("r2", 2, "mysql-bin.000010:4"),
		file("r3", 3, "mysql-bin.000010:4", candidate),
	}, SelectRules{})
	if err != nil || sel.Chosen != "r3" || !slices.Equal(sel.MostAdvanced, []string{"r2", "r3"}) {
		t.Fatalf("file/pos: chosen %q advanced %v err %v", sel.Chosen, sel.MostAdvanced, err)
	}

	gtid := func(addr string, order int, set string, opts ...func(*CandidateInput)) CandidateInput {
		c := rep(addr, order, "0-1-1", opts...)
		c.Position = topology.MySQLGTIDPosition(topology.MustParseGTIDSet(set))
		return c
	}
	const u = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	sel, err = SelectNewMaster([]CandidateInput{
		gtid("r1", 1, u+":1-100", candidate),
		gtid("r2", 2, u+":1-120"),
	}, SelectRules{})
	if err != nil || sel.Chosen != "r1" || sel.CatchUpFrom != "r2" {
		t.Fatalf("mysql gtid: chosen %q from %q err %v", sel.Chosen, sel.CatchUpFrom, err)
	}
}

func TestSelection_FSMCandidates(t *testing.T) {
	sel, err := SelectNewMaster([]CandidateInput{
		rep("r1", 1, "0-1-100", noMaster),
		rep("r2", 2, "0-1-100"),
	}, SelectRules{})
	if err != nil {
		t.Fatal(err)
	}
	want := []fsm.Candidate{
		{Address: "r1", Reason: "no_master set"},
		{Address: "r2", Chosen: true, Reason: "chosen: most advanced; no candidate_master eligible"},
	}
	if got := sel.FSMCandidates(); !slices.Equal(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if got := (Selection{}).FSMCandidates(); got == nil || len(got) != 0 {
		t.Fatalf("empty selection: %#v", got)
	}
}
