package api

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/recovery"
)

// Item 7 of the security review: a browser form (no CORS preflight) must
// not be able to write, and a page of another origin must not either while
// no token protects the API.
func TestWrite_RequiresJSONContentType(t *testing.T) {
	tests := []struct {
		name   string
		method string
		body   string
		ct     string
		want   int
	}{
		{"form", "POST", "by=mallory", "application/x-www-form-urlencoded", 415},
		{"text plain json", "POST", `{"by":"mallory"}`, "text/plain", 415},
		{"multipart empty", "POST", "", "multipart/form-data; boundary=x", 415},
		{"body without type", "POST", `{"by":"x"}`, "", 415},
		{"json", "POST", `{"by":"alice"}`, "application/json", 200},
		{"json charset", "POST", `{"by":"alice"}`, "application/json; charset=utf-8", 200},
		{"empty no type", "POST", "", "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil, nil)
			rec := do(f.srv.Handler(), tt.method, "/v1/clusters/app1/ack", tt.body, map[string]string{"Content-Type": tt.ct})
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.want, rec.Body)
			}
			if n := len(f.raft.applied()); (n == 1) != (tt.want == 200) {
				t.Fatalf("%d commands applied for status %d", n, rec.Code)
			}
		})
	}
}

func TestWrite_OriginAndHostWithoutToken(t *testing.T) {
	tests := []struct {
		name   string
		token  string
		header map[string]string
		want   int
	}{
		{"no origin (CLI)", "", nil, 200},
		{"same origin", "", map[string]string{"Origin": "http://10.0.1.10:8080"}, 200},
		{"cross origin", "", map[string]string{"Origin": "http://evil.example"}, 403},
		{"null origin", "", map[string]string{"Origin": "null"}, 403},
		{"https origin on http", "", map[string]string{"Origin": "https://10.0.1.10:8080"}, 403},
		{"dns rebinding host", "", map[string]string{"Host": "evil.example:8080", "Origin": "http://evil.example:8080"}, 403},
		{"rebinding host no origin", "", map[string]string{"Host": "evil.example:8080"}, 403},
		{"localhost host", "", map[string]string{"Host": "localhost:8080", "Origin": "http://localhost:8080"}, 200},
		{"token set: origin moot", "tok", map[string]string{"Authorization": "Bearer tok", "Origin": "http://evil.example"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.Token = tt.token }, nil)
			rec := do(f.srv.Handler(), "POST", "/v1/clusters/app1/ack", `{"by":"x"}`, tt.header)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.want, rec.Body)
			}
			if n := len(f.raft.applied()); (n == 1) != (tt.want == 200) {
				t.Fatalf("%d commands applied for status %d", n, rec.Code)
			}
		})
	}
}

// Item 10: a year-9999 window switches automatic failover off for good.
func TestMaintenance_Bounded(t *testing.T) {
	for _, body := range []string{
		`{"until":"9999-12-31T00:00:00Z"}`,
		`{"duration":"8760h"}`,
		`{"duration":"169h"}`,
	} {
		f := newFixture(t, nil, nil)
		rec := do(f.srv.Handler(), "POST", "/v1/clusters/app1/maintenance", body, nil)
		if rec.Code != 400 || len(f.raft.applied()) != 0 {
			t.Fatalf("%s: status %d, %d applies: %s", body, rec.Code, len(f.raft.applied()), rec.Body)
		}
	}
	f := newFixture(t, nil, nil)
	if rec := do(f.srv.Handler(), "POST", "/v1/clusters/app1/maintenance", `{"duration":"168h"}`, nil); rec.Code != 200 {
		t.Fatalf("7 days: status %d: %s", rec.Code, rec.Body)
	}
}

func TestSwitchover_TimeoutBounded(t *testing.T) {
	for _, body := range []string{`{"timeout":"8760h"}`, `{"grace":"11m"}`} {
		f := newFixture(t, nil, func(d *Deps) { d.Switchover = &fakeSwitchover{} })
		rec := do(f.srv.Handler(), "POST", "/v1/clusters/app1/switchover", body, nil)
		if rec.Code != 400 {
			t.Fatalf("%s: status %d: %s", body, rec.Code, rec.Body)
		}
	}
}

// Item 6: a join with a garbage id or address must not enter the raft
// configuration, where it would count as a voter nobody can reach.
func TestJoin_Validates(t *testing.T) {
	tests := []struct {
		body string
		want int
	}{
		{`{"id":"zz","raft_addr":"not an addr"}`, 400},
		{`{"id":"zz","raft_addr":"10.0.4.10"}`, 400},
		{`{"id":"zz","raft_addr":"10.0.4.10:0"}`, 400},
		{`{"id":"zz","raft_addr":"10.0.4.10:99999"}`, 400},
		{`{"id":"zz","raft_addr":"bad_host!:7000"}`, 400},
		{`{"id":"z z","raft_addr":"10.0.4.10:7000"}`, 400},
		{`{"id":"../c4","raft_addr":"10.0.4.10:7000"}`, 400},
		{`{"id":"c4","raft_addr":"10.0.4.10:7000"}`, 200},
		{`{"id":"c4","raft_addr":"ctl-4.example.net:7000"}`, 200},
		{`{"id":"c4","raft_addr":"[fd00::4]:7000"}`, 200},
	}
	for _, tt := range tests {
		f := newFixture(t, nil, nil)
		rec := do(f.srv.Handler(), "POST", "/v1/raft/join", tt.body, nil)
		if rec.Code != tt.want {
			t.Fatalf("%s: status %d, want %d: %s", tt.body, rec.Code, tt.want, rec.Body)
		}
		if joined := len(f.raft.joins) == 1; joined != (tt.want == 200) {
			t.Fatalf("%s: joins %v", tt.body, f.raft.joins)
		}
	}
}

// Item 4: a follower serving HTTPS never sends its client's token to a
// plain http:// leader address.
func TestForward_HTTPSFollowerRefusesPlainLeader(t *testing.T) {
	leader := &recordingLeader{}
	ts := httptest.NewServer(leader)
	defer ts.Close()
	f := followerFixture(t, ts.URL, func(c *Config) {
		c.Token = "s3cret"
		c.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	})
	rec := do(f.srv.Handler(), "POST", "/v1/clusters/app1/ack", `{"by":"bob"}`,
		map[string]string{"Authorization": "Bearer s3cret"})
	if rec.Code == http.StatusOK || leader.count() != 0 {
		t.Fatalf("status %d, leader got %d requests (token sent in clear)", rec.Code, leader.count())
	}
	f.state.setNode(fsm.NodeMeta{ID: "c2", HTTPAddr: "10.0.2.10:8080"}) // bare host:port means http too
	rec = do(f.srv.Handler(), "POST", "/v1/clusters/app1/ack", `{"by":"bob"}`,
		map[string]string{"Authorization": "Bearer s3cret"})
	if rec.Code == http.StatusOK {
		t.Fatalf("bare address: status %d", rec.Code)
	}
}

func TestNew_DefaultClientIgnoresProxy(t *testing.T) {
	f := newFixture(t, nil, nil)
	tr, ok := f.srv.client.Transport.(*http.Transport)
	if !ok || tr.Proxy != nil {
		t.Fatalf("default forwarding client honours HTTP_PROXY: %#v", f.srv.client.Transport)
	}
}

// fakeSwitchover accepts every switchover (the bounds are checked first).
type fakeSwitchover struct{ calls int }

func (f *fakeSwitchover) Switchover(_ context.Context, req recovery.SwitchoverRequest) (recovery.SwitchoverResult, error) {
	f.calls++
	return recovery.SwitchoverResult{DryRun: req.DryRun}, nil
}

// Item 1: only a raft voter's verdict key is recorded.
func TestNodeKey_VotersOnly(t *testing.T) {
	key := `"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="`
	for _, tt := range []struct {
		body string
		want int
	}{
		{`{"id":"c2","public_key":` + key + `}`, 200},
		{`{"id":"ghost1","public_key":` + key + `}`, 400},
		{`{"id":"c2","public_key":"AAAA"}`, 400},
	} {
		f := newFixture(t, nil, nil)
		rec := do(f.srv.Handler(), "POST", "/v1/raft/register", tt.body, nil)
		if rec.Code != tt.want || (len(f.raft.applied()) == 1) != (tt.want == 200) {
			t.Fatalf("%s: status %d, %d applies: %s", tt.body, rec.Code, len(f.raft.applied()), rec.Body)
		}
	}
}
