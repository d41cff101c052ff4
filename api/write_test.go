package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/quorumha/quorumha/consensus"
	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/recovery"
)

// decodeCommand splits an applied log entry into its type and payload.
func decodeCommand[T any](t *testing.T, buf []byte) (fsm.MessageType, T) {
	t.Helper()
	mt, payload, err := fsm.Decode(buf)
	if err != nil {
		t.Fatalf("decode command: %v", err)
	}
	var v T
	if err := json.Unmarshal(payload, &v); err != nil {
		t.Fatalf("decode payload %s: %v", payload, err)
	}
	return mt, v
}

func TestAck_Applies(t *testing.T) {
	f := newFixture(t, nil, nil)
	rec := do(f.srv.Handler(), "POST", "/v1/clusters/app1/ack", `{"by":"alice","comment":"checked"}`, nil)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	applies := f.raft.applied()
	if len(applies) != 1 {
		t.Fatalf("%d applies, want 1", len(applies))
	}
	mt, cmd := decodeCommand[fsm.Ack](t, applies[0])
	want := fsm.Ack{Cluster: "app1", By: "alice", At: testNow, Comment: "checked"}
	if mt != fsm.AckType || !cmd.At.Equal(want.At) || cmd.Cluster != want.Cluster || cmd.By != want.By || cmd.Comment != want.Comment {
		t.Fatalf("applied %s %+v, want %+v", mt, cmd, want)
	}
}

func TestMaintenance_Applies(t *testing.T) {
	tests := []struct {
		name   string
		method string
		body   string
		until  time.Time
	}{
		{"duration", "POST", `{"duration":"30m","reason":"upgrade"}`, testNow.Add(30 * time.Minute)},
		{"until", "POST", `{"until":"2026-11-23T05:00:00Z"}`, time.Date(2026, 11, 23, 5, 0, 0, 0, time.UTC)},
		{"end", "DELETE", "", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil, nil)
			rec := do(f.srv.Handler(), tt.method, "/v1/clusters/app1/maintenance", tt.body, nil)
			if rec.Code != 200 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			applies := f.raft.applied()
			if len(applies) != 1 {
				t.Fatalf("%d applies, want 1", len(applies))
			}
			mt, cmd := decodeCommand[fsm.Maintenance](t, applies[0])
			if mt != fsm.MaintenanceType || cmd.Cluster != "app1" || !cmd.Until.Equal(tt.until) {
				t.Fatalf("applied %s %+v, want until %s", mt, cmd, tt.until)
			}
		})
	}
}

func TestJoinAndRemove_Apply(t *testing.T) {
	f := newFixture(t, nil, nil)
	rec := do(f.srv.Handler(), "POST", "/v1/raft/join", `{"id":"c4","raft_addr":"10.0.4.10:7000"}`, nil)
	if rec.Code != 200 {
		t.Fatalf("join status %d: %s", rec.Code, rec.Body)
	}
	rec = do(f.srv.Handler(), "DELETE", "/v1/raft/peers/c3", "", nil)
	if rec.Code != 200 {
		t.Fatalf("remove status %d: %s", rec.Code, rec.Body)
	}
	if len(f.raft.joins) != 1 || f.raft.joins[0].ID != "c4" || len(f.raft.removed) != 1 || f.raft.removed[0] != "c3" {
		t.Fatalf("joins %+v removed %+v", f.raft.joins, f.raft.removed)
	}
}

func TestWrite_Rejections(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		path     string
		body     string
		setup    func(f fixture)
		status   int
		contains string
	}{
		{"ack unknown cluster", "POST", "/v1/clusters/nope/ack", `{}`, nil, 404, "nope"},
		{"ack malformed json", "POST", "/v1/clusters/app1/ack", `{"by":`, nil, 400, "invalid JSON"},
		{"ack unknown field", "POST", "/v1/clusters/app1/ack", `{"who":"x"}`, nil, 400, `unknown field "who"`},
		{"ack trailing data", "POST", "/v1/clusters/app1/ack", `{} {}`, nil, 400, "trailing"},
		{"ack wrong type", "POST", "/v1/clusters/app1/ack", `{"by":1}`, nil, 400, "by"},
		{"maintenance unknown cluster", "POST", "/v1/clusters/nope/maintenance", `{"duration":"1m"}`, nil, 404, "nope"},
		{"maintenance delete unknown cluster", "DELETE", "/v1/clusters/nope/maintenance", "", nil, 404, "nope"},
		{"maintenance empty body", "POST", "/v1/clusters/app1/maintenance", ``, nil, 400, "empty body"},
		{"maintenance neither", "POST", "/v1/clusters/app1/maintenance", `{"reason":"x"}`, nil, 400, "required"},
		{"maintenance both", "POST", "/v1/clusters/app1/maintenance", `{"duration":"1m","until":"2030-01-01T00:00:00Z"}`, nil, 400, "not both"},
		{"maintenance past", "POST", "/v1/clusters/app1/maintenance", `{"until":"2020-01-01T00:00:00Z"}`, nil, 400, "not in the future"},
		{"maintenance bad duration", "POST", "/v1/clusters/app1/maintenance", `{"duration":"soon"}`, nil, 400, "duration"},
		{"maintenance negative", "POST", "/v1/clusters/app1/maintenance", `{"duration":"-5m"}`, nil, 400, "positive"},
		{"join missing addr", "POST", "/v1/raft/join", `{"id":"c4"}`, nil, 400, "required"},
		{"join raft error", "POST", "/v1/raft/join", `{"id":"c4","raft_addr":"x:1"}`, func(f fixture) { f.raft.joinErr = errors.New("boom") }, 500, "boom"},
		{"remove unknown peer", "DELETE", "/v1/raft/peers/c9", "", func(f fixture) { f.raft.removeErr = consensus.ErrUnknownPeer }, 404, "c9"},
		{"fsm rejects invalid", "POST", "/v1/clusters/app1/ack", `{}`, func(f fixture) { f.raft.applyErr = fmt.Errorf("x: %w", fsm.ErrInvalid) }, 400, "invalid"},
		{"fsm open record", "POST", "/v1/clusters/app1/ack", `{}`, func(f fixture) { f.raft.applyErr = fsm.ErrRecordOpen }, 409, "open record"},
		{"leadership lost mid-apply", "POST", "/v1/clusters/app1/ack", `{}`, func(f fixture) {
			f.raft.applyErr = fmt.Errorf("%w: %w (%w)", consensus.ErrOutcomeUnknown, consensus.ErrNotLeader, raft.ErrLeadershipLost)
		}, 503, "outcome unknown"},
		{"failover without executor", "POST", "/v1/clusters/app1/failover", ``, nil, 501, "failover"},
		{"switchover not implemented", "POST", "/v1/clusters/app1/switchover", ``, nil, 501, "switchover"},
		{"oversize body", "POST", "/v1/clusters/app1/ack", `{"comment":"` + strings.Repeat("x", 2048) + `"}`, nil, 413, "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.MaxBodyBytes = 1024 }, nil)
			if tt.setup != nil {
				tt.setup(f)
			}
			rec := do(f.srv.Handler(), tt.method, tt.path, tt.body, nil)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			e := decodeBody[ErrorResponse](t, rec.Body.Bytes())
			if e.Code != tt.status || !strings.Contains(e.Error, tt.contains) {
				t.Fatalf("error %+v, want code %d containing %q", e, tt.status, tt.contains)
			}
			if n := len(f.raft.applied()); n != 0 {
				t.Fatalf("%d commands applied on a rejected request", n)
			}
		})
	}
}

func TestAuth_Token(t *testing.T) {
	tests := []struct {
		name   string
		method string
		path   string
		auth   string
		status int
	}{
		{"write without token", "POST", "/v1/clusters/app1/ack", "", 401},
		{"write with wrong token", "POST", "/v1/clusters/app1/ack", "Bearer nope", 403},
		{"write with basic auth", "POST", "/v1/clusters/app1/ack", "Basic c2VjcmV0", 401},
		{"write with token", "POST", "/v1/clusters/app1/ack", "Bearer s3cret", 200},
		{"delete without token", "DELETE", "/v1/raft/peers/c3", "", 401},
		{"join wrong token", "POST", "/v1/raft/join", "Bearer s3cre", 403},
		{"failover without token", "POST", "/v1/clusters/app1/failover", "", 401},
		{"read without token", "GET", "/v1/history", "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.Token = "s3cret" }, nil)
			rec := do(f.srv.Handler(), tt.method, tt.path, "", map[string]string{"Authorization": tt.auth})
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status == 401 && rec.Header().Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
}

func TestParseMaintenance_Window(t *testing.T) {
	tests := []struct {
		name string
		req  MaintenanceRequest
		want time.Time
		err  bool
	}{
		{"duration", MaintenanceRequest{Duration: "1h30m"}, testNow.Add(90 * time.Minute), false},
		{"until with offset", MaintenanceRequest{Until: "2026-11-23T04:00:00+02:00"}, time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC), true},
		{"until later", MaintenanceRequest{Until: "2026-11-23T04:00:00+01:00"}, time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC), false},
		{"until not rfc3339", MaintenanceRequest{Until: "tomorrow"}, time.Time{}, true},
		{"zero duration", MaintenanceRequest{Duration: "0s"}, time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMaintenance(tt.req, testNow)
			if (err != nil) != tt.err {
				t.Fatalf("err %v, want error %v", err, tt.err)
			}
			if err != nil {
				if !errors.Is(err, ErrBadRequest) {
					t.Fatalf("err %v does not wrap ErrBadRequest", err)
				}
				return
			}
			if !got.Equal(tt.want) {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestStatusFor_Mapping(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 200},
		{&http.MaxBytesError{Limit: 1}, 413},
		{fmt.Errorf("x: %w", ErrBadRequest), 400},
		{fsm.ErrInvalid, 400},
		{consensus.ErrInvalidConfig, 400},
		{ErrUnauthorized, 401},
		{ErrForbidden, 403},
		{fsm.ErrNoSuchRecord, 404},
		{consensus.ErrUnknownPeer, 404},
		{ErrNotFound, 404},
		{fsm.ErrRecordOpen, 409},
		{fmt.Errorf("x: %w", recovery.ErrMasterAlive), 409},
		{recovery.ErrFailoverInProgress, 409},
		{recovery.ErrNoCandidate, 409},
		{recovery.ErrDivergedPositions, 409},
		{recovery.ErrTargetUnknown, 400},
		{recovery.ErrTargetIneligible, 400},
		{recovery.ErrUnknownCluster, 404},
		{recovery.ErrRunnerStopped, 503},
		{ErrNotImplemented, 501},
		{ErrForward, 502},
		{consensus.ErrNotLeader, 503},
		{fmt.Errorf("gave up: %w", consensus.ErrNoLeader), 503},
		{ErrLeadershipChanged, 503},
		{ErrNoMaster, 503},
		{errors.New("boom"), 500},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.err), func(t *testing.T) {
			if got := statusFor(tt.err); got != tt.want {
				t.Fatalf("statusFor(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}
