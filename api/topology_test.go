package api

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/quorumha/quorumha/fsm"
)

// fsmRaft applies commands to a real FSM, so the API's topology writes are
// tested against the FSM's rules.
type fsmRaft struct {
	*fakeRaft
	mu    sync.Mutex
	f     *fsm.FSM
	index uint64
}

func (r *fsmRaft) Apply(_ context.Context, cmd []byte) (any, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.index++
	resp := r.f.Apply(&raft.Log{Index: r.index, Term: 1, Type: raft.LogCommand, Data: cmd})
	if err, ok := resp.(error); ok {
		return nil, err
	}
	return resp, nil
}

func TestTopologyEndpoints(t *testing.T) {
	state := fsm.New(nil)
	var fr *fsmRaft
	f := newFixture(t, nil, func(d *Deps) {
		fr = &fsmRaft{fakeRaft: d.Raft.(*fakeRaft), f: state}
		d.Raft, d.State = fr, state
	})
	h := f.srv.Handler()
	steps := []struct {
		name, method, path, body string
		code                     int
		has                      string // in the body
	}{
		{"add", "POST", "/v1/clusters/app9/definition",
			`{"op":"add","user":"monitor","password_file":"/etc/q/app9.pass","instances":[{"address":"10.0.9.1:3306"},{"address":"10.0.9.2:3306","candidate_master":true}]}`, 200, `"app9"`},
		{"add again", "POST", "/v1/clusters/app9/definition", `{"op":"add","user":"m","instances":[{"address":"h:1"}]}`, 409, "already defined"},
		{"add without user", "POST", "/v1/clusters/x/definition", `{"op":"add","instances":[{"address":"h:1"}]}`, 400, `cluster \"x\": user`},
		{"add bad address", "POST", "/v1/clusters/x/definition", `{"op":"add","user":"m","instances":[{"address":"h"}]}`, 400, `\"h\"`},
		{"unknown field", "POST", "/v1/clusters/app9/definition", `{"op":"set","password":"secret"}`, 400, "password"},
		{"set nothing", "POST", "/v1/clusters/app9/definition", `{"op":"set"}`, 400, "nothing to set"},
		{"set auto_add", "POST", "/v1/clusters/app9/definition", `{"op":"set","auto_add":true}`, 200, `"auto_add":true`},
		{"instance add", "POST", "/v1/clusters/app9/instances", `{"op":"add","address":"10.0.9.3:3306","no_master":true,"by":"alice"}`, 200, `"added_by":"alice"`},
		{"instance add twice", "POST", "/v1/clusters/app9/instances", `{"op":"add","address":"10.0.9.3:3306"}`, 409, "10.0.9.3:3306"},
		{"instance bad port", "POST", "/v1/clusters/app9/instances", `{"op":"add","address":"10.0.9.4:0"}`, 400, `port \"0\"`},
		{"instance both flags", "POST", "/v1/clusters/app9/instances", `{"op":"set","address":"10.0.9.3:3306","no_master":true,"candidate_master":true}`, 400, "both true"},
		{"instance of unknown cluster", "POST", "/v1/clusters/nope/instances", `{"op":"add","address":"h:1"}`, 404, `\"nope\"`},
		{"instance set", "POST", "/v1/clusters/app9/instances", `{"op":"set","address":"10.0.9.3:3306","no_master":false,"candidate_master":true}`, 200, ""},
		{"instance remove", "DELETE", "/v1/clusters/app9/instances/10.0.9.3:3306", "", 200, ""},
		{"instance remove unknown", "DELETE", "/v1/clusters/app9/instances/10.0.9.3:3306", "", 404, "10.0.9.3:3306"},
		{"read", "GET", "/v1/topology", "", 200, `"password_file":"/etc/q/app9.pass"`},
		{"cluster remove", "DELETE", "/v1/clusters/app9/definition", "", 200, `"removed":["app9"]`},
	}
	for _, s := range steps {
		rec := do(h, s.method, s.path, s.body, nil)
		if rec.Code != s.code || !strings.Contains(rec.Body.String(), s.has) {
			t.Errorf("%s: %d %s; want %d containing %s", s.name, rec.Code, rec.Body, s.code, s.has)
		}
	}
	// Refused requests changed nothing: the FSM saw only the accepted ones
	// plus the ones it refused itself (409/404 above).
	var resp TopologyResponse
	rec := do(h, "GET", "/v1/topology", "", nil)
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Clusters) != 0 || len(resp.Removed) != 1 {
		t.Errorf("topology = %+v", resp)
	}
}

func TestTopology_RemoveMasterRefused(t *testing.T) {
	state := fsm.New(nil)
	f := newFixture(t, nil, func(d *Deps) {
		d.Raft, d.State = &fsmRaft{fakeRaft: d.Raft.(*fakeRaft), f: state}, state
	})
	h := f.srv.Handler()
	for _, s := range []struct{ method, path, body string }{
		{"POST", "/v1/clusters/app9/definition", `{"op":"add","user":"m","instances":[{"address":"h:1"},{"address":"h:2"}]}`},
	} {
		if rec := do(h, s.method, s.path, s.body, nil); rec.Code != 200 {
			t.Fatalf("%s: %d %s", s.path, rec.Code, rec.Body)
		}
	}
	buf, _ := fsm.Encode(fsm.SetMasterType, fsm.SetMaster{Cluster: "app9", Master: "h:1", At: testNow})
	if _, err := f.srv.raft.Apply(context.Background(), buf); err != nil {
		t.Fatal(err)
	}
	rec := do(h, "DELETE", "/v1/clusters/app9/instances/h:1", "", nil)
	if rec.Code != 409 || !strings.Contains(rec.Body.String(), "current master") {
		t.Errorf("remove master: %d %s", rec.Code, rec.Body)
	}
}
