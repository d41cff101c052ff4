package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// memSink is an in-memory raft.SnapshotSink. With failAfter > 0 a write that
// would take the total past failAfter bytes fails.
type memSink struct {
	buf       bytes.Buffer
	failAfter int
	closed    bool
	canceled  bool
}

var _ raft.SnapshotSink = (*memSink)(nil)

func (s *memSink) Write(p []byte) (int, error) {
	if s.failAfter > 0 && s.buf.Len()+len(p) > s.failAfter {
		return 0, errors.New("disk full")
	}
	return s.buf.Write(p)
}

func (s *memSink) Close() error          { s.closed = true; return nil }
func (s *memSink) Cancel() error         { s.canceled = true; return nil }
func (s *memSink) ID() string            { return "mem" }
func (s *memSink) Reader() io.ReadCloser { return io.NopCloser(bytes.NewReader(s.buf.Bytes())) }

// persist snapshots f into a new memSink.
func persist(t testing.TB, f *FSM) *memSink {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	defer snap.Release()
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatalf("Persist: %v", err)
	}
	if !sink.closed || sink.canceled {
		t.Fatalf("sink closed=%v canceled=%v, want closed only", sink.closed, sink.canceled)
	}
	return sink
}

func TestSnapshot_RoundTrip(t *testing.T) {
	f := testFSM(t)
	applyAll(t, f, determinismLog())
	applyAll(t, f, []cmd{
		openFailover("app0", 1000),
		{CandidatesType, Candidates{RecordID: f.AppliedIndex() + 1, Candidates: []Candidate{{Address: "r9", Chosen: true}}}},
		stepBegin(f.AppliedIndex()+1, "fence", 1001),
	})
	sink := persist(t, f)

	g := testFSM(t)
	if err := g.Restore(sink.Reader()); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if want, got := dump(t, f), dump(t, g); got != want {
		t.Errorf("restored state differs:\nwant %s\ngot  %s", want, got)
	}
	if g.AppliedIndex() != f.AppliedIndex() {
		t.Errorf("AppliedIndex = %d, want %d", g.AppliedIndex(), f.AppliedIndex())
	}
	// The restored FSM keeps enforcing the rules: the open record still blocks.
	openID := f.AppliedIndex() - 2
	if r, ok := g.OpenRecord("app0"); !ok || r.ID != openID {
		t.Fatalf("restored OpenRecord(app0) = %d, %v; want %d", r.ID, ok, openID)
	}
	if err, _ := applyNext(t, g, openKind("app0", KindSwitchover, 1002)).(error); !errors.Is(err, ErrRecordOpen) {
		t.Errorf("open on restored FSM: err = %v, want ErrRecordOpen", err)
	}
	// And both replicas continue identically.
	next := []cmd{stepEnd(openID, "fence", OutcomeOK, 1003), closeRec(openID, ResultSuccess, "r9", 1004)}
	applyNext(t, f, openKind("app0", KindSwitchover, 1002)) // the rejected command, to keep indexes aligned
	applyAll(t, f, next)
	applyAll(t, g, next)
	if dump(t, f) != dump(t, g) {
		t.Error("replicas diverged after restore")
	}
}

func TestSnapshot_Format(t *testing.T) {
	f := testFSM(t)
	applyAll(t, f, []cmd{
		{NodeMetaType, NodeMeta{ID: "c1", HTTPAddr: "a:8080"}},
		openKind("app1", KindDetection, 0),
	})
	lines := strings.Split(strings.TrimSpace(persist(t, f).buf.String()), "\n")
	want := []string{`{"kind":"header","version":1,"applied_index":2}`, `{"kind":"cluster"`, `{"kind":"record"`, `{"kind":"node"`}
	if len(lines) != len(want) {
		t.Fatalf("snapshot has %d lines, want %d:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %s, want prefix %s", i+1, lines[i], w)
		}
	}
}

func TestSnapshot_IsolatedFromLaterApply(t *testing.T) {
	f := testFSM(t)
	applyAll(t, f, []cmd{openFailover("app1", 0), stepBegin(1, "fence", 1)})
	want := dump(t, f)
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	// Apply continues while Persist has not run yet.
	applyAll(t, f, []cmd{stepEnd(1, "fence", OutcomeFailed, 2), stepBegin(1, "promote", 3),
		closeRec(1, ResultFailed, "", 4), {SetMasterType, SetMaster{Cluster: "app1", Master: "m", At: at(5)}}})
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatalf("Persist: %v", err)
	}
	g := testFSM(t)
	if err := g.Restore(sink.Reader()); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if got := dump(t, g); got != want {
		t.Errorf("snapshot saw later applies:\nwant %s\ngot  %s", want, got)
	}
	if g.AppliedIndex() != 2 {
		t.Errorf("AppliedIndex = %d, want 2", g.AppliedIndex())
	}
}

func TestRestore_DiscardsPriorState(t *testing.T) {
	src := testFSM(t)
	applyAll(t, src, []cmd{{SetMasterType, SetMaster{Cluster: "new", Master: "m", At: at(0)}}})
	sink := persist(t, src)

	f := testFSM(t)
	applyAll(t, f, determinismLog())
	applyAll(t, f, []cmd{openFailover("old", 0)})
	if err := f.Restore(sink.Reader()); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if got, want := dump(t, f), dump(t, src); got != want {
		t.Errorf("after restore:\nwant %s\ngot  %s", want, got)
	}
	if f.AppliedIndex() != 1 || f.RecordCount() != 0 || len(f.Nodes()) != 0 {
		t.Errorf("prior state survived: applied %d, %d records, %d nodes", f.AppliedIndex(), f.RecordCount(), len(f.Nodes()))
	}
	if _, ok := f.OpenRecord("old"); ok {
		t.Error("open record of prior state survived")
	}
	if id, ok := applyNext(t, f, openFailover("old", 1)).(uint64); !ok || id != 2 {
		t.Errorf("open after restore = %v, want ID 2", id)
	}
}

func TestRestore_Rejects(t *testing.T) {
	rec := func(id uint64, cluster string, open bool) string {
		res := `"failed"`
		if open {
			res = `""`
		}
		return fmt.Sprintf(`{"kind":"record","record":{"id":%d,"cluster":%q,"kind":"failover","result":%s}}`, id, cluster, res)
	}
	tests := []struct {
		name   string
		stream string
		want   error
	}{
		{"empty", "", ErrSnapshotCorrupt},
		{"not json", "hello", ErrSnapshotCorrupt},
		{"no header", rec(1, "a", false), ErrSnapshotCorrupt},
		{"future version", `{"kind":"header","version":2,"applied_index":5}`, ErrSnapshotVersion},
		{"missing version", `{"kind":"header","applied_index":5}`, ErrSnapshotVersion},
		{"unknown kind", `{"kind":"header","version":1}` + "\n" + `{"kind":"widget"}`, ErrSnapshotCorrupt},
		{"kind without body", `{"kind":"header","version":1}` + "\n" + `{"kind":"cluster"}`, ErrSnapshotCorrupt},
		{"duplicate record", `{"kind":"header","version":1}` + "\n" + rec(1, "a", false) + "\n" + rec(1, "a", false), ErrSnapshotCorrupt},
		{"two open in a cluster", `{"kind":"header","version":1}` + "\n" + rec(1, "a", true) + "\n" + rec(2, "a", true), ErrSnapshotCorrupt},
		{"truncated", `{"kind":"header","version":1}` + "\n" + `{"kind":"node","node":{"id":`, ErrSnapshotCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := testFSM(t)
			applyAll(t, f, []cmd{openFailover("keep", 0)})
			before := dump(t, f)
			err := f.Restore(io.NopCloser(strings.NewReader(tt.stream)))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Restore err = %v, want %v", err, tt.want)
			}
			if dump(t, f) != before || f.AppliedIndex() != 1 {
				t.Error("failed restore changed the state")
			}
		})
	}
}

func TestRestore_OrdersRecords(t *testing.T) {
	stream := `{"kind":"header","version":1,"applied_index":9}
{"kind":"record","record":{"id":5,"cluster":"a","kind":"detection","result":"detected"}}
{"kind":"record","record":{"id":2,"cluster":"b","kind":"failover","result":""}}
`
	f := testFSM(t)
	if err := f.Restore(io.NopCloser(strings.NewReader(stream))); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	h := f.History("", 0)
	if len(h) != 2 || h[0].ID != 5 || h[1].ID != 2 {
		t.Errorf("History = %+v, want IDs 5, 2", h)
	}
	if r, ok := f.OpenRecord("b"); !ok || r.ID != 2 {
		t.Errorf("OpenRecord(b) = %d, %v", r.ID, ok)
	}
	if cl := f.Clusters(); len(cl) != 2 {
		t.Errorf("Clusters() = %+v, want a and b created from records", cl)
	}
}

func TestPersist_WriteErrorCancels(t *testing.T) {
	f := testFSM(t)
	for i := range 50 {
		applyAll(t, f, []cmd{openKind(fmt.Sprintf("c%03d", i), KindDetection, i)})
	}
	for _, failAfter := range []int{1, 200, 4000} {
		t.Run(fmt.Sprint(failAfter), func(t *testing.T) {
			snap, err := f.Snapshot()
			if err != nil {
				t.Fatalf("Snapshot: %v", err)
			}
			defer snap.Release()
			sink := &memSink{failAfter: failAfter}
			if err := snap.Persist(sink); err == nil {
				t.Fatal("Persist succeeded on a failing sink")
			}
			if !sink.canceled || sink.closed {
				t.Errorf("sink canceled=%v closed=%v, want canceled only", sink.canceled, sink.closed)
			}
		})
	}
}

func BenchmarkSnapshotPersist(b *testing.B) {
	f := New(nil)
	for i := range 10000 {
		id := f.AppliedIndex() + 1
		applyAll(b, f, []cmd{
			openFailover(fmt.Sprintf("app%d", i%20), i),
			stepBegin(id, "fence", i),
			stepEnd(id, "fence", OutcomeOK, i),
			closeRec(id, ResultSuccess, "r1:3306", i),
		})
	}
	b.ReportAllocs()
	for b.Loop() {
		snap, err := f.Snapshot()
		if err != nil {
			b.Fatal(err)
		}
		sink := &memSink{}
		if err := snap.Persist(sink); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(sink.buf.Len()))
		snap.Release()
	}
}
