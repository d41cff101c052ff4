package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumha/quorumha/consensus"
	"github.com/quorumha/quorumha/fsm"
)

// fakeRaft is a consensus node whose leadership the test controls.
type fakeRaft struct {
	mu         sync.Mutex
	isLeader   bool
	leaderID   string
	leaderAddr string
	status     consensus.Status
	applies    [][]byte
	applyErr   error
	joinErr    error
	removeErr  error
	joins      []JoinRequest
	removed    []string
}

func (f *fakeRaft) Apply(_ context.Context, cmd []byte) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.applyErr != nil {
		return nil, f.applyErr
	}
	f.applies = append(f.applies, append([]byte(nil), cmd...))
	return uint64(len(f.applies)), nil
}

func (f *fakeRaft) IsLeader() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.isLeader
}

func (f *fakeRaft) Leader() (string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leaderID, f.leaderAddr
}

func (f *fakeRaft) setLeader(id, addr string, self bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leaderID, f.leaderAddr, f.isLeader = id, addr, self
	f.status.LeaderID, f.status.LeaderAddr = id, addr
	f.status.State = "Follower"
	if self {
		f.status.State = "Leader"
	}
}

func (f *fakeRaft) Term() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status.Term
}

func (f *fakeRaft) Join(_ context.Context, id, addr string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.joinErr != nil {
		return f.joinErr
	}
	f.joins = append(f.joins, JoinRequest{ID: id, RaftAddr: addr})
	return nil
}

func (f *fakeRaft) Remove(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.removeErr != nil {
		return f.removeErr
	}
	f.removed = append(f.removed, id)
	return nil
}

func (f *fakeRaft) Status() consensus.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

func (f *fakeRaft) applied() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.applies...)
}

// fakeState is an FSM read view backed by maps.
type fakeState struct {
	mu       sync.Mutex
	records  []fsm.Record // newest first
	clusters map[string]fsm.ClusterState
	nodes    map[string]fsm.NodeMeta
	index    uint64
}

func (f *fakeState) Record(id uint64) (fsm.Record, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.records {
		if r.ID == id {
			return r, true
		}
	}
	return fsm.Record{}, false
}

func (f *fakeState) History(cluster string, limit int) []fsm.Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fsm.Record
	for _, r := range f.records {
		if (cluster == "" || r.Cluster == cluster) && len(out) < limit {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeState) Cluster(name string) (fsm.ClusterState, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.clusters[name]
	return c, ok
}

func (f *fakeState) Clusters() []fsm.ClusterState {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fsm.ClusterState
	for _, name := range []string{"app1", "app2", "app3"} {
		if c, ok := f.clusters[name]; ok {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeState) Node(id string) (fsm.NodeMeta, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.nodes[id]
	return n, ok
}

func (f *fakeState) setNode(n fsm.NodeMeta) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodes[n.ID] = n
}

func (f *fakeState) AppliedIndex() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.index
}

func (f *fakeState) RecordCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.records)
}

// fakeView is a detector view with fixed content.
type fakeView struct {
	known map[string]bool
	// masters is what the detector watches as each cluster's master; the
	// API must never name it (only the replicated state's).
	masters map[string]string
	// dead holds, per cluster, the address the assessment confirms dead.
	dead map[string]string
}

func (v *fakeView) KnownCluster(name string) bool { return v.known[name] }
func (v *fakeView) ClusterNames() []string {
	var out []string
	for _, n := range []string{"app1", "app2", "app3", "live"} {
		if v.known[n] {
			out = append(out, n)
		}
	}
	return out
}
func (v *fakeView) ClusterInfo(name string) (ClusterTopology, bool) {
	if !v.known[name] {
		return ClusterTopology{}, false
	}
	return ClusterTopology{WatchedMaster: "probe"}, true
}
func (v *fakeView) MasterDead(name, addr string) bool {
	d, ok := v.dead[name]
	return ok && d == addr
}

var testNow = time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)

// fixture is a server for node c1 with a three-node configuration where c1
// leads, one known cluster (app1, master db1:3306) and two records.
type fixture struct {
	srv   *Server
	raft  *fakeRaft
	state *fakeState
}

func newFixture(t testing.TB, cfg func(*Config), deps func(*Deps)) fixture {
	t.Helper()
	r := &fakeRaft{status: consensus.Status{
		ID: "c1", RaftAddr: "10.0.1.10:7000", Term: 7, CommitIndex: 42, AppliedIndex: 42, LastIndex: 42,
		LeaderChanges: 3,
		Peers: []consensus.Peer{
			{ID: "c1", RaftAddr: "10.0.1.10:7000", Suffrage: "voter", Leader: true},
			{ID: "c2", RaftAddr: "10.0.2.10:7000", Suffrage: "voter"},
			{ID: "c3", RaftAddr: "10.0.3.10:7000", Suffrage: "voter"},
		},
	}}
	r.setLeader("c1", "10.0.1.10:7000", true)
	st := &fakeState{
		index: 40,
		records: []fsm.Record{
			{ID: 30, Cluster: "app1", Kind: fsm.KindFailover, Trigger: "automatic", OldMaster: "db1:3306", NewMaster: "db2:3306", Result: fsm.ResultSuccess},
			{ID: 12, Cluster: "app2", Kind: fsm.KindDetection, Trigger: "automatic", Result: fsm.ResultDetected},
		},
		clusters: map[string]fsm.ClusterState{
			"app1": {Name: "app1", Master: "db1:3306"},
			"app2": {Name: "app2"},
		},
		nodes: map[string]fsm.NodeMeta{
			"c1": {ID: "c1", HTTPAddr: "10.0.1.10:8080", Zone: "zone-a"},
		},
	}
	c := Config{NodeID: "c1", Zone: "zone-a", HTTPAddr: "10.0.1.10:8080", ForwardHoldTimeout: 200 * time.Millisecond}
	if cfg != nil {
		cfg(&c)
	}
	d := Deps{Raft: r, State: st, Now: func() time.Time { return testNow }}
	if deps != nil {
		deps(&d)
	}
	srv, err := New(c, d)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return fixture{srv: srv, raft: r, state: st}
}

// do runs one request through the handler.
func do(h http.Handler, method, path, body string, header map[string]string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	// As the CLI does: JSON bodies say so, and the Host is the address
	// the controller listens on (httptest's example.com is a DNS name the
	// rebinding check refuses when no token is set).
	req.Host = "10.0.1.10:8080"
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}
