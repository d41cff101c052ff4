package api

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/quorumha/quorumha/fsm"
)

// fsmWith returns a real FSM holding app1 with master m1 set at raft index 1.
func fsmWith(t *testing.T) *fsm.FSM {
	t.Helper()
	f := fsm.New(nil)
	setMaster(t, f, 1, "m1:3306")
	return f
}

func setMaster(t *testing.T, f *fsm.FSM, index uint64, addr string) {
	t.Helper()
	buf, err := fsm.Encode(fsm.SetMasterType, fsm.SetMaster{Cluster: "app1", Master: addr, At: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Apply(&raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: buf}); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

func TestMaster_LongPoll(t *testing.T) {
	state := fsmWith(t)
	f := newFixture(t, nil, func(d *Deps) { d.State = state })
	h := f.srv.Handler()

	t.Run("index field and header", func(t *testing.T) {
		rec := do(h, "GET", "/v1/clusters/app1/master", "", nil)
		got := decodeBody[MasterResponse](t, rec.Body.Bytes())
		if rec.Code != 200 || got.Index != 1 || got.Master != "m1:3306" || rec.Header().Get(MasterIndexHeader) != "1" {
			t.Fatalf("%d %+v header %q, want m1 at index 1", rec.Code, got, rec.Header().Get(MasterIndexHeader))
		}
	})
	t.Run("another index answers at once", func(t *testing.T) {
		done := make(chan *httptest.ResponseRecorder, 1)
		go func() { done <- do(h, "GET", "/v1/clusters/app1/master?index=0&wait=60s", "", nil) }()
		select {
		case rec := <-done:
			if got := decodeBody[MasterResponse](t, rec.Body.Bytes()); got.Index != 1 {
				t.Errorf("got %+v, want index 1", got)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("a stale index waited")
		}
	})
	t.Run("same index waits for the change", func(t *testing.T) {
		done := make(chan *httptest.ResponseRecorder, 1)
		go func() { done <- do(h, "GET", "/v1/clusters/app1/master?index=1&wait=60s", "", nil) }()
		select {
		case rec := <-done:
			t.Fatalf("answered before any change: %s", rec.Body)
		case <-time.After(200 * time.Millisecond):
		}
		setMaster(t, state, 2, "m2:3306")
		select {
		case rec := <-done:
			got := decodeBody[MasterResponse](t, rec.Body.Bytes())
			if rec.Code != 200 || got.Index != 2 || got.Master != "m2:3306" {
				t.Errorf("%d %+v, want m2 at index 2", rec.Code, got)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the change did not wake the long poll")
		}
	})
	t.Run("wait expires with the current state", func(t *testing.T) {
		rec := do(h, "GET", "/v1/clusters/app1/master?index=2&wait=10ms", "", nil)
		if got := decodeBody[MasterResponse](t, rec.Body.Bytes()); rec.Code != 200 || got.Index != 2 {
			t.Errorf("%d %+v, want index 2", rec.Code, got)
		}
	})
	for _, q := range []string{"index=x&wait=1s", "index=-1", "index=1&wait=soon", "index=1&wait=-1s"} {
		if rec := do(h, "GET", "/v1/clusters/app1/master?"+q, "", nil); rec.Code != 400 {
			t.Errorf("?%s: %d, want 400", q, rec.Code)
		}
	}
}

func TestMasterWaitParams_Bounded(t *testing.T) {
	req := httptest.NewRequest("GET", "/v1/clusters/app1/master?index=3&wait=10m", nil)
	wait, idx, ok, err := masterWaitParams(req)
	if err != nil || !ok || idx != 3 || wait != MaxMasterWait {
		t.Errorf("got wait %s index %d ok %t err %v, want %s 3", wait, idx, ok, err, MaxMasterWait)
	}
	req = httptest.NewRequest("GET", "/v1/clusters/app1/master?wait=10s", nil)
	if wait, _, ok, err := masterWaitParams(req); ok || err != nil {
		t.Errorf("wait without index: %s ok=%t err=%v, want no wait", wait, ok, err)
	}
}
