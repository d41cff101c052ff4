package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestApply_RecordLifecycle(t *testing.T) {
	f := testFSM(t)
	applyAll(t, f, []cmd{{SetMasterType, SetMaster{Cluster: "app1", Master: "m1:3306", At: at(0)}}})

	resp := applyNext(t, f, openFailover("app1", 10))
	id, ok := resp.(uint64)
	if !ok || id != 2 {
		t.Fatalf("RecordOpen response = %#v, want uint64(2) (the log index)", resp)
	}
	cands := []Candidate{{Address: "r1:3306", Chosen: true, Reason: "newest GTID"}, {Address: "r2:3306", Reason: "no_master"}}
	applyAll(t, f, []cmd{
		{CandidatesType, Candidates{RecordID: id, Candidates: cands}},
		stepBegin(id, "fence", 11),
		stepEnd(id, "fence", OutcomeOK, 12),
		stepBegin(id, "catch_up", 13),
		stepBegin(id, "promote", 14), // overlapping steps are allowed
		stepEnd(id, "catch_up", OutcomeWarning, 15),
		stepEnd(id, "promote", OutcomeOK, 16),
	})
	if err, _ := applyNext(t, f, stepEnd(id, "fence", OutcomeOK, 17)).(error); !errors.Is(err, ErrStepNotRunning) {
		t.Fatalf("ending an ended step: err = %v, want ErrStepNotRunning", err)
	}
	if r, ok := f.OpenRecord("app1"); !ok || r.ID != id {
		t.Fatalf("OpenRecord(app1) = %v, %v; want record %d", r.ID, ok, id)
	}
	applyAll(t, f, []cmd{closeRec(id, ResultSuccess, "r1:3306", 20)})

	r, ok := f.Record(id)
	if !ok {
		t.Fatalf("Record(%d) not found", id)
	}
	wantSteps := []struct {
		name    string
		outcome Outcome
		start   int
		end     int
	}{{"fence", OutcomeOK, 11, 12}, {"catch_up", OutcomeWarning, 13, 15}, {"promote", OutcomeOK, 14, 16}}
	if len(r.Steps) != len(wantSteps) {
		t.Fatalf("steps = %+v, want %d", r.Steps, len(wantSteps))
	}
	for i, w := range wantSteps {
		s := r.Steps[i]
		if s.Seq != i+1 || s.Name != w.name || s.Outcome != w.outcome || !s.Start.Equal(at(w.start)) || !s.End.Equal(at(w.end)) || s.Leader != "c1" || s.Term != 2 {
			t.Errorf("step %d = %+v, want %s %s [%d,%d]", i, s, w.name, w.outcome, w.start, w.end)
		}
	}
	if r.Result != ResultSuccess || !r.Closed.Equal(at(20)) || r.OldMaster != "m1:3306" || r.NewMaster != "r1:3306" ||
		len(r.Candidates) != 2 || r.Candidates[0] != cands[0] || string(r.Evidence) == "" || r.IsOpen() {
		t.Errorf("closed record = %+v", r)
	}
	c, _ := f.Cluster("app1")
	if c.Master != "r1:3306" || !c.MasterSetAt.Equal(at(20)) || !c.LastFailover.Equal(at(20)) || c.LastFailoverID != id {
		t.Errorf("cluster after failover = %+v", c)
	}
	if _, ok := f.OpenRecord("app1"); ok {
		t.Error("OpenRecord(app1) still found after close")
	}
	if got := f.AppliedIndex(); got != 11 {
		t.Errorf("AppliedIndex = %d, want 11", got)
	}

	// A new record may be opened once the previous one is closed.
	if resp := applyNext(t, f, openKind("app1", KindSwitchover, 30)); resp != uint64(12) {
		t.Fatalf("reopen after close: response %#v, want uint64(12)", resp)
	}
}

func TestApply_CloseEffects(t *testing.T) {
	tests := []struct {
		name         string
		kind         RecordKind
		result       Result
		wantMaster   string
		wantFailover bool
	}{
		{"failover success", KindFailover, ResultSuccess, "new:3306", true},
		{"switchover success", KindSwitchover, ResultSuccess, "new:3306", false},
		{"failover failed", KindFailover, ResultFailed, "old:3306", false},
		{"failover rolled back", KindFailover, ResultRolledBack, "old:3306", false},
		{"switchover aborted", KindSwitchover, ResultAborted, "old:3306", false},
		{"detection detected", KindDetection, ResultDetected, "old:3306", false},
		{"detection success", KindDetection, ResultSuccess, "old:3306", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := testFSM(t)
			applyAll(t, f, []cmd{
				{SetMasterType, SetMaster{Cluster: "app1", Master: "old:3306", At: at(0)}},
				{AckType, Ack{Cluster: "app1", By: "ops", At: at(1), Comment: "earlier"}},
				openKind("app1", tt.kind, 2),
				closeRec(3, tt.result, "new:3306", 5),
			})
			c, _ := f.Cluster("app1")
			if c.Master != tt.wantMaster {
				t.Errorf("master = %q, want %q", c.Master, tt.wantMaster)
			}
			if got := !c.LastFailover.IsZero(); got != tt.wantFailover {
				t.Errorf("LastFailover set = %v, want %v", got, tt.wantFailover)
			}
			if tt.wantFailover {
				if c.LastFailoverID != 3 || !c.AckedAt.IsZero() || c.AckedBy != "" || c.AckComment != "" {
					t.Errorf("failover did not reset ack: %+v", c)
				}
				if !c.AntiFlapActive(at(60), 8*time.Minute) {
					t.Errorf("anti-flap not active right after failover: %+v", c)
				}
			} else if c.AckedBy != "ops" {
				t.Errorf("ack cleared by a non-failover close: %+v", c)
			}
		})
	}
}

func TestApply_OpenExclusion(t *testing.T) {
	kinds := []RecordKind{KindFailover, KindSwitchover, KindDetection}
	for _, first := range kinds {
		for _, second := range kinds {
			t.Run(fmt.Sprintf("%s_then_%s", first, second), func(t *testing.T) {
				f := testFSM(t)
				applyAll(t, f, []cmd{openKind("app1", first, 0)})
				before := dump(t, f)
				err, _ := applyNext(t, f, openKind("app1", second, 1)).(error)
				if !errors.Is(err, ErrRecordOpen) {
					t.Fatalf("second open: err = %v, want ErrRecordOpen", err)
				}
				if after := dump(t, f); after != before {
					t.Errorf("state changed by rejected open:\n%s\n%s", before, after)
				}
				if id, ok := applyNext(t, f, openKind("app2", second, 2)).(uint64); !ok || id != 3 {
					t.Errorf("open on another cluster: got %v, want ID 3", id)
				}
			})
		}
	}
}

func TestApply_Rejections(t *testing.T) {
	// Setup: record 1 is an open failover on app1 with step "fence" running;
	// record 3 is a closed switchover on app2.
	setup := []cmd{
		openFailover("app1", 0),
		stepBegin(1, "fence", 1),
		openKind("app2", KindSwitchover, 2),
		closeRec(3, ResultFailed, "", 3),
	}
	tests := []struct {
		name string
		c    cmd
		want error
	}{
		{"open empty cluster", cmd{RecordOpenType, RecordOpen{Kind: KindFailover, At: at(9)}}, ErrInvalid},
		{"open bad kind", cmd{RecordOpenType, RecordOpen{Cluster: "app3", Kind: "reboot", At: at(9)}}, ErrInvalid},
		{"open zero time", cmd{RecordOpenType, RecordOpen{Cluster: "app3", Kind: KindFailover}}, ErrInvalid},
		{"open while open", openKind("app1", KindSwitchover, 9), ErrRecordOpen},
		{"begin no record", stepBegin(99, "x", 9), ErrNoSuchRecord},
		{"begin closed record", stepBegin(3, "x", 9), ErrRecordClosed},
		{"begin empty name", stepBegin(1, "", 9), ErrInvalid},
		{"begin zero time", cmd{StepBeginType, StepBegin{RecordID: 1, Name: "x"}}, ErrInvalid},
		{"end not running", stepEnd(1, "promote", OutcomeOK, 9), ErrStepNotRunning},
		{"end outcome running", stepEnd(1, "fence", OutcomeRunning, 9), ErrInvalid},
		{"end empty outcome", stepEnd(1, "fence", "", 9), ErrInvalid},
		{"end empty name", stepEnd(1, "", OutcomeOK, 9), ErrInvalid},
		{"end zero time", cmd{StepEndType, StepEnd{RecordID: 1, Name: "fence", Outcome: OutcomeOK}}, ErrInvalid},
		{"end no record", stepEnd(99, "fence", OutcomeOK, 9), ErrNoSuchRecord},
		{"end closed record", stepEnd(3, "fence", OutcomeOK, 9), ErrRecordClosed},
		{"candidates no record", cmd{CandidatesType, Candidates{RecordID: 99}}, ErrNoSuchRecord},
		{"candidates closed record", cmd{CandidatesType, Candidates{RecordID: 3}}, ErrRecordClosed},
		{"candidates empty address", cmd{CandidatesType, Candidates{RecordID: 1, Candidates: []Candidate{{Reason: "x"}}}}, ErrInvalid},
		{"candidates two chosen", cmd{CandidatesType, Candidates{RecordID: 1,
			Candidates: []Candidate{{Address: "a", Chosen: true}, {Address: "b", Chosen: true}}}}, ErrInvalid},
		{"close no record", closeRec(99, ResultFailed, "", 9), ErrNoSuchRecord},
		{"close closed record", closeRec(3, ResultFailed, "", 9), ErrRecordClosed},
		{"close open result", closeRec(1, ResultOpen, "", 9), ErrInvalid},
		{"close unknown result", closeRec(1, "maybe", "", 9), ErrInvalid},
		{"close zero time", cmd{RecordCloseType, RecordClose{RecordID: 1, Result: ResultFailed}}, ErrInvalid},
		{"close success without master", closeRec(1, ResultSuccess, "", 9), ErrInvalid},
		{"close failover as detected", closeRec(1, ResultDetected, "", 9), ErrInvalid},
		{"set master empty cluster", cmd{SetMasterType, SetMaster{Master: "m", At: at(9)}}, ErrInvalid},
		{"set master empty master", cmd{SetMasterType, SetMaster{Cluster: "app3", At: at(9)}}, ErrInvalid},
		{"set master zero time", cmd{SetMasterType, SetMaster{Cluster: "app3", Master: "m"}}, ErrInvalid},
		{"ack empty cluster", cmd{AckType, Ack{By: "ops", At: at(9)}}, ErrInvalid},
		{"ack empty by", cmd{AckType, Ack{Cluster: "app1", At: at(9)}}, ErrInvalid},
		{"ack zero time", cmd{AckType, Ack{Cluster: "app1", By: "ops"}}, ErrInvalid},
		{"maintenance empty cluster", cmd{MaintenanceType, Maintenance{Until: at(99)}}, ErrInvalid},
		{"node empty id", cmd{NodeMetaType, NodeMeta{HTTPAddr: "h:1"}}, ErrInvalid},
		{"node empty addr", cmd{NodeMetaType, NodeMeta{ID: "c1"}}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := testFSM(t)
			applyAll(t, f, setup)
			before := dump(t, f)
			resp := applyNext(t, f, tt.c)
			err, ok := resp.(error)
			if !ok || !errors.Is(err, tt.want) {
				t.Fatalf("response = %#v, want error wrapping %v", resp, tt.want)
			}
			if after := dump(t, f); after != before {
				t.Errorf("rejected command changed state:\nbefore %s\nafter  %s", before, after)
			}
			if got, want := f.AppliedIndex(), uint64(len(setup)+1); got != want {
				t.Errorf("AppliedIndex = %d, want %d (rejections still count as applied)", got, want)
			}
		})
	}
}

func TestApply_ClusterCommands(t *testing.T) {
	tests := []struct {
		name string
		cmds []cmd
		want ClusterState
	}{
		{"set master creates cluster",
			[]cmd{{SetMasterType, SetMaster{Cluster: "app1", Master: "m:3306", At: at(1)}}},
			ClusterState{Name: "app1", Master: "m:3306", MasterSetAt: at(1), MasterIndex: 1}},
		{"ack",
			[]cmd{{AckType, Ack{Cluster: "app1", By: "ops", At: at(2), Comment: "checked"}}},
			ClusterState{Name: "app1", AckedAt: at(2), AckedBy: "ops", AckComment: "checked"}},
		{"maintenance set",
			[]cmd{{MaintenanceType, Maintenance{Cluster: "app1", Until: at(600), Reason: "upgrade", By: "ops"}}},
			ClusterState{Name: "app1", MaintenanceUntil: at(600), MaintenanceReason: "upgrade", MaintenanceBy: "ops"}},
		{"maintenance cleared",
			[]cmd{
				{MaintenanceType, Maintenance{Cluster: "app1", Until: at(600), Reason: "upgrade", By: "ops"}},
				{MaintenanceType, Maintenance{Cluster: "app1", By: "ops"}},
			},
			ClusterState{Name: "app1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := testFSM(t)
			for _, resp := range applyAll(t, f, tt.cmds) {
				if resp != nil {
					t.Errorf("response = %#v, want nil", resp)
				}
			}
			got, ok := f.Cluster("app1")
			if !ok || got != tt.want {
				t.Errorf("Cluster(app1) = %+v, %v; want %+v", got, ok, tt.want)
			}
		})
	}
}

func TestApply_NodeMeta(t *testing.T) {
	f := testFSM(t)
	applyAll(t, f, []cmd{
		{NodeMetaType, NodeMeta{ID: "c2", HTTPAddr: "b:8080", Zone: "zone-b"}},
		{NodeMetaType, NodeMeta{ID: "c1", HTTPAddr: "a:8080"}},
		{NodeMetaType, NodeMeta{ID: "c1", HTTPAddr: "a2:8080", Zone: "zone-a"}}, // replaces
	})
	if n, ok := f.Node("c1"); !ok || n != (NodeMeta{ID: "c1", HTTPAddr: "a2:8080", Zone: "zone-a"}) {
		t.Errorf("Node(c1) = %+v, %v", n, ok)
	}
	if _, ok := f.Node("c9"); ok {
		t.Error("Node(c9) found")
	}
	nodes := f.Nodes()
	if len(nodes) != 2 || nodes[0].ID != "c1" || nodes[1].ID != "c2" {
		t.Errorf("Nodes() = %+v, want c1, c2", nodes)
	}
}

func TestApply_UnknownType(t *testing.T) {
	f := testFSM(t)
	applyAll(t, f, []cmd{openFailover("app1", 0)})
	before := dump(t, f)

	if resp := f.Apply(makeLog(2, append([]byte{byte(IgnoreUnknownTypeFlag | 40)}, "{}"...))); resp != nil {
		t.Errorf("ignorable unknown type: response %#v, want nil", resp)
	}
	if dump(t, f) != before || f.AppliedIndex() != 2 {
		t.Errorf("ignorable unknown type changed state or did not advance the index (%d)", f.AppliedIndex())
	}
	v := mustPanic(t, func() { f.Apply(makeLog(3, []byte{40, '{', '}'})) })
	if !strings.Contains(fmt.Sprint(v), "unknown command type 40") {
		t.Errorf("panic = %v, want a message naming the unknown type", v)
	}
}

// A garbage entry (a bug, or a forged write) is rejected with a
// deterministic error on every replica and changes nothing; it never
// crashes the group (security review item 2).
func TestApply_MalformedPayloadRejected(t *testing.T) {
	types := []MessageType{RecordOpenType, StepBeginType, StepEndType, CandidatesType, RecordCloseType,
		SetMasterType, AckType, MaintenanceType, NodeMetaType, SalvageType, NodeKeyType}
	for _, typ := range types {
		for _, payload := range []string{"", "{", `{"at":"yesterday"}`, `{"cluster":5,"record_id":"x","id":7}`, "[1,2]", "null", `"x"`, "\xff\x00"} {
			t.Run(fmt.Sprintf("%s/%q", typ, payload), func(t *testing.T) {
				f := testFSM(t)
				applyAll(t, f, []cmd{{NodeMetaType, NodeMeta{ID: "c1", HTTPAddr: "a:8080"}}, openFailover("app1", 0)})
				before := dump(t, f)
				resp := f.Apply(makeLog(3, append([]byte{byte(typ)}, payload...)))
				err, ok := resp.(error)
				if !ok {
					t.Fatalf("accepted: %v", resp)
				}
				if dump(t, f) != before {
					t.Fatalf("rejected entry changed the state")
				}
				again := testFSM(t)
				applyAll(t, again, []cmd{{NodeMetaType, NodeMeta{ID: "c1", HTTPAddr: "a:8080"}}, openFailover("app1", 0)})
				if err2, _ := again.Apply(makeLog(3, append([]byte{byte(typ)}, payload...))).(error); err2 == nil || err2.Error() != err.Error() {
					t.Fatalf("not deterministic: %v vs %v", err, err2)
				}
			})
		}
	}
	t.Run("empty log", func(t *testing.T) {
		if _, ok := testFSM(t).Apply(makeLog(1, nil)).(error); !ok {
			t.Fatal("empty entry accepted")
		}
	})
}

// FuzzApply feeds arbitrary payloads for every known type: Apply never
// panics, and a rejection leaves the state exactly as it was.
func FuzzApply(f *testing.F) {
	types := []MessageType{RecordOpenType, StepBeginType, StepEndType, CandidatesType, RecordCloseType,
		SetMasterType, AckType, MaintenanceType, NodeMetaType, SalvageType, NodeKeyType}
	for _, seed := range []string{"{}", `{"cluster":"app1","kind":"failover","at":"2026-01-01T00:00:00Z"}`,
		`{"record_id":2,"name":"x","at":"2026-01-01T00:00:00Z","outcome":"ok"}`, `{"candidates":[{"address":""}]}`,
		`{"id":"c9","public_key":"AAAA"}`, "null", "[]"} {
		for i := range types {
			f.Add(uint8(i), []byte(seed))
		}
	}
	f.Fuzz(func(t *testing.T, ti uint8, payload []byte) {
		typ := types[int(ti)%len(types)]
		fsm := New(nil)
		applyAll(t, fsm, []cmd{openFailover("app1", 0)})
		before := dump(t, fsm)
		resp := fsm.Apply(makeLog(2, append([]byte{byte(typ)}, payload...)))
		if _, rejected := resp.(error); rejected && dump(t, fsm) != before {
			t.Fatalf("%s %q: rejected entry changed the state", typ, payload)
		}
	})
}

// determinismLog is a mixed command sequence over two clusters.
func determinismLog() []cmd {
	var cmds []cmd
	for i := range 5 {
		sec := i * 100
		cluster := fmt.Sprintf("app%d", i%2)
		id := uint64(len(cmds) + 2) // log index of the open below
		cmds = append(cmds,
			cmd{NodeMetaType, NodeMeta{ID: fmt.Sprintf("c%d", i%3), HTTPAddr: fmt.Sprintf("h%d:8080", i)}},
			openFailover(cluster, sec),
			stepBegin(id, "fence", sec+1),
			fenceCmd(id, FenceAwaiting, ProofNone, sec+1),
			fenceCmd(id, FenceProven, ProofAgent, sec+2),
			stepEnd(id, "fence", OutcomeOK, sec+2),
			closeRec(id, ResultSuccess, fmt.Sprintf("r%d:3306", i), sec+3),
			cmd{AckType, Ack{Cluster: cluster, By: "ops", At: at(sec + 4)}},
			cmd{MaintenanceType, Maintenance{Cluster: cluster, Until: at(sec + 50), Reason: "x"}},
		)
	}
	return cmds
}

func TestApply_Deterministic(t *testing.T) {
	cmds := determinismLog()
	a, b := testFSM(t), testFSM(t)
	respA, respB := applyAll(t, a, cmds), applyAll(t, b, cmds)
	ra, _ := json.Marshal(respA)
	rb, _ := json.Marshal(respB)
	if string(ra) != string(rb) {
		t.Errorf("responses differ:\n%s\n%s", ra, rb)
	}
	if da, db := dump(t, a), dump(t, b); da != db {
		t.Errorf("states differ:\n%s\n%s", da, db)
	}
	if a.RecordCount() != 5 || a.AppliedIndex() != b.AppliedIndex() {
		t.Errorf("RecordCount = %d, applied %d vs %d", a.RecordCount(), a.AppliedIndex(), b.AppliedIndex())
	}
}

func TestFSM_History(t *testing.T) {
	f := testFSM(t)
	applyAll(t, f, []cmd{
		openKind("a", KindDetection, 0), closeRec(1, ResultDetected, "", 1), // 1
		openKind("b", KindDetection, 2), closeRec(3, ResultDetected, "", 3), // 3
		openKind("a", KindDetection, 4), closeRec(5, ResultDetected, "", 5), // 5
		openKind("a", KindFailover, 6), // 7, open
	})
	ids := func(rs []Record) []uint64 {
		out := []uint64{}
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	tests := []struct {
		cluster string
		limit   int
		want    []uint64
	}{
		{"", 0, []uint64{7, 5, 3, 1}},
		{"", 2, []uint64{7, 5}},
		{"a", 0, []uint64{7, 5, 1}},
		{"a", 1, []uint64{7}},
		{"b", 5, []uint64{3}},
		{"zzz", 0, []uint64{}},
		{"", -1, []uint64{7, 5, 3, 1}},
	}
	for _, tt := range tests {
		if got := ids(f.History(tt.cluster, tt.limit)); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("History(%q, %d) = %v, want %v", tt.cluster, tt.limit, got, tt.want)
		}
	}
	if got := ids(f.OpenRecords()); fmt.Sprint(got) != "[7]" {
		t.Errorf("OpenRecords() = %v, want [7]", got)
	}
	if _, ok := f.Record(2); ok {
		t.Error("Record(2) found; 2 is a close, not a record")
	}
	if cl := f.Clusters(); len(cl) != 2 || cl[0].Name != "a" || cl[1].Name != "b" {
		t.Errorf("Clusters() = %+v, want a, b", cl)
	}
	if _, ok := f.Cluster("zzz"); ok {
		t.Error("Cluster(zzz) found")
	}
}

func TestFSM_OpenRecordSkipsDetection(t *testing.T) {
	f := testFSM(t)
	applyAll(t, f, []cmd{openKind("app1", KindDetection, 0)})
	if _, ok := f.OpenRecord("app1"); ok {
		t.Error("OpenRecord returned a detection record")
	}
	if got := f.OpenRecords(); len(got) != 1 || got[0].Kind != KindDetection {
		t.Errorf("OpenRecords() = %+v, want the detection record", got)
	}
}

func TestFSM_ReadsReturnCopies(t *testing.T) {
	f := testFSM(t)
	applyAll(t, f, []cmd{openFailover("app1", 0), stepBegin(1, "fence", 1),
		{CandidatesType, Candidates{RecordID: 1, Candidates: []Candidate{{Address: "r1"}}}}})
	before := dump(t, f)
	r, _ := f.Record(1)
	r.Steps[0].Outcome = OutcomeFailed
	r.Candidates[0].Address = "evil"
	r.Evidence[0] = '['
	h := f.History("", 0)
	h[0].Steps[0].Name = "evil"
	o, _ := f.OpenRecord("app1")
	o.Steps[0].Name = "evil"
	if after := dump(t, f); after != before {
		t.Errorf("modifying read results changed the FSM:\n%s\n%s", before, after)
	}
}

func TestFSM_ConcurrentReadsDuringApply(t *testing.T) {
	f := testFSM(t)
	applyAll(t, f, []cmd{openFailover("app1", 0)})
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				f.History("", 10)
				f.OpenRecord("app1")
				f.Clusters()
				f.AppliedIndex()
				if s, err := f.Snapshot(); err == nil {
					_ = s.Persist(&memSink{})
				}
			}
		}()
	}
	for i := range 200 {
		applyAll(t, f, []cmd{stepBegin(1, fmt.Sprintf("s%d", i), i), stepEnd(1, fmt.Sprintf("s%d", i), OutcomeOK, i)})
	}
	close(done)
	wg.Wait()
	if r, _ := f.Record(1); len(r.Steps) != 200 {
		t.Errorf("steps = %d, want 200", len(r.Steps))
	}
}

func BenchmarkApply(b *testing.B) {
	f := New(nil)
	begin := mustEncode(b, StepBeginType, StepBegin{RecordID: 1, Name: "step", Leader: "c1", At: at(1)})
	end := mustEncode(b, StepEndType, StepEnd{RecordID: 1, Name: "step", Outcome: OutcomeOK, At: at(2)})
	f.Apply(makeLog(1, mustEncode(b, RecordOpenType, RecordOpen{Cluster: "app1", Kind: KindFailover, At: at(0)})))
	idx := uint64(1)
	b.ReportAllocs()
	for b.Loop() {
		idx++
		if resp := f.Apply(makeLog(idx, begin)); resp != nil {
			b.Fatal(resp)
		}
		idx++
		if resp := f.Apply(makeLog(idx, end)); resp != nil {
			b.Fatal(resp)
		}
	}
}
