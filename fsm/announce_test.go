package fsm

import (
	"errors"
	"testing"
)

// A promote that ends with NewMaster names the cluster's master at once,
// while the record stays open; the close names it again.
func TestApply_PromoteEndAnnouncesTheNewMaster(t *testing.T) {
	for _, kind := range []RecordKind{KindFailover, KindSwitchover} {
		t.Run(string(kind), func(t *testing.T) {
			f := testFSM(t)
			applyAll(t, f, []cmd{{SetMasterType, SetMaster{Cluster: "app1", Master: "m1:3306", At: at(0)}}})
			id := applyNext(t, f, openKind("app1", kind, 10)).(uint64)
			applyAll(t, f, []cmd{
				stepBegin(id, "promote", 11),
				{StepEndType, StepEnd{RecordID: id, Name: "promote", Outcome: OutcomeOK, At: at(12), NewMaster: "r1:3306"}},
			})
			c, _ := f.Cluster("app1")
			if c.Master != "r1:3306" || !c.MasterSetAt.Equal(at(12)) {
				t.Fatalf("cluster after the promote's end = %+v, want master r1:3306 set at 12", c)
			}
			if r, ok := f.OpenRecord("app1"); !ok || r.ID != id || r.NewMaster != "r1:3306" {
				t.Fatalf("open record = %+v, %v; want record %d open naming r1:3306", r, ok, id)
			}
			applyAll(t, f, []cmd{closeRec(id, ResultSuccess, "r1:3306", 20)})
			if c, _ := f.Cluster("app1"); c.Master != "r1:3306" {
				t.Fatalf("cluster after close = %+v", c)
			}
		})
	}
}

func TestApply_StepEndNewMasterRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		kind    RecordKind
		outcome Outcome
	}{
		{"failed promote", KindFailover, OutcomeFailed},
		{"detection record", KindDetection, OutcomeOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := testFSM(t)
			applyAll(t, f, []cmd{{SetMasterType, SetMaster{Cluster: "app1", Master: "m1:3306", At: at(0)}}})
			id := applyNext(t, f, openKind("app1", tc.kind, 10)).(uint64)
			applyAll(t, f, []cmd{stepBegin(id, "promote", 11)})
			resp := applyNext(t, f, cmd{StepEndType, StepEnd{RecordID: id, Name: "promote", Outcome: tc.outcome, At: at(12), NewMaster: "r1:3306"}})
			if err, _ := resp.(error); !errors.Is(err, ErrInvalid) {
				t.Fatalf("response %#v, want ErrInvalid", resp)
			}
			if c, _ := f.Cluster("app1"); c.Master != "m1:3306" {
				t.Fatalf("cluster = %+v, want the master unchanged", c)
			}
			if r, _ := f.Record(id); r.Steps[0].Outcome != OutcomeRunning {
				t.Fatalf("step changed by a refused end: %+v", r.Steps[0])
			}
		})
	}
}
