package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumha/quorumha/api"
	"github.com/quorumha/quorumha/fsm"
)

var testPlan = &api.FailoverPlan{
	Chosen:       "db2:3306",
	MostAdvanced: []string{"db3:3306"},
	CatchUpFrom:  "db3:3306",
	Considered: []api.FailoverCandidate{
		{Address: "db2:3306", Eligible: true, Chosen: true, Reason: "candidate_master; catch up from db3:3306"},
		{Address: "db3:3306", Reason: "no_master\nset in config"},
	},
}

func TestRenderPlan_Table(t *testing.T) {
	tests := []struct {
		name string
		in   api.FailoverResponse
		want string
	}{
		{"catch up first", api.FailoverResponse{Cluster: "app1", DryRun: true, Message: "master db1:3306 is dead", Plan: testPlan},
			`dry run of a failover of app1: nothing was changed
would promote db2:3306 after catching it up from db3:3306
most advanced: db3:3306

REPLICA   ELIGIBLE  CHOSEN  REASON
db2:3306  yes       yes     candidate_master; catch up from db3:3306
db3:3306  no        no      no_master set in config
`},
		{"none eligible", api.FailoverResponse{Cluster: "app1", DryRun: true, Message: "no eligible replica", Plan: &api.FailoverPlan{
			Considered: []api.FailoverCandidate{{Address: "db2:3306"}},
		}}, `dry run of a failover of app1: nothing was changed
no eligible replica
no replica may be promoted

REPLICA   ELIGIBLE  CHOSEN  REASON
db2:3306  no        no      -
`},
		{"no plan", api.FailoverResponse{Cluster: "app1", DryRun: true, Message: "nothing to do"},
			"dry run of a failover of app1: nothing was changed\nnothing to do\nthe controller returned no plan\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sb strings.Builder
			if err := renderPlan(&sb, tt.in); err != nil {
				t.Fatal(err)
			}
			if got := sb.String(); got != tt.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestRenderStarted_Lines(t *testing.T) {
	r := api.FailoverResponse{Cluster: "app1", RecordID: 42, Message: "manual failover", Plan: testPlan}
	var sb strings.Builder
	if err := renderStarted(&sb, r, 0); err != nil {
		t.Fatal(err)
	}
	want := "failover of app1 started: record 42\nmanual failover\npromoting db2:3306\nfollow it with `quorumha history --id 42`\n"
	if got := sb.String(); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

// recordAt returns record 42 with the given steps and result.
func recordAt(result fsm.Result, closed time.Time, detail string, steps ...fsm.Step) api.RecordResponse {
	return api.RecordResponse{Record: fsm.Record{
		ID: 42, Cluster: "app1", Kind: fsm.KindFailover, Trigger: "manual", Opened: renderT0, Closed: closed,
		OldMaster: "db1:3306", NewMaster: "db2:3306", Result: result, Detail: detail, Steps: steps,
	}}
}

func step(seq int, name, leader string, start, end time.Duration, outcome fsm.Outcome, detail string) fsm.Step {
	s := fsm.Step{Seq: seq, Name: name, Leader: leader, Start: renderT0.Add(start), Outcome: outcome, Detail: detail}
	if end > 0 {
		s.End = renderT0.Add(end)
	}
	return s
}

func TestFollowRecord_PrintsEachStepOnce(t *testing.T) {
	fence := step(1, "fence", "c1", 0, 1200*time.Millisecond, fsm.OutcomeOK, "read_only=1 on db1:3306")
	stopRunning := step(2, "stop_io", "c1", 1200*time.Millisecond, 0, fsm.OutcomeRunning, "")
	stopDone := step(2, "stop_io", "c1", 1200*time.Millisecond, 1500*time.Millisecond, fsm.OutcomeOK, "")
	promote := step(3, "promote", "c2", 4*time.Second, 4500*time.Millisecond, fsm.OutcomeOK, "db2:3306\nwritable")
	answers := []struct {
		r   api.RecordResponse
		err error
	}{
		{err: errors.New("GET /v1/history/42: not found (HTTP 404)")}, // not replicated to this controller yet
		{r: recordAt(fsm.ResultOpen, time.Time{}, "", fence, stopRunning)},
		{r: recordAt(fsm.ResultOpen, time.Time{}, "", fence, stopDone)},
		{r: recordAt(fsm.ResultSuccess, renderT0.Add(5*time.Second), "", fence, stopDone, promote)},
	}
	n := 0
	get := func(context.Context) (api.RecordResponse, error) {
		a := answers[min(n, len(answers)-1)]
		n++
		return a.r, a.err
	}
	var sb strings.Builder
	got, err := followRecord(context.Background(), get, time.Millisecond, &sb)
	if err != nil {
		t.Fatal(err)
	}
	if got.Record.Result != fsm.ResultSuccess || n != len(answers) {
		t.Fatalf("result %q after %d polls", got.Record.Result, n)
	}
	want := `  ok         fence               1.2s  c1   read_only=1 on db1:3306
  ok         stop_io            300ms  c1   -
  ok         promote            500ms  c2   db2:3306 writable
`
	if sb.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", sb.String(), want)
	}
}

func TestFollowRecord_ClosedWithUnfinishedStep(t *testing.T) {
	rec := recordAt(fsm.ResultAborted, renderT0.Add(3*time.Second), "ip_failover stop exited 1",
		step(1, "fence", "c1", 0, 0, fsm.OutcomeRunning, ""))
	var sb strings.Builder
	_, err := followRecord(context.Background(), func(context.Context) (api.RecordResponse, error) { return rec, nil }, time.Millisecond, &sb)
	if err != nil {
		t.Fatal(err)
	}
	if want := "  unfinished fence            running  c1   -\n"; sb.String() != want {
		t.Fatalf("got %q, want %q", sb.String(), want)
	}
}

func TestFollowRecord_GivesUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	open := recordAt(fsm.ResultOpen, time.Time{}, "")
	_, err := followRecord(ctx, func(context.Context) (api.RecordResponse, error) { return open, nil }, 5*time.Millisecond, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "record 42 still open") {
		t.Fatalf("err %v, want a timeout naming the open record", err)
	}
}

func TestRenderOutcome_Lines(t *testing.T) {
	tests := []struct {
		name string
		r    fsm.Record
		want string
	}{
		{"success", recordAt(fsm.ResultSuccess, renderT0.Add(8200*time.Millisecond), "").Record,
			"result: success after 8.2s: db1:3306 → db2:3306\n"},
		{"aborted", recordAt(fsm.ResultAborted, renderT0.Add(2*time.Second), "fence: ip_failover\nexited 1").Record,
			"result: aborted after 2s\ndetail: fence: ip_failover exited 1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sb strings.Builder
			if err := renderOutcome(&sb, tt.r); err != nil {
				t.Fatal(err)
			}
			if sb.String() != tt.want {
				t.Fatalf("got:\n%s\nwant:\n%s", sb.String(), tt.want)
			}
		})
	}
}

// fakeFailoverAPI answers the failover POST with post (status and body)
// and the record GET with the records in turn (the last one repeats).
type fakeFailoverAPI struct {
	mu         sync.Mutex
	postStatus int
	postBody   string
	records    []api.RecordResponse
	gets       int
	posted     api.FailoverRequest
	auth       string
}

func (f *fakeFailoverAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/clusters/app1/failover":
		f.auth = r.Header.Get("Authorization")
		_ = json.NewDecoder(r.Body).Decode(&f.posted)
		w.WriteHeader(f.postStatus)
		_, _ = io.WriteString(w, f.postBody)
	case r.Method == http.MethodGet && r.URL.Path == "/v1/history/42" && len(f.records) > 0:
		rec := f.records[min(f.gets, len(f.records)-1)]
		f.gets++
		_ = json.NewEncoder(w).Encode(rec)
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"error":"not found","code":404}`)
	}
}

// runFailoverCmd runs `quorumha failover` with args against srv and returns
// its output and exit code (0, or the exitError's code, or 2 for other
// errors, as main does).
func runFailoverCmd(t *testing.T, srv *httptest.Server, args ...string) (string, int) {
	t.Helper()
	t.Setenv("QUORUMHA_TOKEN", "")
	t.Setenv("QUORUMHA_ADDR", "")
	cmd := newFailoverCmd()
	var out strings.Builder
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(append([]string{"--addr", srv.URL}, args...))
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(context.Background())
	var ec exitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ec):
		return out.String() + ec.Error(), ec.ExitCode()
	default:
		return out.String() + err.Error(), 2
	}
}

func TestFailoverCmd_ExitCodes(t *testing.T) {
	started := `{"cluster":"app1","record_id":42,"dry_run":false,"message":"manual failover started"}`
	success := recordAt(fsm.ResultSuccess, renderT0.Add(5*time.Second), "",
		step(1, "fence", "c1", 0, time.Second, fsm.OutcomeOK, ""))
	aborted := recordAt(fsm.ResultAborted, renderT0.Add(2*time.Second), "ip_failover stop exited 1",
		step(1, "fence", "c1", 0, time.Second, fsm.OutcomeFailed, "ip_failover stop exited 1"))
	tests := []struct {
		name     string
		api      *fakeFailoverAPI
		args     []string
		code     int
		contains []string
	}{
		{"dry run", &fakeFailoverAPI{postStatus: 200, postBody: `{"cluster":"app1","dry_run":true,"message":"plan",
			"plan":{"chosen":"db2:3306","considered":[{"address":"db2:3306","eligible":true,"chosen":true,"reason":"latest"}]}}`},
			[]string{"--cluster", "app1", "--dry-run"}, 0, []string{"would promote db2:3306", "db2:3306  yes       yes     latest"}},
		{"success", &fakeFailoverAPI{postStatus: 202, postBody: started, records: []api.RecordResponse{success}},
			[]string{"--cluster", "app1", "--to", "db2:3306", "--wait", "5s"}, 0,
			[]string{"record 42", "ok         fence", "result: success after 5s: db1:3306 → db2:3306"}},
		{"aborted", &fakeFailoverAPI{postStatus: 202, postBody: started, records: []api.RecordResponse{aborted}},
			[]string{"--cluster", "app1"}, 1, []string{"failed     fence", "result: aborted", "detail: ip_failover stop exited 1"}},
		{"no wait", &fakeFailoverAPI{postStatus: 202, postBody: started},
			[]string{"--cluster", "app1", "--wait", "0"}, 0, []string{"quorumha history --id 42"}},
		{"wait runs out", &fakeFailoverAPI{postStatus: 202, postBody: started,
			records: []api.RecordResponse{recordAt(fsm.ResultOpen, time.Time{}, "")}},
			[]string{"--cluster", "app1", "--wait", "300ms"}, 2, []string{"record 42 still open", "quorumha history --id 42"}},
		{"refused: master alive", &fakeFailoverAPI{postStatus: 409,
			postBody: `{"error":"failover of cluster \"app1\": master is alive: use switchover","code":409}`},
			[]string{"--cluster", "app1"}, 2, []string{"use switchover", "HTTP 409"}},
		{"unfenced accepted", &fakeFailoverAPI{postStatus: 200, records: []api.RecordResponse{success},
			postBody: `{"cluster":"app1","record_id":42,"message":"alice accepted promoting without a fence proof"}`},
			[]string{"--cluster", "app1", "--unfenced"}, 0, []string{"record 42) goes on without a fence proof", "alice accepted", "result: success"}},
		{"unfenced: nothing awaiting", &fakeFailoverAPI{postStatus: 409,
			postBody: `{"error":"cluster \"app1\": no failover is awaiting a fence: nothing to accept, nothing changed","code":409}`},
			[]string{"--cluster", "app1", "--unfenced"}, 2, []string{"no failover is awaiting a fence", "HTTP 409"}},
		{"unfenced with --to", &fakeFailoverAPI{postStatus: 500},
			[]string{"--cluster", "app1", "--unfenced", "--to", "db2:3306"}, 2, []string{"do not apply"}},
		{"json", &fakeFailoverAPI{postStatus: 202, postBody: started, records: []api.RecordResponse{success}},
			[]string{"--cluster", "app1", "--json"}, 0, []string{`"record_id": 42`, `"result": "success"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.api)
			defer srv.Close()
			out, code := runFailoverCmd(t, srv, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; output:\n%s", code, tt.code, out)
			}
			for _, want := range tt.contains {
				if !strings.Contains(out, want) {
					t.Fatalf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestFailoverCmd_SendsRequest(t *testing.T) {
	fake := &fakeFailoverAPI{postStatus: 202, postBody: `{"cluster":"app1","record_id":42}`}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	out, code := runFailoverCmd(t, srv, "--cluster", "app1", "--to", "db2:3306", "--by", "alice", "--token", "s3cret", "--wait", "0", "--force")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	want := api.FailoverRequest{To: "db2:3306", By: "alice", Force: true}
	if fake.posted != want || fake.auth != "Bearer s3cret" {
		t.Fatalf("posted %+v with auth %q, want %+v with the token", fake.posted, fake.auth, want)
	}
}
