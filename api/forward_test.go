package api

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/quorumha/quorumha/consensus"
	"github.com/quorumha/quorumha/fsm"
)

// recordingLeader is a fake leader API that remembers what it received.
type recordingLeader struct {
	mu       sync.Mutex
	requests []*http.Request
	bodies   []string
	answer   func(n int, w http.ResponseWriter) // n is the 1-based request count
}

func (l *recordingLeader) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	l.mu.Lock()
	l.requests = append(l.requests, r)
	l.bodies = append(l.bodies, string(body))
	n := len(l.requests)
	l.mu.Unlock()
	if l.answer != nil {
		l.answer(n, w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, `{"leader":"answered"}`)
}

func (l *recordingLeader) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.requests)
}

// followerFixture is c1 as a follower of c2, whose API is at leaderURL.
func followerFixture(t *testing.T, leaderURL string, cfg func(*Config)) fixture {
	t.Helper()
	f := newFixture(t, cfg, nil)
	f.raft.setLeader("c2", "10.0.2.10:7000", false)
	if leaderURL != "" {
		f.state.setNode(fsm.NodeMeta{ID: "c2", HTTPAddr: leaderURL})
	}
	return f
}

func TestForward_ToLeader(t *testing.T) {
	leader := &recordingLeader{}
	ts := httptest.NewServer(leader)
	defer ts.Close()
	f := followerFixture(t, ts.URL, func(c *Config) { c.Token = "s3cret" })

	body := `{"by":"bob"}`
	rec := do(f.srv.Handler(), "POST", "/v1/clusters/app1/ack?x=1", body,
		map[string]string{"Authorization": "Bearer s3cret", "Content-Type": "application/json"})
	if rec.Code != 200 || rec.Body.String() != `{"leader":"answered"}` {
		t.Fatalf("status %d body %q", rec.Code, rec.Body)
	}
	if got := rec.Header().Get(ForwardedToHeader); got != "c2" {
		t.Fatalf("forwarded-to %q", got)
	}
	if leader.count() != 1 {
		t.Fatalf("leader got %d requests", leader.count())
	}
	req := leader.requests[0]
	if req.Method != "POST" || req.URL.RequestURI() != "/v1/clusters/app1/ack?x=1" || leader.bodies[0] != body {
		t.Fatalf("leader got %s %s %q", req.Method, req.URL.RequestURI(), leader.bodies[0])
	}
	if req.Header.Get(ForwardedHeader) != "c1" || req.Header.Get("Authorization") != "Bearer s3cret" {
		t.Fatalf("leader headers %v", req.Header)
	}
	if n := len(f.raft.applied()); n != 0 {
		t.Fatalf("follower applied %d commands", n)
	}
}

func TestForward_BareHostPort(t *testing.T) {
	leader := &recordingLeader{}
	ts := httptest.NewServer(leader)
	defer ts.Close()
	f := followerFixture(t, ts.Listener.Addr().String(), nil)
	rec := do(f.srv.Handler(), "DELETE", "/v1/raft/peers/c3", "", nil)
	if rec.Code != 200 || leader.count() != 1 {
		t.Fatalf("status %d, leader requests %d", rec.Code, leader.count())
	}
}

func TestForward_LoopGuard(t *testing.T) {
	f := followerFixture(t, "http://127.0.0.1:1", nil)
	rec := do(f.srv.Handler(), "POST", "/v1/clusters/app1/ack", `{}`, map[string]string{ForwardedHeader: "c3"})
	if rec.Code != 503 {
		t.Fatalf("status %d, want 503: %s", rec.Code, rec.Body)
	}
	if rec.Header().Get(retryHeader) == "" {
		t.Fatal("loop-guard answer lacks the retry header")
	}
	e := decodeBody[ErrorResponse](t, rec.Body.Bytes())
	if e.Code != 503 || e.Error == "" {
		t.Fatalf("body %+v", e)
	}
}

func TestForward_HoldTimeoutWithoutLeader(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f fixture)
	}{
		{"no leader", func(f fixture) { f.raft.setLeader("", "", false) }},
		{"leader without http addr", func(f fixture) {}},
		{"leader unreachable", func(f fixture) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			_ = ln.Close()
			f.state.setNode(fsm.NodeMeta{ID: "c2", HTTPAddr: addr})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hold := 150 * time.Millisecond
			f := followerFixture(t, "", func(c *Config) { c.ForwardHoldTimeout = hold })
			tt.setup(f)
			start := time.Now()
			rec := do(f.srv.Handler(), "POST", "/v1/clusters/app1/ack", `{}`, nil)
			elapsed := time.Since(start)
			if rec.Code != 503 {
				t.Fatalf("status %d, want 503: %s", rec.Code, rec.Body)
			}
			if elapsed < hold || elapsed > hold+2*time.Second {
				t.Fatalf("answered after %s, want about %s", elapsed, hold)
			}
		})
	}
}

func TestForward_LeaderAppearsDuringHold(t *testing.T) {
	leader := &recordingLeader{}
	ts := httptest.NewServer(leader)
	defer ts.Close()
	f := followerFixture(t, "", func(c *Config) { c.ForwardHoldTimeout = 5 * time.Second })
	f.raft.setLeader("", "", false)
	go func() {
		time.Sleep(50 * time.Millisecond)
		f.state.setNode(fsm.NodeMeta{ID: "c2", HTTPAddr: ts.URL})
		f.raft.setLeader("c2", "10.0.2.10:7000", false)
	}()
	rec := do(f.srv.Handler(), "POST", "/v1/clusters/app1/ack", `{}`, nil)
	if rec.Code != 200 || leader.count() != 1 {
		t.Fatalf("status %d, leader requests %d: %s", rec.Code, leader.count(), rec.Body)
	}
}

func TestForward_BecomesLeaderDuringHold(t *testing.T) {
	f := followerFixture(t, "", func(c *Config) { c.ForwardHoldTimeout = 5 * time.Second })
	f.raft.setLeader("", "", false)
	go func() {
		time.Sleep(50 * time.Millisecond)
		f.raft.setLeader("c1", "10.0.1.10:7000", true)
	}()
	rec := do(f.srv.Handler(), "POST", "/v1/clusters/app1/ack", `{}`, nil)
	if rec.Code != 200 || len(f.raft.applied()) != 1 {
		t.Fatalf("status %d, applies %d: %s", rec.Code, len(f.raft.applied()), rec.Body)
	}
}

func TestForward_RetriesAfterLeadershipChanged(t *testing.T) {
	leader := &recordingLeader{answer: func(n int, w http.ResponseWriter) {
		if n == 1 {
			w.Header().Set(retryHeader, "leadership-changed")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}}
	ts := httptest.NewServer(leader)
	defer ts.Close()
	f := followerFixture(t, ts.URL, func(c *Config) { c.ForwardHoldTimeout = 5 * time.Second })
	rec := do(f.srv.Handler(), "POST", "/v1/clusters/app1/ack", `{}`, nil)
	if rec.Code != 200 || leader.count() != 2 {
		t.Fatalf("status %d, leader requests %d", rec.Code, leader.count())
	}
}

func TestForward_RelaysLeaderErrors(t *testing.T) {
	// A real leader server behind a real follower server: the leader's 400
	// (and its JSON body) reach the client unchanged, nothing applied on c1.
	lf := newFixture(t, nil, nil)
	lf.raft.status.ID = "c2"
	lsrv, err := New(Config{NodeID: "c2"}, Deps{Raft: lf.raft, State: lf.state})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(lsrv.Handler())
	defer ts.Close()
	f := followerFixture(t, ts.URL, nil)

	rec := do(f.srv.Handler(), "POST", "/v1/clusters/app1/ack", `{"nope":1}`, nil)
	if rec.Code != 400 {
		t.Fatalf("status %d, want 400: %s", rec.Code, rec.Body)
	}
	if e := decodeBody[ErrorResponse](t, rec.Body.Bytes()); e.Code != 400 {
		t.Fatalf("body %+v", e)
	}
	rec = do(f.srv.Handler(), "POST", "/v1/clusters/app1/ack", `{"by":"carol"}`, nil)
	if rec.Code != 200 || len(lf.raft.applied()) != 1 || len(f.raft.applied()) != 0 {
		t.Fatalf("status %d, leader applies %d, follower applies %d", rec.Code, len(lf.raft.applied()), len(f.raft.applied()))
	}
}

func TestForward_AfterNotLeaderOnApply(t *testing.T) {
	leader := &recordingLeader{}
	ts := httptest.NewServer(leader)
	defer ts.Close()
	tests := []struct {
		name      string
		header    map[string]string
		applyErr  error
		status    int
		forwarded int
		retry     bool
	}{
		{"lost before apply: forwarded", nil, consensus.ErrNotLeader, 200, 1, false},
		{"lost before apply, already forwarded", map[string]string{ForwardedHeader: "c3"}, consensus.ErrNotLeader, 503, 0, true},
		{"lost during apply: not retried", nil, fmt.Errorf("%w: %w (%w)", consensus.ErrOutcomeUnknown, consensus.ErrNotLeader, raft.ErrLeadershipLost), 503, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := leader.count()
			f := followerFixture(t, ts.URL, nil)
			f.raft.mu.Lock()
			f.raft.isLeader = true // raft still says leader; Apply knows better
			f.raft.applyErr = tt.applyErr
			f.raft.mu.Unlock()
			rec := do(f.srv.Handler(), "POST", "/v1/clusters/app1/ack", `{}`, tt.header)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if got := leader.count() - before; got != tt.forwarded {
				t.Fatalf("forwarded %d times, want %d", got, tt.forwarded)
			}
			if got := rec.Header().Get(retryHeader) != ""; got != tt.retry {
				t.Fatalf("retry header %v, want %v", got, tt.retry)
			}
		})
	}
}
