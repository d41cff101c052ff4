package api

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/quorumha/quorumha/fsm"
)

// awaitingFixture is the leader fixture whose app1 has an open failover
// awaiting a fence (record 50), and a token for writes.
func awaitingFixture(t *testing.T, awaiting bool) (fixture, *fakeRecovery) {
	t.Helper()
	exec := &fakeRecovery{}
	f := recoveryFixture(t, exec, func(c *Config) { c.Token = "s3cret" })
	rec := fsm.Record{ID: 50, Cluster: "app1", Kind: fsm.KindFailover, Trigger: "automatic", OldMaster: "db1:3306", Result: fsm.ResultOpen}
	if awaiting {
		rec.Fence = &fsm.FenceInfo{State: fsm.FenceAwaiting, Proof: fsm.ProofNone, Reason: "db1:3306: sql: unreachable", Since: testNow, At: testNow}
	}
	f.state.mu.Lock()
	f.state.records = append([]fsm.Record{rec}, f.state.records...)
	f.state.mu.Unlock()
	return f, exec
}

var bearer = map[string]string{"Authorization": "Bearer s3cret"}

func TestFailoverUnfenced_AcceptsTheAwaitingRecord(t *testing.T) {
	f, exec := awaitingFixture(t, true)
	resp := do(f.srv.Handler(), "POST", "/v1/clusters/app1/failover", `{"unfenced":true,"by":"alice"}`, bearer)
	if resp.Code != 200 {
		t.Fatalf("status %d: %s", resp.Code, resp.Body)
	}
	got := decodeBody[FailoverResponse](t, resp.Body.Bytes())
	if got.RecordID != 50 || !strings.Contains(got.Message, "alice accepted") {
		t.Fatalf("answer %+v", got)
	}
	applied := f.raft.applied()
	if len(applied) != 1 {
		t.Fatalf("%d commands applied, want 1", len(applied))
	}
	typ, payload, _ := fsm.Decode(applied[0])
	var u fsm.FenceUpdate
	if err := json.Unmarshal(payload, &u); err != nil || typ != fsm.FenceUpdateType {
		t.Fatalf("applied %s %s: %v", typ, payload, err)
	}
	if u.RecordID != 50 || u.State != fsm.FenceAccepted || u.Proof != fsm.ProofOperator || u.By != "alice" || !u.At.Equal(testNow) {
		t.Fatalf("fence update %+v", u)
	}
	if reqs := exec.requests(); len(reqs) != 0 {
		t.Fatalf("the executor was asked for a failover: %+v", reqs)
	}
}

func TestFailoverUnfenced_Refusals(t *testing.T) {
	cases := []struct {
		name     string
		awaiting bool
		body     string
		header   map[string]string
		code     int
	}{
		{"nothing awaiting a fence", false, `{"unfenced":true,"by":"alice"}`, bearer, 409},
		{"with a target", true, `{"unfenced":true,"to":"db2:3306"}`, bearer, 400},
		{"dry run", true, `{"unfenced":true,"dry_run":true}`, bearer, 400},
		{"no token", true, `{"unfenced":true}`, nil, 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, _ := awaitingFixture(t, c.awaiting)
			resp := do(f.srv.Handler(), "POST", "/v1/clusters/app1/failover", c.body, c.header)
			if resp.Code != c.code {
				t.Fatalf("status %d, want %d: %s", resp.Code, c.code, resp.Body)
			}
			if n := len(f.raft.applied()); n != 0 {
				t.Fatalf("%d commands applied by a refused request", n)
			}
		})
	}
}

func TestClusterInfo_ShowsAwaitingFence(t *testing.T) {
	for _, awaiting := range []bool{true, false} {
		f, _ := awaitingFixture(t, awaiting)
		resp := do(f.srv.Handler(), "GET", "/v1/clusters/app1", "", nil)
		if resp.Code != 200 {
			t.Fatalf("status %d: %s", resp.Code, resp.Body)
		}
		got := decodeBody[ClusterResponse](t, resp.Body.Bytes()).Cluster.AwaitingFence
		switch {
		case awaiting && (got == nil || got.RecordID != 50 || got.Reason != "db1:3306: sql: unreachable" || !got.Since.Equal(testNow)):
			t.Fatalf("awaiting_fence = %+v", got)
		case !awaiting && got != nil:
			t.Fatalf("awaiting_fence = %+v for a record not awaiting", got)
		}
	}
}
