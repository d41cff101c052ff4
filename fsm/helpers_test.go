package fsm

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// at returns a fixed test time plus sec seconds; every test command is
// stamped from it so runs are reproducible.
func at(sec int) time.Time {
	return time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC).Add(time.Duration(sec) * time.Second)
}

// cmd is one command to apply in a test.
type cmd struct {
	t MessageType
	p any
}

func testFSM(t testing.TB) *FSM {
	t.Helper()
	return New(nil)
}

func makeLog(index uint64, buf []byte) *raft.Log {
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: buf}
}

func mustEncode(t testing.TB, typ MessageType, payload any) []byte {
	t.Helper()
	buf, err := Encode(typ, payload)
	if err != nil {
		t.Fatalf("Encode(%s): %v", typ, err)
	}
	return buf
}

// applyNext applies c at the index after the FSM's applied index.
func applyNext(t testing.TB, f *FSM, c cmd) any {
	t.Helper()
	return f.Apply(makeLog(f.AppliedIndex()+1, mustEncode(t, c.t, c.p)))
}

// applyAll applies cmds in order and fails on any error response.
func applyAll(t testing.TB, f *FSM, cmds []cmd) []any {
	t.Helper()
	out := make([]any, 0, len(cmds))
	for i, c := range cmds {
		resp := applyNext(t, f, c)
		if err, ok := resp.(error); ok {
			t.Fatalf("command %d (%s): unexpected rejection: %v", i, c.t, err)
		}
		out = append(out, resp)
	}
	return out
}

// dump renders everything the FSM exposes except the applied index, so two
// states can be compared.
func dump(t testing.TB, f *FSM) string {
	t.Helper()
	b, err := json.Marshal(struct {
		History  []Record
		Open     []Record
		Clusters []ClusterState
		Nodes    []NodeMeta
		Count    int
	}{f.History("", 0), f.OpenRecords(), f.Clusters(), f.Nodes(), f.RecordCount()})
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	return string(b)
}

// mustPanic runs fn and fails unless it panics.
func mustPanic(t *testing.T, fn func()) (v any) {
	t.Helper()
	defer func() {
		v = recover()
		if v == nil {
			t.Fatal("did not panic")
		}
	}()
	fn()
	return nil
}

func openFailover(cluster string, sec int) cmd {
	return cmd{RecordOpenType, RecordOpen{Cluster: cluster, Kind: KindFailover, Trigger: "automatic",
		OpenedBy: "c1", At: at(sec), Evidence: json.RawMessage(`{"votes":{"c1":"down","c2":"down"}}`)}}
}

func openKind(cluster string, kind RecordKind, sec int) cmd {
	return cmd{RecordOpenType, RecordOpen{Cluster: cluster, Kind: kind, Trigger: "manual", OpenedBy: "c1", At: at(sec)}}
}

func stepBegin(id uint64, name string, sec int) cmd {
	return cmd{StepBeginType, StepBegin{RecordID: id, Name: name, Leader: "c1", Term: 2, At: at(sec)}}
}

func stepEnd(id uint64, name string, o Outcome, sec int) cmd {
	return cmd{StepEndType, StepEnd{RecordID: id, Name: name, Outcome: o, At: at(sec)}}
}

func closeRec(id uint64, res Result, newMaster string, sec int) cmd {
	return cmd{RecordCloseType, RecordClose{RecordID: id, Result: res, NewMaster: newMaster, At: at(sec)}}
}
