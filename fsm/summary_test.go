package fsm

import "testing"

func TestRecordSummaries_OpenAndClosed(t *testing.T) {
	f := testFSM(t)
	resp := applyAll(t, f, []cmd{openFailover("app1", 0)})
	id1 := resp[0].(uint64)
	applyAll(t, f, []cmd{closeRec(id1, ResultSuccess, "db2:3306", 3)})
	resp = applyAll(t, f, []cmd{openKind("app2", KindSwitchover, 10)})
	id2 := resp[0].(uint64)

	got := f.RecordSummaries()
	if len(got) != 2 {
		t.Fatalf("RecordSummaries() = %d records, want 2: %+v", len(got), got)
	}
	want0 := RecordSummary{ID: id1, Cluster: "app1", Kind: KindFailover, Result: ResultSuccess, Opened: at(0), Closed: at(3)}
	if got[0] != want0 {
		t.Errorf("closed record summary = %+v, want %+v", got[0], want0)
	}
	want1 := RecordSummary{ID: id2, Cluster: "app2", Kind: KindSwitchover, Result: ResultOpen, Opened: at(10)}
	if got[1] != want1 {
		t.Errorf("open record summary = %+v, want %+v", got[1], want1)
	}
}
