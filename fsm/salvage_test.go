package fsm

import (
	"errors"
	"testing"
	"time"
)

func salvageCmd(id uint64, outcome string, sec int) cmd {
	return cmd{SalvageType, Salvage{RecordID: id, From: "m:3306", Agent: "https://m:7080", Target: "r1:3306",
		Outcome: outcome, Applied: 2, GTIDs: []string{"0-1-11", "0-1-12"},
		Skipped: []SkippedTrx{{File: "mysql-bin.000002", Start: 900, Bytes: 57, Reason: "incomplete"}},
		Before:  "0-1-10", Recovered: "0-1-12", MasterLast: "0-1-12", Took: 40 * time.Millisecond, At: at(sec)}}
}

func TestSalvage_AttachesToOpenFailover(t *testing.T) {
	f := testFSM(t)
	id := applyAll(t, f, []cmd{openFailover("app", 1)})[0].(uint64)
	applyAll(t, f, []cmd{salvageCmd(id, SalvageApplied, 2)})
	r, ok := f.Record(id)
	if !ok || r.Salvage == nil {
		t.Fatalf("record %d salvage = %+v", id, r.Salvage)
	}
	if r.Salvage.Applied != 2 || len(r.Salvage.GTIDs) != 2 || r.Salvage.Skipped[0].Reason != "incomplete" {
		t.Errorf("salvage = %+v", r.Salvage)
	}
	// Reads are copies: changing one does not change the FSM.
	r.Salvage.GTIDs[0] = "x"
	if again, _ := f.Record(id); again.Salvage.GTIDs[0] != "0-1-11" {
		t.Error("Record returned a salvage sharing memory with the FSM")
	}

	// Snapshot round trip keeps it.
	g := testFSM(t)
	if err := g.Restore(persist(t, f).Reader()); err != nil {
		t.Fatal(err)
	}
	if dump(t, f) != dump(t, g) {
		t.Error("salvage lost in snapshot round trip")
	}
}

func TestSalvage_Rejections(t *testing.T) {
	f := testFSM(t)
	fo := applyAll(t, f, []cmd{openFailover("app", 1)})[0].(uint64)
	so := applyAll(t, f, []cmd{openKind("other", KindSwitchover, 1)})[0].(uint64)
	bad := salvageCmd(fo, SalvageApplied, 2)
	noFrom := bad.p.(Salvage)
	noFrom.From = ""
	noOutcome := bad.p.(Salvage)
	noOutcome.Outcome = ""
	for name, c := range map[string]cmd{
		"no from":    {SalvageType, noFrom},
		"no outcome": {SalvageType, noOutcome},
		"switchover": salvageCmd(so, SalvageApplied, 2),
		"no record":  salvageCmd(999, SalvageApplied, 2),
		"no time":    {SalvageType, Salvage{RecordID: fo, From: "m", Outcome: SalvageNothing}},
	} {
		before := dump(t, f)
		if err, _ := applyNext(t, f, c).(error); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if dump(t, f) != before {
			t.Errorf("%s: rejected command changed the state", name)
		}
	}
	applyAll(t, f, []cmd{closeRec(fo, ResultAborted, "", 3)})
	if err, _ := applyNext(t, f, salvageCmd(fo, SalvageApplied, 4)).(error); !errors.Is(err, ErrRecordClosed) {
		t.Errorf("salvage on a closed record: %v, want ErrRecordClosed", err)
	}
}
