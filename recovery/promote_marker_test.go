package recovery

import (
	"testing"

	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/topology"
)

// TestPromotedMarkers: repoint and levelThroughGTID read the new master's
// position and coordinate back from the promote step's detail, as promote
// writes them; a promote that found its target writable already journals
// neither.
func TestPromotedMarkers(t *testing.T) {
	rec := func(outcome fsm.Outcome, detail string) fsm.Record {
		return fsm.Record{Steps: []fsm.Step{{Name: StepPromote, Outcome: outcome, Detail: detail}}}
	}
	full := "db2:3306 promoted, read_only=OFF; semi-sync master enabled; agent fence cleared" + positionMarker + "0-1-21; " + binlogMarker + "mysql-bin.000001:7497"
	tests := []struct {
		name    string
		rec     fsm.Record
		pos     string
		posOK   bool
		coord   topology.BinlogCoord
		coordOK bool
	}{
		{"both journalled", rec(fsm.OutcomeOK, full), "0-1-21", true, topology.BinlogCoord{File: "mysql-bin.000001", Pos: 7497}, true},
		{"resumed on a writable target", rec(fsm.OutcomeOK, "db2:3306 promoted, read_only=OFF; its binlog coordinate is not journalled: db2:3306 was writable already when read (a resumed promote)"), "", false, topology.BinlogCoord{}, false},
		{"promote not ended ok", rec(fsm.OutcomeFailed, full), "", false, topology.BinlogCoord{}, false},
		{"no promote", fsm.Record{}, "", false, topology.BinlogCoord{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if p, ok := promotedPosition(tt.rec); p != tt.pos || ok != tt.posOK {
				t.Errorf("promotedPosition = %q, %v; want %q, %v", p, ok, tt.pos, tt.posOK)
			}
			if c, ok := promotedCoord(tt.rec); c != tt.coord || ok != tt.coordOK {
				t.Errorf("promotedCoord = %v, %v; want %v, %v", c, ok, tt.coord, tt.coordOK)
			}
		})
	}
}
