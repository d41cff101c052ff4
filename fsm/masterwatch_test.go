package fsm

import "testing"

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestFSM_MasterIndexAndChanged(t *testing.T) {
	f := testFSM(t)
	ch := f.MasterChanged()
	applyAll(t, f, []cmd{{SetMasterType, SetMaster{Cluster: "app1", Master: "m1:3306", At: at(0)}}})
	if !closed(ch) {
		t.Fatal("set master did not wake the waiters")
	}
	if cs, _ := f.Cluster("app1"); cs.MasterIndex != 1 {
		t.Errorf("master index %d, want 1 (the set master's raft index)", cs.MasterIndex)
	}

	ch = f.MasterChanged()
	applyAll(t, f, []cmd{openFailover("app1", 1), stepBegin(2, "fence", 2), {AckType, Ack{Cluster: "app1", By: "op", At: at(3)}}})
	if closed(ch) {
		t.Fatal("commands that keep the master woke the waiters")
	}
	applyAll(t, f, []cmd{closeRec(2, ResultFailed, "", 4)})
	if closed(ch) {
		t.Fatal("a failed failover woke the waiters")
	}
	applyAll(t, f, []cmd{openFailover("app1", 5), closeRec(6, ResultSuccess, "m2:3306", 6)})
	if !closed(ch) {
		t.Fatal("a successful failover did not wake the waiters")
	}
	cs, _ := f.Cluster("app1")
	if cs.Master != "m2:3306" || cs.MasterIndex != f.AppliedIndex() {
		t.Errorf("after failover: %+v, want m2 at index %d", cs, f.AppliedIndex())
	}

	// The index survives a snapshot, and a restore wakes the waiters.
	sink := persist(t, f)
	g := testFSM(t)
	ch = g.MasterChanged()
	if err := g.Restore(sink.Reader()); err != nil {
		t.Fatal(err)
	}
	if !closed(ch) {
		t.Error("restore did not wake the waiters")
	}
	if rs, _ := g.Cluster("app1"); rs.MasterIndex != cs.MasterIndex {
		t.Errorf("restored master index %d, want %d", rs.MasterIndex, cs.MasterIndex)
	}
}
