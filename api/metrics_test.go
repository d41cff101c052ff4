package api

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetrics_ExposesNamedMetrics(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Registry = prometheus.NewRegistry() }, nil)
	f.raft.mu.Lock()
	f.raft.status.LastContact = time.Now().Add(-2 * time.Second)
	f.raft.mu.Unlock()
	h := f.srv.Handler()
	do(h, "GET", "/v1/leader", "", nil)
	do(h, "POST", "/v1/clusters/app1/ack", `{}`, nil)

	rec := do(h, "GET", "/metrics", "", nil)
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	body := rec.Body.String()
	for _, want := range []string{
		`quorumha_raft_state{state="Leader"} 1`,
		`quorumha_raft_state{state="Follower"} 0`,
		`quorumha_raft_term 7`,
		`quorumha_raft_commit_index 42`,
		`quorumha_raft_applied_index 42`,
		`quorumha_raft_last_contact_seconds 0`,
		`quorumha_raft_leader_changes_total 3`,
		`quorumha_fsm_applied_index 40`,
		`quorumha_fsm_records 2`,
		`quorumha_http_request_duration_seconds_count{code="200",route="GET /v1/leader"} 1`,
		`quorumha_http_request_duration_seconds_count{code="200",route="POST /v1/clusters/{name}/ack"} 1`,
		`quorumha_api_apply_duration_seconds_count{command="Ack",result="ok"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestMetrics_FollowerLastContact(t *testing.T) {
	f := newFixture(t, nil, nil)
	f.raft.setLeader("c2", "x", false)
	f.raft.mu.Lock()
	f.raft.status.LastContact = time.Now().Add(-2 * time.Second)
	f.raft.mu.Unlock()
	body := do(f.srv.Handler(), "GET", "/metrics", "", nil).Body.String()
	if !strings.Contains(body, "quorumha_raft_last_contact_seconds 2") {
		t.Fatalf("last contact age missing:\n%s", body)
	}
	if !strings.Contains(body, "go_goroutines") {
		t.Fatal("default registry lacks the Go collector")
	}
}

func TestNew_Validation(t *testing.T) {
	f := newFixture(t, nil, nil)
	tests := []struct {
		name string
		cfg  Config
		deps Deps
	}{
		{"no raft", Config{NodeID: "c1"}, Deps{State: f.state}},
		{"no state", Config{NodeID: "c1"}, Deps{Raft: f.raft}},
		{"no node id", Config{}, Deps{Raft: f.raft, State: f.state}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg, tt.deps); err == nil {
				t.Fatal("New accepted an invalid setup")
			}
		})
	}
}

func TestNew_SharedRegistryTwiceFails(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := newFixture(t, func(c *Config) { c.Registry = reg }, nil)
	if _, err := New(Config{NodeID: "c1", Registry: reg}, Deps{Raft: f.raft, State: f.state}); err == nil {
		t.Fatal("second server registered the same metrics")
	}
}

func TestServe_GracefulShutdown(t *testing.T) {
	f := newFixture(t, nil, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.srv.Serve(ctx, ln) }()

	resp, err := http.Get(fmt.Sprintf("http://%s/healthz", ln.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz status %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if resp, err := http.Get(fmt.Sprintf("http://%s/healthz", ln.Addr())); err == nil {
		_ = resp.Body.Close()
		t.Fatal("server still answers after shutdown")
	}
}

func BenchmarkLeader(b *testing.B) {
	f := newFixture(b, nil, nil)
	h := f.srv.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := do(h, "GET", "/v1/leader", "", nil)
			if rec.Code != 200 {
				b.Errorf("status %d", rec.Code)
				return
			}
		}
	})
}
