package api

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/quorumha/quorumha/consensus"
	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/recovery"
)

// fakeRecovery is a recovery executor that remembers its requests and
// answers with a fixed result or error.
type fakeRecovery struct {
	mu   sync.Mutex
	reqs []recovery.ManualFailoverRequest
	res  recovery.ManualFailoverResult
	err  error
}

func (f *fakeRecovery) ManualFailover(_ context.Context, req recovery.ManualFailoverRequest) (recovery.ManualFailoverResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	if f.err != nil {
		return recovery.ManualFailoverResult{}, f.err
	}
	res := f.res
	res.DryRun = req.DryRun
	return res, nil
}

func (f *fakeRecovery) requests() []recovery.ManualFailoverRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recovery.ManualFailoverRequest(nil), f.reqs...)
}

// testSelection is a plan with one chosen and one refused replica.
var testSelection = recovery.Selection{
	Chosen:       "db2:3306",
	MostAdvanced: []string{"db3:3306"},
	CatchUpFrom:  "db3:3306",
	Considered: []recovery.Considered{
		{Address: "db2:3306", Eligible: true, Chosen: true, Reason: "candidate_master"},
		{Address: "db3:3306", Reason: "no_master"},
	},
}

// recoveryFixture is the leader fixture with rec as its executor.
func recoveryFixture(t *testing.T, rec *fakeRecovery, cfg func(*Config)) fixture {
	t.Helper()
	return newFixture(t, cfg, func(d *Deps) { d.Recovery = rec })
}

func TestFailover_Started(t *testing.T) {
	rec := &fakeRecovery{res: recovery.ManualFailoverResult{RecordID: 77, Message: "failover of app1 started", Selection: &testSelection}}
	f := recoveryFixture(t, rec, nil)
	resp := do(f.srv.Handler(), "POST", "/v1/clusters/app1/failover", `{"to":" db2:3306 ","by":"alice","force":true}`, nil)
	if resp.Code != 202 {
		t.Fatalf("status %d, want 202: %s", resp.Code, resp.Body)
	}
	got := decodeBody[FailoverResponse](t, resp.Body.Bytes())
	if got.Cluster != "app1" || got.RecordID != 77 || got.DryRun || got.Message != "failover of app1 started" {
		t.Fatalf("answer %+v", got)
	}
	if got.Plan == nil || got.Plan.Chosen != "db2:3306" || len(got.Plan.Considered) != 2 {
		t.Fatalf("plan %+v", got.Plan)
	}
	want := recovery.ManualFailoverRequest{Cluster: "app1", To: "db2:3306", By: "alice", Force: true}
	if reqs := rec.requests(); len(reqs) != 1 || reqs[0] != want {
		t.Fatalf("executor got %+v, want one %+v", reqs, want)
	}
	// The API itself applies nothing: the executor journals the failover.
	if n := len(f.raft.applied()); n != 0 {
		t.Fatalf("API applied %d commands", n)
	}
}

func TestFailover_EmptyBodyDefaults(t *testing.T) {
	rec := &fakeRecovery{res: recovery.ManualFailoverResult{RecordID: 5, Message: "started"}}
	f := recoveryFixture(t, rec, nil)
	resp := do(f.srv.Handler(), "POST", "/v1/clusters/app1/failover", "", nil)
	if resp.Code != 202 {
		t.Fatalf("status %d, want 202: %s", resp.Code, resp.Body)
	}
	want := recovery.ManualFailoverRequest{Cluster: "app1", By: defaultActor}
	if reqs := rec.requests(); len(reqs) != 1 || reqs[0] != want {
		t.Fatalf("executor got %+v, want one %+v", reqs, want)
	}
	if got := decodeBody[FailoverResponse](t, resp.Body.Bytes()); got.Plan != nil || got.RecordID != 5 {
		t.Fatalf("answer %+v", got)
	}
}

func TestFailover_DryRunPlan(t *testing.T) {
	rec := &fakeRecovery{res: recovery.ManualFailoverResult{Message: "would promote db2:3306", Selection: &testSelection}}
	f := recoveryFixture(t, rec, nil)
	resp := do(f.srv.Handler(), "POST", "/v1/clusters/app1/failover", `{"dry_run":true}`, nil)
	if resp.Code != 200 {
		t.Fatalf("status %d, want 200: %s", resp.Code, resp.Body)
	}
	// The JSON names are the API's own (snake_case), whatever the
	// executor's types look like.
	body := resp.Body.String()
	for _, want := range []string{`"dry_run":true`, `"chosen":"db2:3306"`, `"most_advanced":["db3:3306"]`,
		`"catch_up_from":"db3:3306"`, `{"address":"db3:3306","eligible":false,"chosen":false,"reason":"no_master"}`} {
		if !strings.Contains(body, want) {
			t.Fatalf("answer lacks %s: %s", want, body)
		}
	}
	if strings.Contains(body, "record_id") {
		t.Fatalf("a dry run has no record: %s", body)
	}
	if reqs := rec.requests(); len(reqs) != 1 || !reqs[0].DryRun {
		t.Fatalf("executor got %+v", reqs)
	}
}

func TestFailover_Rejections(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		body     string
		err      error // the executor's answer
		noExec   bool  // no executor configured
		status   int
		contains string
		called   bool // whether the executor must have been asked
	}{
		{"unknown cluster", "/v1/clusters/nope/failover", `{}`, nil, false, 404, "nope", false},
		{"malformed json", "/v1/clusters/app1/failover", `{"to":`, nil, false, 400, "invalid JSON", false},
		{"unknown field", "/v1/clusters/app1/failover", `{"target":"db2:3306"}`, nil, false, 400, `unknown field "target"`, false},
		{"trailing data", "/v1/clusters/app1/failover", `{} {}`, nil, false, 400, "trailing", false},
		{"dry_run not a bool", "/v1/clusters/app1/failover", `{"dry_run":"yes"}`, nil, false, 400, "dry_run", false},
		{"to without port", "/v1/clusters/app1/failover", `{"to":"db2"}`, nil, false, 400, "host:port", false},
		{"to with bad port", "/v1/clusters/app1/failover", `{"to":"db2:http"}`, nil, false, 400, "port", false},
		{"to without host", "/v1/clusters/app1/failover", `{"to":":3306"}`, nil, false, 400, "empty host", false},
		{"no executor", "/v1/clusters/app1/failover", `{}`, nil, true, 501, "recovery executor", false},
		{"master alive", "/v1/clusters/app1/failover", `{}`,
			fmt.Errorf("%w: db1:3306 answers; use switchover", recovery.ErrMasterAlive), false, 409, "use switchover", true},
		{"failover in progress", "/v1/clusters/app1/failover", `{}`,
			fmt.Errorf("%w: record 30", recovery.ErrFailoverInProgress), false, 409, "record 30", true},
		{"open record in the fsm", "/v1/clusters/app1/failover", `{}`, fsm.ErrRecordOpen, false, 409, "open record", true},
		{"no candidate", "/v1/clusters/app1/failover", `{}`,
			fmt.Errorf("%w: db2:3306: no_master", recovery.ErrNoCandidate), false, 409, "no_master", true},
		{"diverged", "/v1/clusters/app1/failover", `{}`, recovery.ErrDivergedPositions, false, 409, "diverged", true},
		{"target unknown", "/v1/clusters/app1/failover", `{"to":"db9:3306"}`,
			fmt.Errorf("%w: db9:3306", recovery.ErrTargetUnknown), false, 400, "db9:3306", true},
		{"target ineligible", "/v1/clusters/app1/failover", `{"to":"db3:3306"}`,
			fmt.Errorf("%w: db3:3306: no_master", recovery.ErrTargetIneligible), false, 400, "no_master", true},
		{"executor fails", "/v1/clusters/app1/failover", `{}`, errors.New("boom"), false, 500, "boom", true},
		{"no leader any more", "/v1/clusters/app1/failover", `{}`, consensus.ErrNoLeader, false, 503, "leader", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &fakeRecovery{err: tt.err}
			f := newFixture(t, nil, func(d *Deps) {
				if !tt.noExec {
					d.Recovery = rec
				}
			})
			resp := do(f.srv.Handler(), "POST", tt.path, tt.body, nil)
			if resp.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.Code, tt.status, resp.Body)
			}
			e := decodeBody[ErrorResponse](t, resp.Body.Bytes())
			if e.Code != tt.status || !strings.Contains(e.Error, tt.contains) {
				t.Fatalf("error %+v, want code %d containing %q", e, tt.status, tt.contains)
			}
			if got := len(rec.requests()) > 0; got != tt.called {
				t.Fatalf("executor called: %v, want %v", got, tt.called)
			}
		})
	}
}

func TestFailover_Auth(t *testing.T) {
	tests := []struct {
		name   string
		auth   string
		status int
	}{
		{"no token", "", 401},
		{"wrong token", "Bearer nope", 403},
		{"right token", "Bearer s3cret", 202},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &fakeRecovery{res: recovery.ManualFailoverResult{RecordID: 1}}
			f := recoveryFixture(t, rec, func(c *Config) { c.Token = "s3cret" })
			resp := do(f.srv.Handler(), "POST", "/v1/clusters/app1/failover", `{}`, map[string]string{"Authorization": tt.auth})
			if resp.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.Code, tt.status, resp.Body)
			}
			if called := len(rec.requests()) > 0; called != (tt.status == 202) {
				t.Fatalf("executor called: %v with status %d", called, tt.status)
			}
		})
	}
}

func TestFailover_ForwardedToLeader(t *testing.T) {
	// A real leader server (c2) behind a real follower server (c1): the
	// follower's executor is never asked, the leader's is asked once, and
	// the leader's 202 and body reach the client unchanged.
	leaderRec := &fakeRecovery{res: recovery.ManualFailoverResult{RecordID: 91, Message: "started on c2"}}
	lf := newFixture(t, nil, nil)
	lsrv, err := New(Config{NodeID: "c2", Token: "s3cret"}, Deps{Raft: lf.raft, State: lf.state, Recovery: leaderRec})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(lsrv.Handler())
	defer ts.Close()
	followerRec := &fakeRecovery{}
	f := followerFixture(t, ts.URL, func(c *Config) { c.Token = "s3cret" })
	f.srv.rec = followerRec

	resp := do(f.srv.Handler(), "POST", "/v1/clusters/app1/failover", `{"to":"db2:3306","by":"bob"}`,
		map[string]string{"Authorization": "Bearer s3cret"})
	if resp.Code != 202 {
		t.Fatalf("status %d, want 202: %s", resp.Code, resp.Body)
	}
	if got := resp.Header().Get(ForwardedToHeader); got != "c2" {
		t.Fatalf("forwarded-to %q", got)
	}
	if got := decodeBody[FailoverResponse](t, resp.Body.Bytes()); got.RecordID != 91 || got.Message != "started on c2" {
		t.Fatalf("answer %+v", got)
	}
	want := recovery.ManualFailoverRequest{Cluster: "app1", To: "db2:3306", By: "bob"}
	if reqs := leaderRec.requests(); len(reqs) != 1 || reqs[0] != want {
		t.Fatalf("leader's executor got %+v, want one %+v", reqs, want)
	}
	if n := len(followerRec.requests()); n != 0 {
		t.Fatalf("follower's executor asked %d times", n)
	}

	// The leader's refusal is relayed with its status too.
	leaderRec.mu.Lock()
	leaderRec.err = fmt.Errorf("%w: use switchover", recovery.ErrMasterAlive)
	leaderRec.mu.Unlock()
	resp = do(f.srv.Handler(), "POST", "/v1/clusters/app1/failover", `{}`, map[string]string{"Authorization": "Bearer s3cret"})
	if resp.Code != 409 || !strings.Contains(resp.Body.String(), "use switchover") {
		t.Fatalf("status %d, want 409 saying use switchover: %s", resp.Code, resp.Body)
	}
}

func TestFailover_LeadershipLostBeforeStartForwards(t *testing.T) {
	// Raft still says c1 leads, but the executor already knows better and
	// changed nothing: the request goes to the new leader instead.
	leader := &recordingLeader{}
	ts := httptest.NewServer(leader)
	defer ts.Close()
	rec := &fakeRecovery{err: fmt.Errorf("failover: %w", consensus.ErrNotLeader)}
	f := followerFixture(t, ts.URL, nil)
	f.srv.rec = rec
	f.raft.mu.Lock()
	f.raft.isLeader = true
	f.raft.mu.Unlock()
	resp := do(f.srv.Handler(), "POST", "/v1/clusters/app1/failover", `{}`, nil)
	if resp.Code != 200 || leader.count() != 1 || len(rec.requests()) != 1 {
		t.Fatalf("status %d, forwarded %d, executor asked %d: %s", resp.Code, leader.count(), len(rec.requests()), resp.Body)
	}
}

func TestCheckHostPort(t *testing.T) {
	tests := []struct {
		addr string
		ok   bool
	}{
		{"db2:3306", true},
		{"10.0.0.1:3306", true},
		{"[::1]:3306", true},
		{"db2", false},
		{"db2:", false},
		{"db2:0", false},
		{"db2:70000", false},
		{":3306", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := checkHostPort(tt.addr)
			if (err == nil) != tt.ok {
				t.Fatalf("checkHostPort(%q) = %v, want ok %v", tt.addr, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v does not wrap ErrBadRequest", err)
			}
		})
	}
}
