package agent

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeFencer records the fence calls; check fails while broken is set.
type fakeFencer struct {
	mu       sync.Mutex
	applies  int
	releases int
	broken   bool
	closed   bool
}

func (f *fakeFencer) apply(context.Context) ([]string, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applies++
	f.broken = false
	return []string{"read_only=ON (fake)"}, nil
}

func (f *fakeFencer) check(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.broken {
		return errors.New("read_only is off (fake)")
	}
	return nil
}

func (f *fakeFencer) release(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.releases++
	return nil
}

func (f *fakeFencer) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
}

func (f *fakeFencer) counts() (applies, releases int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applies, f.releases
}

// fencingServer runs a Server with fencing (a fake fencer) through Serve,
// so the enforcement loop runs, and returns it with a client.
func fencingServer(t *testing.T, stateFile string) (*Server, *fakeFencer, *Client) {
	t.Helper()
	d := newTestDir(t)
	if stateFile == "" {
		stateFile = filepath.Join(t.TempDir(), "fence.json")
	}
	s, err := New(Config{Listen: "127.0.0.1:0", BinlogDir: d.dir, BinlogIndex: d.index, Token: testToken,
		Fence: &FenceConfig{Socket: "/nonexistent.sock", User: "root", StateFile: stateFile, CheckInterval: 20 * time.Millisecond}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeFencer{}
	s.fence.f = fake
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		if !fake.closed {
			t.Error("the enforcement loop did not close the fencer")
		}
	})
	return s, fake, newTestClient(t, "http://"+ln.Addr().String())
}

// post sends body with the given content type and token.
func post(t *testing.T, url, contentType, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestLeaseEndpoints_Validation(t *testing.T) {
	for _, fencing := range []bool{false, true} {
		var url string
		if fencing {
			_, _, c := fencingServer(t, "")
			url = c.base
		} else {
			_, ts := newTestServer(t, newTestDir(t), nil)
			url = ts.URL
		}
		cases := []struct {
			path, ctype, token, body string
			code                     int
			want                     string
		}{
			{"/v1/lease", "application/json", "", `{"controller":"c1","voters":3,"ttl_ms":1000}`, 401, "missing bearer token"},
			{"/v1/lease", "application/json", "wrong", `{"controller":"c1","voters":3,"ttl_ms":1000}`, 401, "invalid bearer token"},
			{"/v1/lease", "text/plain", testToken, `{"controller":"c1","voters":3,"ttl_ms":1000}`, 415, "want application/json"},
			{"/v1/lease", "", testToken, `{"controller":"c1","voters":3,"ttl_ms":1000}`, 415, "want application/json"},
			{"/v1/lease", "application/json; charset=utf-8", testToken, `{"controller":"c1","voters":0,"ttl_ms":1000}`, 400, "voters=0"},
			{"/v1/lease", "application/json", testToken, `{"controller":"","voters":3,"ttl_ms":1000}`, 400, "controller: required"},
			{"/v1/lease", "application/json", testToken, `{"controller":"c1","voters":3,"ttl_ms":50}`, 400, "ttl_ms=50"},
			{"/v1/lease", "application/json", testToken, `{"controller":"c1",`, 400, "body"},
			{"/v1/fence", "text/plain", testToken, `{"controller":"c1"}`, 415, "want application/json"},
			{"/v1/fence", "application/json", testToken, `{"reason":"x"}`, 400, "controller: required"},
			{"/v1/fence/clear", "application/json", testToken, `{"controller":"bad id"}`, 400, "only printable ASCII without spaces"},
			{"/v1/fence/clear", "application/json", "", `{"controller":"c1"}`, 401, "bearer"},
		}
		for _, tc := range cases {
			code, body := post(t, url+tc.path, tc.ctype, tc.token, tc.body)
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Errorf("fencing=%v POST %s %q (%s): %d %s, want %d with %q", fencing, tc.path, tc.body, tc.ctype, code, body, tc.code, tc.want)
			}
		}
		if code, body := get(t, url+"/v1/fence", ""); code != 401 {
			t.Errorf("fencing=%v GET /v1/fence without a token: %d %s", fencing, code, body)
		}
	}
}

func TestLeaseEndpoints_Disabled(t *testing.T) {
	_, ts := newTestServer(t, newTestDir(t), nil)
	c := newTestClient(t, ts.URL)
	ctx := context.Background()
	resp, err := c.Lease(ctx, LeaseRequest{Controller: "c1", Voters: 3, TTLMillis: 1000})
	if err != nil || resp.Enforced || resp.State != FenceDisabled {
		t.Fatalf("lease without agent.fence: %+v, %v; want enforced=false state=disabled", resp, err)
	}
	st, err := c.FenceStatus(ctx)
	if err != nil || st.Enforced || st.State != FenceDisabled {
		t.Fatalf("fence status without agent.fence: %+v, %v", st, err)
	}
	if _, err := c.Fence(ctx, FenceRequest{Controller: "c1"}); !IsStatus(err, http.StatusConflict) || !strings.Contains(err.Error(), "agent.fence") {
		t.Fatalf("fence without agent.fence: %v, want 409 naming agent.fence", err)
	}
	if _, err := c.ClearFence(ctx, FenceRequest{Controller: "c1"}); !IsStatus(err, http.StatusConflict) {
		t.Fatalf("clear without agent.fence: %v, want 409", err)
	}
}

// waitFence polls GET /v1/fence until cond holds.
func waitFence(t *testing.T, c *Client, what string, cond func(FenceStatus) bool) FenceStatus {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := c.FenceStatus(context.Background())
		if err == nil && cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: last status %+v, %v", what, st, err)
		}
		time.Sleep(20 * time.Millisecond) // polling the agent's own loop
	}
}

// TestLeaseEndpoints_LapseFencesOnce drives the real enforcement loop with
// a fake fencer: two of three controllers arm the lease, it lapses, the
// loop fences once, re-applies when the fence breaks, renewals do not
// unfence, clear releases and disarms, and the state file keeps it all.
func TestLeaseEndpoints_LapseFencesOnce(t *testing.T) {
	state := filepath.Join(t.TempDir(), "fence.json")
	_, fake, c := fencingServer(t, state)
	ctx := context.Background()
	renew := func(id string) LeaseResponse {
		t.Helper()
		r, err := c.Lease(ctx, LeaseRequest{Controller: id, Voters: 3, TTLMillis: 300})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := renew("c1"); !r.Enforced || r.State != FenceUnarmed || r.Held {
		t.Fatalf("one of three: %+v, want unarmed, not held", r)
	}
	if r := renew("c2"); r.State != FenceHeld || !r.Held || r.Voters != 3 || len(r.Holders) != 2 || r.ExpiresInMillis <= 0 {
		t.Fatalf("two of three: %+v, want held", r)
	}
	if st, err := loadLeaseState(state); err != nil || !st.Armed || st.Voters != 3 || st.TTLMillis != 300 {
		t.Fatalf("state file after arming: %+v, %v", st, err)
	}
	st := waitFence(t, c, "the lapsed lease fences", func(s FenceStatus) bool { return s.State == FenceFenced })
	if !st.Fenced || !st.Armed || !strings.Contains(st.Reason, "lease lapsed") || len(st.Actions) == 0 || len(st.Errors) != 0 {
		t.Fatalf("fenced status: %+v", st)
	}
	if a, _ := fake.counts(); a != 1 {
		t.Fatalf("applies after the lapse: %d, want 1", a)
	}
	// The fence breaks (server restarted writable): the loop re-applies.
	fake.mu.Lock()
	fake.broken = true
	fake.mu.Unlock()
	waitFence(t, c, "re-applied", func(FenceStatus) bool { a, _ := fake.counts(); return a == 2 })
	if r := renew("c1"); r.State != FenceFenced {
		t.Fatalf("renewal after the fence: %+v, want fenced", r)
	}
	renew("c2")
	renew("c3")
	if st, err := c.FenceStatus(ctx); err != nil || st.State != FenceFenced {
		t.Fatalf("a majority renewing again: %+v, %v; want still fenced", st, err)
	}
	if st, err := loadLeaseState(state); err != nil || !st.Fenced {
		t.Fatalf("state file after the fence: %+v, %v", st, err)
	}
	st, err := c.ClearFence(ctx, FenceRequest{Controller: "c1", Reason: "promoting"})
	if err != nil || st.Armed || st.Fenced || st.State != FenceUnarmed {
		t.Fatalf("clear: %+v, %v", st, err)
	}
	if _, r := fake.counts(); r != 1 {
		t.Fatalf("releases after clear: %d, want 1", r)
	}
	if st, err := loadLeaseState(state); err != nil || st.Armed || st.Fenced {
		t.Fatalf("state file after clear: %+v, %v", st, err)
	}
	// POST /v1/fence fences an unarmed agent at once and answers after.
	st, err = c.Fence(ctx, FenceRequest{Controller: "c2", Reason: "failover step"})
	if err != nil || st.State != FenceFenced || !strings.Contains(st.Reason, "requested by c2: failover step") {
		t.Fatalf("requested fence: %+v, %v", st, err)
	}
	if a, _ := fake.counts(); a != 3 {
		t.Fatalf("applies after the requested fence: %d, want 3", a)
	}
}

// TestLeaseEndpoints_RestartArmed: an agent restarted while armed fences
// once the start's grace (the last ttl) passes without renewals; one
// restarted fenced applies the fence at once.
func TestLeaseEndpoints_RestartArmed(t *testing.T) {
	for _, st := range []persistedLease{
		{Armed: true, Voters: 3, TTLMillis: 300},
		{Armed: true, Fenced: true, Voters: 3, TTLMillis: 300, Reason: "lease lapsed"},
	} {
		state := filepath.Join(t.TempDir(), "fence.json")
		if err := saveLeaseState(state, st); err != nil {
			t.Fatal(err)
		}
		_, fake, c := fencingServer(t, state)
		got := waitFence(t, c, "fenced after restart", func(s FenceStatus) bool { return s.State == FenceFenced })
		if a, _ := fake.counts(); a != 1 || !got.Armed {
			t.Fatalf("restart from %+v: %+v, %d applies", st, got, a)
		}
	}
}
