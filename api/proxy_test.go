package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/fsm"
)

// fakeReplicas is a replica view with fixed observations.
type fakeReplicas struct {
	configured map[string]bool // address -> configured in app1
	health     map[string]ReplicaHealth
}

func (f *fakeReplicas) Configured(cluster, addr string) bool {
	return cluster == "app1" && f.configured[addr]
}

func (f *fakeReplicas) ReplicaHealth(_, addr string) ReplicaHealth { return f.health[addr] }

func lag(n int64) *int64 { return &n }

func healthyReplica() ReplicaHealth {
	return ReplicaHealth{Observed: true, Reachable: true, IORunning: "Yes", SQLRunning: true, SecondsBehind: lag(0), Source: "db1:3306",
		ObservedAt: testNow.Add(-time.Second), LagLimit: 10 * time.Second, MaxAge: 5 * time.Second}
}

// candidate is a controller during a leader election: raft forgot the
// leader's name when it turned candidate; it last heard from it ago.
func candidate(ago time.Duration) func(fixture) {
	return func(f fixture) {
		f.raft.setLeader("", "", false)
		f.raft.mu.Lock()
		f.raft.status.State = "Candidate"
		f.raft.status.LastContact = testNow.Add(-ago)
		f.raft.mu.Unlock()
	}
}

func TestProxyHealth_Primary(t *testing.T) {
	view := &fakeView{known: map[string]bool{"app1": true}}
	stale := func(f fixture) { // a follower cut off for 6s (window 5s)
		f.raft.setLeader("c2", "10.0.2.10:7000", false)
		f.raft.mu.Lock()
		f.raft.status.LastContact = testNow.Add(-6 * time.Second)
		f.raft.mu.Unlock()
	}
	fresh := func(f fixture) {
		f.raft.setLeader("c2", "10.0.2.10:7000", false)
		f.raft.mu.Lock()
		f.raft.status.LastContact = testNow.Add(-time.Second)
		f.raft.mu.Unlock()
	}
	openFailover := func(f fixture) {
		f.state.mu.Lock()
		f.state.records = append([]fsm.Record{{ID: 41, Cluster: "app1", Kind: fsm.KindFailover, Trigger: "automatic", OldMaster: "db1:3306"}}, f.state.records...)
		f.state.mu.Unlock()
	}
	election := candidate(time.Second)
	electionTooLong := candidate(6 * time.Second)
	openSwitchover := func(f fixture) {
		f.state.mu.Lock()
		f.state.records = append([]fsm.Record{{ID: 41, Cluster: "app1", Kind: fsm.KindSwitchover, Trigger: "switchover", OldMaster: "db1:3306"}}, f.state.records...)
		f.state.mu.Unlock()
	}
	tests := []struct {
		name   string
		view   *fakeView
		setup  func(fixture)
		path   string
		status int
	}{
		{"the recorded master", view, nil, "/v1/clusters/app1/primary/db1:3306", 200},
		{"address case-insensitive", view, nil, "/v1/clusters/app1/primary/DB1:3306", 200},
		{"a replica", view, nil, "/v1/clusters/app1/primary/db2:3306", 503},
		{"another port", view, nil, "/v1/clusters/app1/primary/db1:3307", 503},
		{"follower with fresh contact", view, fresh, "/v1/clusters/app1/primary/db1:3306", 200},
		{"follower cut off", view, stale, "/v1/clusters/app1/primary/db1:3306", 503},
		{"election under way, leader heard 1s ago", view, election, "/v1/clusters/app1/primary/db1:3306", 200},
		{"election under way, leader heard 6s ago", view, electionTooLong, "/v1/clusters/app1/primary/db1:3306", 503},
		{"no leader", view, func(f fixture) { f.raft.setLeader("", "", false) }, "/v1/clusters/app1/primary/db1:3306", 503},
		{"open failover", view, openFailover, "/v1/clusters/app1/primary/db1:3306", 503},
		{"open switchover keeps the old master", view, openSwitchover, "/v1/clusters/app1/primary/db1:3306", 200},
		{"master assessed dead", &fakeView{known: view.known, dead: map[string]string{"app1": "db1:3306"}}, nil, "/v1/clusters/app1/primary/db1:3306", 503},
		{"no master recorded", &fakeView{known: map[string]bool{"app2": true}}, nil, "/v1/clusters/app2/primary/db1:3306", 503},
		{"unknown cluster", view, nil, "/v1/clusters/nope/primary/db1:3306", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil, func(d *Deps) { d.Clusters = tt.view })
			if tt.setup != nil {
				tt.setup(f)
			}
			rec := do(f.srv.Handler(), "GET", tt.path, "", nil)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status == 200 {
				got := decodeBody[ProxyHealthResponse](t, rec.Body.Bytes())
				if got.Role != "primary" || got.Cluster != "app1" {
					t.Fatalf("got %+v", got)
				}
			}
		})
	}
}

func TestProxyHealth_Replica(t *testing.T) {
	view := &fakeView{known: map[string]bool{"app1": true}}
	with := func(mut func(*ReplicaHealth)) *fakeReplicas {
		h := healthyReplica()
		if mut != nil {
			mut(&h)
		}
		return &fakeReplicas{
			configured: map[string]bool{"db1:3306": true, "db2:3306": true},
			health:     map[string]ReplicaHealth{"db2:3306": h, "db1:3306": healthyReplica()},
		}
	}
	stale := func(f fixture) {
		f.raft.setLeader("c2", "10.0.2.10:7000", false)
		f.raft.mu.Lock()
		f.raft.status.LastContact = testNow.Add(-6 * time.Second)
		f.raft.mu.Unlock()
	}
	tests := []struct {
		name   string
		reps   ReplicaView
		setup  func(fixture)
		path   string
		status int
	}{
		{"healthy replica", with(nil), nil, "/v1/clusters/app1/replica/db2:3306", 200},
		{"the recorded master, even though it looks like a replica", with(nil), nil, "/v1/clusters/app1/replica/db1:3306", 503},
		{"not configured", with(nil), nil, "/v1/clusters/app1/replica/db9:3306", 503},
		{"no replica view", nil, nil, "/v1/clusters/app1/replica/db2:3306", 503},
		{"follower cut off", with(nil), stale, "/v1/clusters/app1/replica/db2:3306", 503},
		{"election under way, leader heard 1s ago", with(nil), candidate(time.Second), "/v1/clusters/app1/replica/db2:3306", 200},
		{"election under way, leader heard 6s ago", with(nil), candidate(6 * time.Second), "/v1/clusters/app1/replica/db2:3306", 503},
		{"not observed", with(func(h *ReplicaHealth) { h.Observed = false }), nil, "/v1/clusters/app1/replica/db2:3306", 503},
		{"unreachable", with(func(h *ReplicaHealth) { h.Reachable = false }), nil, "/v1/clusters/app1/replica/db2:3306", 503},
		{"IO connecting", with(func(h *ReplicaHealth) { h.IORunning = "Connecting" }), nil, "/v1/clusters/app1/replica/db2:3306", 503},
		{"SQL stopped", with(func(h *ReplicaHealth) { h.SQLRunning = false }), nil, "/v1/clusters/app1/replica/db2:3306", 503},
		{"lag NULL", with(func(h *ReplicaHealth) { h.SecondsBehind = nil }), nil, "/v1/clusters/app1/replica/db2:3306", 503},
		{"lag at the limit", with(func(h *ReplicaHealth) { h.SecondsBehind = lag(10) }), nil, "/v1/clusters/app1/replica/db2:3306", 200},
		{"lag above the limit", with(func(h *ReplicaHealth) { h.SecondsBehind = lag(11) }), nil, "/v1/clusters/app1/replica/db2:3306", 503},
		{"observation too old", with(func(h *ReplicaHealth) { h.ObservedAt = testNow.Add(-6 * time.Second) }), nil, "/v1/clusters/app1/replica/db2:3306", 503},
		{"replicates from another server", with(func(h *ReplicaHealth) { h.Source = "db3:3306" }), nil, "/v1/clusters/app1/replica/db2:3306", 503},
		{"from the recorded master under another name", with(func(h *ReplicaHealth) { h.Source, h.SourceServerOf = "db1.example:3306", "db1:3306" }), nil, "/v1/clusters/app1/replica/db2:3306", 200},
		{"same server as a watched master that is not the recorded one", with(func(h *ReplicaHealth) { h.Source, h.SourceServerOf = "db9.example:3306", "db9:3306" }), nil, "/v1/clusters/app1/replica/db2:3306", 503},
		{"source address case-insensitive", with(func(h *ReplicaHealth) { h.Source = "DB1:3306" }), nil, "/v1/clusters/app1/replica/db2:3306", 200},
		{"no master recorded", with(nil), func(f fixture) {
			f.state.mu.Lock()
			f.state.clusters["app1"] = fsm.ClusterState{Name: "app1"}
			f.state.mu.Unlock()
		}, "/v1/clusters/app1/replica/db2:3306", 503},
		{"unknown cluster", with(nil), nil, "/v1/clusters/nope/replica/db2:3306", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil, func(d *Deps) {
				d.Clusters = view
				d.Replicas = tt.reps
			})
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

// TestProxyHealth_ReadToken: with a read token set, the checks need it
// (HAProxy sends it with `http-check send ... hdr Authorization`), and the
// request HAProxy sends (no Host a browser would send, no Origin) passes.
func TestProxyHealth_ReadToken(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Token, c.ReadToken = "w-token", "r-token" }, func(d *Deps) {
		d.Clusters = &fakeView{known: map[string]bool{"app1": true}}
	})
	path := "/v1/clusters/app1/primary/db1:3306"
	if rec := do(f.srv.Handler(), "GET", path, "", nil); rec.Code != http.StatusUnauthorized {
		t.Fatalf("without token: %d, want 401", rec.Code)
	}
	if rec := do(f.srv.Handler(), "GET", path, "", map[string]string{"Authorization": "Bearer nope"}); rec.Code != http.StatusForbidden {
		t.Fatalf("wrong token: %d, want 403", rec.Code)
	}
	// What HAProxy 2.6 sends for `http-check send meth GET uri ... hdr
	// Authorization "Bearer TOKEN"`: HTTP/1.0 unless ver says otherwise,
	// no Host header.
	req := httptest.NewRequest("GET", path, nil)
	req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.0", 1, 0
	req.Host = ""
	req.Header.Set("Authorization", "Bearer r-token")
	rec := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("haproxy-like check with the read token: %d: %s", rec.Code, strings.TrimSpace(rec.Body.String()))
	}
}

func TestReplicaServes(t *testing.T) {
	h := healthyReplica()
	if err := replicaServes(h, testNow); err != nil {
		t.Fatalf("healthy: %v", err)
	}
	h.LagLimit = 0
	h.SecondsBehind = lag(100000)
	if err := replicaServes(h, testNow); err != nil {
		t.Fatalf("no lag limit: %v", err)
	}
	h.MaxAge = 0
	h.ObservedAt = testNow.Add(-time.Hour)
	if err := replicaServes(h, testNow); err != nil {
		t.Fatalf("no max age: %v", err)
	}
}
