package recovery

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/topology"
)

func TestFailoverErrant(t *testing.T) {
	const (
		u1 = "3e11fa47-71ca-11e1-9e33-c80aa9429562" // the dead master
		u2 = "4e11fa47-71ca-11e1-9e33-c80aa9429562" // replica A
		u3 = "5e11fa47-71ca-11e1-9e33-c80aa9429562" // a former master
	)
	maria := func(addr, own, origin string) gtidHolding {
		return gtidHolding{Address: addr, Flavor: topology.MariaDB, Own: own, Origin: origin}
	}
	mysql := func(addr, own, origin string) gtidHolding {
		return gtidHolding{Address: addr, Flavor: topology.MySQL, Own: own, Origin: origin}
	}
	tests := []struct {
		name     string
		c        gtidHolding
		lastSeen string
		peers    []gtidHolding
		want     string
	}{
		// MariaDB: domain-server-seq; the dead master is server 1.
		{"maria level with the master", maria("a", "0-1-100", "1"), "0-1-100", []gtidHolding{maria("b", "0-1-100", "1")}, ""},
		{"maria received past the last probe: the master's own", maria("a", "0-1-105", "1"), "0-1-100",
			[]gtidHolding{maria("b", "0-1-100", "1")}, ""},
		{"maria past the probe, origin unknown (restarted replica): the last seen server vouches", maria("a", "0-1-105", ""), "0-1-100",
			[]gtidHolding{maria("b", "0-1-100", "")}, ""},
		{"maria local write after the master's last", maria("a", "0-1-100,0-2-101", "1"), "0-1-100",
			[]gtidHolding{maria("b", "0-1-100", "1")}, "0-2-101"},
		{"maria local write in its own domain", maria("a", "0-1-100,1-2-5", "1"), "0-1-100",
			[]gtidHolding{maria("b", "0-1-100", "1")}, "1-2-5"},
		{"maria a former master's history is covered", maria("a", "0-1-100,0-3-50", "1"), "0-1-100",
			[]gtidHolding{maria("b", "0-1-100", "1")}, ""},
		{"maria a former master's history without a last seen position", maria("a", "0-1-100,0-3-50", "1"), "",
			[]gtidHolding{maria("b", "0-1-90", "1")}, ""},
		{"maria same sequence from another server diverged", maria("a", "0-1-99,0-2-100", "1"), "0-1-100",
			[]gtidHolding{maria("b", "0-1-100", "1")}, "0-2-100"},
		{"maria a peer has it too", maria("a", "0-1-100,1-2-5", "1"), "0-1-100",
			[]gtidHolding{maria("b", "0-1-100,1-2-5", "1")}, ""},
		{"maria domain the master never had, no last seen", maria("a", "0-1-100,1-2-5", "1"), "",
			[]gtidHolding{maria("b", "0-1-100", "1")}, "1-2-5"},
		{"maria nothing to compare with", maria("a", "0-1-100,1-2-5", "1"), "", nil, ""},
		// MySQL: uuid sets; the dead master is u1.
		{"mysql level", mysql("a", u1+":1-100", u1), u1 + ":1-100", []gtidHolding{mysql("b", u1+":1-100", u1)}, ""},
		{"mysql received past the probe", mysql("a", u1+":1-105", u1), u1 + ":1-100", []gtidHolding{mysql("b", u1+":1-100", u1)}, ""},
		{"mysql local write", mysql("a", u1+":1-100,"+u2+":1-3", u1), u1 + ":1-100", []gtidHolding{mysql("b", u1+":1-100", u1)}, u2 + ":1-3"},
		{"mysql former master covered by the last seen set", mysql("a", u1+":1-100,"+u3+":1-40", u1), u1 + ":1-100," + u3 + ":1-40",
			[]gtidHolding{mysql("b", u1+":1-100", u1)}, ""},
		{"mysql former master covered by a peer (set too big to gossip)", mysql("a", u1+":1-100,"+u3+":1-40", u1), "",
			[]gtidHolding{mysql("b", u1+":1-90,"+u3+":1-40", u1)}, ""},
		{"mysql a gap the others filled is not errant, an extra is", mysql("a", u1+":1-100,"+u3+":1-41", u1), u1 + ":1-100," + u3 + ":1-40",
			[]gtidHolding{mysql("b", u1+":1-100,"+u3+":1-40", u1)}, u3 + ":41"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := failoverErrant(tt.c, tt.lastSeen, tt.peers)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("errant = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFailoverErrant_BadInput(t *testing.T) {
	_, err := failoverErrant(gtidHolding{Address: "a", Flavor: topology.MariaDB, Own: "0-1"}, "0-1-1", nil)
	if err == nil {
		t.Fatal("malformed own position accepted")
	}
}

// An errant replica is neither promoted nor caught up from, and its reason
// names the errant GTIDs.
func TestMarkErrant_RefusedBySelection(t *testing.T) {
	maria := topology.Version{Flavor: topology.MariaDB, Major: 10, Minor: 11}
	replica := func(key, binlogState, current, io string) *topology.Instance {
		return &topology.Instance{Key: key, Version: maria, LogBin: true, LogSlaveUpdates: true,
			GTIDBinlogState: binlogState, GTIDCurrentPos: current, GTIDSlavePos: current,
			Replica: &topology.ReplicaStatus{MasterHost: "10.0.0.1", MasterPort: 3306, MasterServerID: 1, UsingGTID: "Slave_Pos", GTIDIOPos: io}}
	}
	ins := map[string]*topology.Instance{
		rA: replica(rA, "0-1-100,0-2-101", "0-2-101", "0-1-100"), // a local write after the last
		rB: replica(rB, "0-1-100", "0-1-100", "0-1-100"),
	}
	var cands []CandidateInput
	for i, a := range []string{rA, rB} {
		p, _ := ins[a].ReadPosition()
		cands = append(cands, CandidateInput{Address: a, ConfigOrder: i, CandidateMaster: a == rA, Reachable: true,
			LogBin: true, LogSlaveUpdates: true, Position: p, PositionKnown: true})
	}
	markErrant(cands, ins, mOld, "0-1-100", slog.New(slog.DiscardHandler))
	if !cands[0].Errant || cands[1].Errant {
		t.Fatalf("errant marks: %+v", cands)
	}
	sel, err := SelectNewMaster(cands, SelectRules{})
	if err != nil {
		t.Fatal(err)
	}
	if sel.Chosen != rB || sel.CatchUpFrom != "" {
		t.Fatalf("chosen %s, catch up from %q", sel.Chosen, sel.CatchUpFrom)
	}
	if r := sel.Considered[0].Reason; r == "" || !strings.Contains(r, "errant GTIDs: 0-2-101") {
		t.Fatalf("errant replica's reason %q", r)
	}
}

// A replica with a transaction of its own (errant) is neither promoted nor
// caught up from, although its GTIDs make it look the most advanced; the
// record names the errant GTIDs.
func TestExecutor_ErrantReplicaNeverASource(t *testing.T) {
	e := newExecEnv(t)
	e.f.set(rB, func(n *fakeNode) { n.seq, n.recv, n.errant = 12, 12, "1-9-3" })
	ev := `{"assessment":{"cluster":"app1","master":"` + mOld + `","votes":[{"controller":"c1","instance":"` + mOld + `","last_position":"0-1-12"}]}}`
	cmd, _ := fsm.Encode(fsm.RecordOpenType, fsm.RecordOpen{Cluster: "app1", Kind: fsm.KindFailover, Trigger: "automatic",
		OldMaster: mOld, OpenedBy: "c1", At: t0, Evidence: []byte(ev)})
	v, err := e.g.Apply(context.Background(), cmd)
	if err != nil {
		t.Fatal(err)
	}
	id := v.(uint64)
	res, err := e.executor("c1").Execute(context.Background(), e.cc, id)
	if err != nil || res != fsm.ResultSuccess {
		t.Fatalf("Execute = %q, %v; %+v", res, err, e.record(t, id))
	}
	r := e.record(t, id)
	if r.NewMaster != rA {
		t.Fatalf("new master %s, want %s", r.NewMaster, rA)
	}
	if why := candidateReason(r, rB); !strings.Contains(why, "errant GTIDs: 1-9-3") || !strings.Contains(why, "last seen at 0-1-12") {
		t.Fatalf("errant replica's reason %q", why)
	}
	for _, op := range e.f.opsSnapshot() {
		if op == rA+" change master "+rB {
			t.Fatalf("new master caught up from the errant replica: %v", e.f.opsSnapshot())
		}
	}
	if s, _ := stepNamed(r, StepCatchUp); s.Outcome != fsm.OutcomeSkipped || !strings.Contains(s.Detail, "errant GTIDs 1-9-3") {
		t.Fatalf("catch_up %+v", s)
	}
}
