package recovery

import (
	"errors"
	"strings"
	"testing"

	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/topology"
)

// fileFailover is a closed file/position failover of old onto new, as the
// executor journals it.
func fileFailover(id uint64, old, new string) fsm.Record {
	return fsm.Record{ID: id, Cluster: "app1", Kind: fsm.KindFailover, OldMaster: old, Result: fsm.ResultSuccess,
		Candidates: []fsm.Candidate{{Address: new, Chosen: true}},
		Steps: []fsm.Step{
			{Name: StepCatchUp, Outcome: fsm.OutcomeSkipped, Detail: new + " is the most advanced (file:bin.000001:900); " + execMarker + "bin.000001:900"},
			{Name: StepPromote, Outcome: fsm.OutcomeOK, Detail: new + " promoted, read_only=OFF; position file:nb.000003:4200; " + binlogMarker + "nb.000003:4200"},
		}}
}

func TestFileRejoinBasis(t *testing.T) {
	ok := fileFailover(7, "old:1", "new:1")
	detection := fsm.Record{ID: 8, Cluster: "app1", Kind: fsm.KindFailover, Result: fsm.ResultDetected}
	rejoin := fsm.Record{ID: 9, Cluster: "app1", Kind: fsm.KindRejoin, OldMaster: "other:1", Result: fsm.ResultFailed}
	with := func(f func(*fsm.Record)) fsm.Record { r := fileFailover(7, "old:1", "new:1"); f(&r); return r }
	tests := []struct {
		name    string
		history []fsm.Record // newest first
		want    fileRejoin
		wantErr string
	}{
		{"clean", []fsm.Record{ok}, fileRejoin{RecordID: 7, OldMasterExec: topology.BinlogCoord{File: "bin.000001", Pos: 900},
			NewMasterStart: topology.BinlogCoord{File: "nb.000003", Pos: 4200}}, ""},
		{"later records that promoted nothing", []fsm.Record{rejoin, detection, ok}, fileRejoin{RecordID: 7,
			OldMasterExec: topology.BinlogCoord{File: "bin.000001", Pos: 900}, NewMasterStart: topology.BinlogCoord{File: "nb.000003", Pos: 4200}}, ""},
		{"no failover", []fsm.Record{detection}, fileRejoin{}, "no failover in the history promoted new:1"},
		{"master changed again", []fsm.Record{fileFailover(10, "new:1", "third:1"), ok}, fileRejoin{}, "made third:1 the master"},
		{"replaced someone else", []fsm.Record{fileFailover(7, "other:1", "new:1")}, fileRejoin{}, "replaced other:1, not old:1"},
		{"switchover", []fsm.Record{with(func(r *fsm.Record) { r.Kind = fsm.KindSwitchover })}, fileRejoin{}, "is a switchover"},
		{"salvage applied", []fsm.Record{with(func(r *fsm.Record) {
			r.Salvage = &fsm.Salvage{Outcome: fsm.SalvageApplied, Applied: 2, Target: "new:1", MasterLast: "bin.000001:1000"}
		})}, fileRejoin{}, "salvaged 2 transaction(s)"},
		{"salvage found nothing", []fsm.Record{with(func(r *fsm.Record) { r.Salvage = &fsm.Salvage{Outcome: fsm.SalvageNothing} })},
			fileRejoin{RecordID: 7, OldMasterExec: topology.BinlogCoord{File: "bin.000001", Pos: 900}, NewMasterStart: topology.BinlogCoord{File: "nb.000003", Pos: 4200}}, ""},
		{"no exec coordinate", []fsm.Record{with(func(r *fsm.Record) { r.Steps[0].Detail = "new:1 is the most advanced" })}, fileRejoin{}, "old_master_exec"},
		{"no promote coordinate", []fsm.Record{with(func(r *fsm.Record) { r.Steps[1].Detail = "new:1 promoted, read_only=OFF" })}, fileRejoin{}, "binlog="},
		{"promote failed", []fsm.Record{with(func(r *fsm.Record) { r.Steps[1].Outcome = fsm.OutcomeFailed })}, fileRejoin{}, "no failover"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fileRejoinBasis(tt.history, "old:1", "new:1")
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrRejoinRefused) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err %v, want ErrRejoinRefused naming %q", err, tt.wantErr)
			}
		})
	}
}

func TestDecideFileRejoin(t *testing.T) {
	b := fileRejoin{RecordID: 7, OldMasterExec: topology.BinlogCoord{File: "bin.000001", Pos: 900}, NewMasterStart: topology.BinlogCoord{File: "nb.000003", Pos: 4200}}
	ev := func(file string, pos uint64, typ string, end uint64) topology.BinlogEvent {
		return topology.BinlogEvent{File: file, Pos: pos, Type: typ, EndPos: end}
	}
	restart := []topology.BinlogEvent{ev("bin.000001", 900, "Stop", 919), ev("bin.000002", 4, "Format_desc", 256),
		ev("bin.000002", 256, "Gtid_list", 299), ev("bin.000002", 299, "Binlog_checkpoint", 342)}
	tests := []struct {
		name    string
		end     topology.BinlogCoord
		after   []topology.BinlogEvent
		wantErr string
	}{
		{"level, same file", topology.BinlogCoord{File: "bin.000001", Pos: 900}, nil, ""},
		{"restarted since", topology.BinlogCoord{File: "bin.000002", Pos: 342}, restart, ""},
		{"errant transaction", topology.BinlogCoord{File: "bin.000001", Pos: 1200},
			[]topology.BinlogEvent{ev("bin.000001", 900, "Gtid", 942), ev("bin.000001", 942, "Query", 1100), ev("bin.000001", 1100, "Xid", 1200)},
			"3 event(s) (1 transaction(s)) that new:1 never received: from bin.000001:900 to bin.000001:1200, after bin.000001:900"},
		{"errant after a restart", topology.BinlogCoord{File: "bin.000002", Pos: 500},
			append(restart[1:], ev("bin.000002", 342, "Query", 500)), "from bin.000002:342 to bin.000002:500"},
		{"binlog shorter than what the new master applied", topology.BinlogCoord{File: "bin.000001", Pos: 800}, nil, "before bin.000001:900"},
		{"too many events to read", topology.BinlogCoord{File: "bin.000009", Pos: 4}, func() []topology.BinlogEvent {
			var out []topology.BinlogEvent
			for i := range fileEventLimit {
				out = append(out, ev("bin.000003", uint64(4+i), "Rotate", uint64(5+i)))
			}
			return out
		}(), "more than 200 events"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := decideFileRejoin("old:1", "new:1", b, tt.end, tt.after)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrRejoinRefused) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err %v, want ErrRejoinRefused naming %q", err, tt.wantErr)
			}
		})
	}
}

func TestDecideRejoin_FileMode(t *testing.T) {
	f := rejoinFacts{Instance: "old:1", ReplUser: "repl", GTID: false}
	if _, err := decideRejoin(f); !errors.Is(err, ErrRejoinRefused) {
		t.Fatalf("no basis: %v", err)
	}
	f.File = &fileRejoin{RecordID: 7}
	if rw, err := decideRejoin(f); err != nil || rw {
		t.Fatalf("with a basis: rewind %t, %v", rw, err)
	}
	f.FileErr = errors.New("x")
	if _, err := decideRejoin(f); err == nil {
		t.Fatal("basis error ignored")
	}
}
