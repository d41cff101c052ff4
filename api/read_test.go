package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/fsm"
)

func decodeBody[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return v
}

func TestLeader_Known(t *testing.T) {
	f := newFixture(t, nil, nil)
	rec := do(f.srv.Handler(), "GET", "/v1/leader", "", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	got := decodeBody[LeaderResponse](t, rec.Body.Bytes())
	want := LeaderResponse{ID: "c1", RaftAddr: "10.0.1.10:7000", HTTPAddr: "10.0.1.10:8080", Term: 7}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestLeader_NoHTTPAddrYet(t *testing.T) {
	f := newFixture(t, nil, nil)
	f.raft.setLeader("c2", "10.0.2.10:7000", false)
	rec := do(f.srv.Handler(), "GET", "/v1/leader", "", nil)
	got := decodeBody[LeaderResponse](t, rec.Body.Bytes())
	if rec.Code != http.StatusOK || got.ID != "c2" || got.HTTPAddr != "" {
		t.Fatalf("status %d, got %+v", rec.Code, got)
	}
}

func TestLeader_Unknown(t *testing.T) {
	f := newFixture(t, nil, nil)
	f.raft.setLeader("", "", false)
	rec := do(f.srv.Handler(), "GET", "/v1/leader", "", nil)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", rec.Code)
	}
	e := decodeBody[ErrorResponse](t, rec.Body.Bytes())
	if e.Code != 503 || !strings.Contains(e.Error, "no leader") {
		t.Fatalf("error body %+v", e)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
}

func TestStatus_ReportsRaftAndFSM(t *testing.T) {
	f := newFixture(t, nil, nil)
	f.state.setNode(fsm.NodeMeta{ID: "c2", HTTPAddr: "10.0.2.10:8080", Zone: "zone-b"})
	rec := do(f.srv.Handler(), "GET", "/v1/status", "", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	got := decodeBody[StatusResponse](t, rec.Body.Bytes())
	if got.ID != "c1" || got.Zone != "zone-a" || got.RaftState != "Leader" || got.Term != 7 ||
		got.CommitIndex != 42 || got.FSMAppliedIndex != 40 || got.RecordCount != 2 ||
		!got.KnownLeader || got.Leader.ID != "c1" || got.Leader.HTTPAddr != "10.0.1.10:8080" || got.LeaderChanges != 3 {
		t.Fatalf("unexpected status %+v", got)
	}
	if len(got.Peers) != 3 || got.Peers[1].HTTPAddr != "10.0.2.10:8080" || got.Peers[1].Zone != "zone-b" {
		t.Fatalf("peers %+v", got.Peers)
	}
}

func TestPeers_List(t *testing.T) {
	f := newFixture(t, nil, nil)
	rec := do(f.srv.Handler(), "GET", "/v1/raft/peers", "", nil)
	got := decodeBody[PeersResponse](t, rec.Body.Bytes())
	if rec.Code != 200 || got.LeaderID != "c1" || len(got.Peers) != 3 || got.Peers[0].HTTPAddr != "10.0.1.10:8080" {
		t.Fatalf("status %d, got %+v", rec.Code, got)
	}
}

func TestHealth_Endpoints(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		setup  func(f fixture)
		status int
	}{
		{"healthz", "/healthz", nil, 200},
		{"healthz without leader", "/healthz", func(f fixture) { f.raft.setLeader("", "", false) }, 200},
		{"readyz", "/readyz", nil, 200},
		{"readyz follower", "/readyz", func(f fixture) { f.raft.setLeader("c2", "x", false) }, 200},
		{"readyz without leader", "/readyz", func(f fixture) { f.raft.setLeader("", "", false) }, 503},
		{"readyz not a member", "/readyz", func(f fixture) {
			f.raft.mu.Lock()
			f.raft.status.Peers = f.raft.status.Peers[1:]
			f.raft.mu.Unlock()
		}, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil, nil)
			if tt.setup != nil {
				tt.setup(f)
			}
			rec := do(f.srv.Handler(), "GET", tt.path, "", nil)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
		})
	}
}

func TestHistory_Query(t *testing.T) {
	tests := []struct {
		name   string
		query  string
		status int
		ids    []uint64
	}{
		{"all", "", 200, []uint64{30, 12}},
		{"by cluster", "?cluster=app2", 200, []uint64{12}},
		{"limit", "?limit=1", 200, []uint64{30}},
		{"unknown cluster is empty", "?cluster=nope", 200, []uint64{}},
		{"limit not a number", "?limit=abc", 400, nil},
		{"limit zero", "?limit=0", 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil, nil)
			rec := do(f.srv.Handler(), "GET", "/v1/history"+tt.query, "", nil)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status != 200 {
				return
			}
			got := decodeBody[HistoryResponse](t, rec.Body.Bytes())
			if got.Index != 40 || got.Records == nil || len(got.Records) != len(tt.ids) {
				t.Fatalf("got %+v", got)
			}
			for i, id := range tt.ids {
				if got.Records[i].ID != id {
					t.Fatalf("record %d: id %d, want %d", i, got.Records[i].ID, id)
				}
			}
		})
	}
}

func TestRecord_Lookup(t *testing.T) {
	tests := []struct {
		path   string
		status int
	}{
		{"/v1/history/30", 200},
		{"/v1/history/31", 404},
		{"/v1/history/abc", 400},
		{"/v1/history/-1", 400},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			f := newFixture(t, nil, nil)
			rec := do(f.srv.Handler(), "GET", tt.path, "", nil)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status == 200 {
				got := decodeBody[RecordResponse](t, rec.Body.Bytes())
				if got.Record.ID != 30 || got.Record.NewMaster != "db2:3306" || got.Index != 40 {
					t.Fatalf("got %+v", got)
				}
			}
		})
	}
}

func TestClusters_FSMOnly(t *testing.T) {
	f := newFixture(t, nil, nil)
	rec := do(f.srv.Handler(), "GET", "/v1/clusters", "", nil)
	got := decodeBody[ClustersResponse](t, rec.Body.Bytes())
	if rec.Code != 200 || len(got.Clusters) != 2 || got.Clusters[0].Name != "app1" ||
		got.Clusters[0].Master != "db1:3306" || got.Clusters[0].State == nil || got.Clusters[0].Topology != nil {
		t.Fatalf("status %d, got %+v", rec.Code, got)
	}
}

func TestClusters_WithView(t *testing.T) {
	view := &fakeView{known: map[string]bool{"app1": true, "live": true}, masters: map[string]string{"app1": "db9:3306"}}
	f := newFixture(t, nil, func(d *Deps) { d.Clusters = view })
	rec := do(f.srv.Handler(), "GET", "/v1/clusters", "", nil)
	got := decodeBody[ClustersResponse](t, rec.Body.Bytes())
	if rec.Code != 200 || len(got.Clusters) != 3 {
		t.Fatalf("status %d, got %+v", rec.Code, got)
	}
	byName := map[string]ClusterInfo{}
	for _, c := range got.Clusters {
		byName[c.Name] = c
	}
	// The detector watches db9, the replicated state says db1: db1 is named.
	if c := byName["app1"]; c.Master != "db1:3306" || c.MasterUnavailable != "" || c.Topology == nil || c.State == nil {
		t.Fatalf("app1 %+v", c)
	}
	if c := byName["live"]; c.State != nil || c.Topology == nil {
		t.Fatalf("live %+v", c)
	}
}

func TestCluster_Lookup(t *testing.T) {
	tests := []struct {
		path   string
		status int
	}{
		{"/v1/clusters/app1", 200},
		{"/v1/clusters/nope", 404},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			f := newFixture(t, nil, nil)
			rec := do(f.srv.Handler(), "GET", tt.path, "", nil)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
		})
	}
}

func TestMaster_Sources(t *testing.T) {
	// The detector watches other masters than the replicated state records:
	// only the recorded one is ever named.
	view := &fakeView{known: map[string]bool{"app1": true, "live": true}, masters: map[string]string{"app1": "db9:3306", "live": "db7:3306"}}
	fresh := func(f fixture) { // a follower that heard from the leader 1s ago
		f.raft.setLeader("c2", "10.0.2.10:7000", false)
		f.raft.mu.Lock()
		f.raft.status.LastContact = testNow.Add(-time.Second)
		f.raft.mu.Unlock()
	}
	stale := func(f fixture) { // a follower cut off for 6s (window 5s)
		fresh(f)
		f.raft.mu.Lock()
		f.raft.status.LastContact = testNow.Add(-6 * time.Second)
		f.raft.mu.Unlock()
	}
	openFailover := func(f fixture) {
		f.state.mu.Lock()
		f.state.records = append([]fsm.Record{{ID: 41, Cluster: "app1", Kind: fsm.KindFailover, Trigger: "automatic", OldMaster: "db1:3306"}}, f.state.records...)
		f.state.mu.Unlock()
	}
	openSwitchover := func(f fixture) {
		f.state.mu.Lock()
		f.state.records = append([]fsm.Record{{ID: 41, Cluster: "app1", Kind: fsm.KindSwitchover, Trigger: "switchover", OldMaster: "db1:3306"}}, f.state.records...)
		f.state.mu.Unlock()
	}
	ok := MasterResponse{Cluster: "app1", Master: "db1:3306", Source: "fsm"}
	tests := []struct {
		name   string
		view   ClusterView
		setup  func(fixture)
		path   string
		status int
		want   MasterResponse
	}{
		{"leader, fsm master", nil, nil, "/v1/clusters/app1/master", 200, ok},
		{"leader, fsm master, detector watches another", view, nil, "/v1/clusters/app1/master", 200, ok},
		{"fsm no master", nil, nil, "/v1/clusters/app2/master", 503, MasterResponse{}},
		{"unknown", nil, nil, "/v1/clusters/nope/master", 404, MasterResponse{}},
		{"detector only, nothing recorded", view, nil, "/v1/clusters/live/master", 503, MasterResponse{}},
		{"follower, fresh contact", view, fresh, "/v1/clusters/app1/master", 200, ok},
		{"follower, stale contact", view, stale, "/v1/clusters/app1/master", 503, MasterResponse{}},
		{"follower, never heard from the leader", nil, func(f fixture) { fresh(f); f.raft.status.LastContact = time.Time{} }, "/v1/clusters/app1/master", 503, MasterResponse{}},
		{"no leader known", nil, func(f fixture) { f.raft.setLeader("", "", false) }, "/v1/clusters/app1/master", 503, MasterResponse{}},
		{"election under way, leader heard 1s ago", view, candidate(time.Second), "/v1/clusters/app1/master", 200, ok},
		{"election under way, leader heard 6s ago", view, candidate(6 * time.Second), "/v1/clusters/app1/master", 503, MasterResponse{}},
		{"open failover", view, openFailover, "/v1/clusters/app1/master", 503, MasterResponse{}},
		{"open switchover keeps the old master", view, openSwitchover, "/v1/clusters/app1/master", 200, ok},
		{"recorded master assessed dead", &fakeView{known: view.known, dead: map[string]string{"app1": "db1:3306"}}, nil, "/v1/clusters/app1/master", 503, MasterResponse{}},
		{"another instance assessed dead", &fakeView{known: view.known, dead: map[string]string{"app1": "db0:3306"}}, nil, "/v1/clusters/app1/master", 200, ok},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil, func(d *Deps) {
				if tt.view != nil {
					d.Clusters = tt.view
				}
			})
			if tt.setup != nil {
				tt.setup(f)
			}
			rec := do(f.srv.Handler(), "GET", tt.path, "", nil)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status == 200 {
				if got := decodeBody[MasterResponse](t, rec.Body.Bytes()); got != tt.want {
					t.Fatalf("got %+v, want %+v", got, tt.want)
				}
			}
			// GET /v1/clusters/{name} names the same master, or none.
			if tt.status != 404 {
				info := decodeBody[ClusterResponse](t, do(f.srv.Handler(), "GET", strings.TrimSuffix(tt.path, "/master"), "", nil).Body.Bytes()).Cluster
				if info.Master != tt.want.Master || (tt.status == 503) != (info.MasterUnavailable != "") {
					t.Fatalf("cluster view: master %q unavailable %q; want master %q", info.Master, info.MasterUnavailable, tt.want.Master)
				}
			}
		})
	}
}
