package main

import (
	"bytes"
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

	"github.com/spf13/cobra"
)

func TestNormalizeAddr_Forms(t *testing.T) {
	tests := []struct{ in, want string }{
		{"127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"http://c1:8080/", "http://c1:8080"},
		{" https://c1:8443 ", "https://c1:8443"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := normalizeAddr(tt.in); got != tt.want {
				t.Fatalf("normalizeAddr(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestAPIClient_Errors(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		contains []string
	}{
		{"json error", 503, `{"error":"consensus: no leader known","code":503}`, []string{"GET /v1/leader", "no leader known", "HTTP 503"}},
		{"unauthorized hint", 401, `{"error":"missing bearer token","code":401}`, []string{"QUORUMHA_TOKEN"}},
		{"forbidden hint", 403, `{"error":"invalid bearer token","code":403}`, []string{"rejected the token"}},
		{"plain text", 404, "404 page not found\n", []string{"404 page not found", "HTTP 404"}},
		{"empty body", 502, "", []string{"Bad Gateway"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			defer ts.Close()
			c := &apiClient{base: ts.URL, http: ts.Client()}
			err := c.do(context.Background(), "GET", "/v1/leader", nil, nil)
			var ae *apiError
			if !errors.As(err, &ae) || ae.Status != tt.status {
				t.Fatalf("err %v, want apiError with status %d", err, tt.status)
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
		})
	}
}

func TestAPIClient_Unreachable(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	base := ts.URL
	ts.Close()
	c := &apiClient{base: base, http: &http.Client{Timeout: time.Second}}
	err := c.do(context.Background(), "GET", "/v1/status", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "cannot reach controller at "+base) {
		t.Fatalf("err %v", err)
	}
}

// cannedAPI answers fixed JSON per "METHOD path" and records requests.
type cannedAPI struct {
	mu      sync.Mutex
	answers map[string]string
	seen    []string
	auth    []string
	bodies  []string
}

func (c *cannedAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	key := r.Method + " " + r.URL.RequestURI()
	c.mu.Lock()
	c.seen = append(c.seen, key)
	c.auth = append(c.auth, r.Header.Get("Authorization"))
	c.bodies = append(c.bodies, string(body))
	ans, ok := c.answers[key]
	c.mu.Unlock()
	if !ok {
		w.WriteHeader(404)
		_, _ = io.WriteString(w, `{"error":"no canned answer for `+key+`","code":404}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, ans)
}

func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmds := map[string]func() *cobra.Command{
		"leader": newLeaderCmd, "status": newStatusCmd, "history": newHistoryCmd,
		"ack": newAckCmd, "maintenance": newMaintenanceCmd, "peers": newPeersCmd,
	}
	cmd := cmds[args[0]]()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SetArgs(args[1:])
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestCommands_AgainstAPI(t *testing.T) {
	api := &cannedAPI{answers: map[string]string{
		"GET /v1/leader":                        `{"id":"c2","raft_addr":"r:7000","http_addr":"h:8080","term":4}`,
		"GET /v1/history?limit=5":               `{"index":9,"records":[]}`,
		"GET /v1/history?cluster=app1&limit=20": `{"index":9,"records":[{"id":3,"cluster":"app1","kind":"failover","result":"failed"}]}`,
		"GET /v1/history/3":                     `{"index":9,"record":{"id":3,"cluster":"app1","kind":"failover","result":"failed"}}`,
		"POST /v1/clusters/app1/ack":            `{"cluster":"app1","by":"ops","at":"2026-11-23T02:00:00Z"}`,
		"POST /v1/clusters/app1/maintenance":    `{"cluster":"app1","until":"2026-11-23T02:30:00Z"}`,
		"DELETE /v1/clusters/app1/maintenance":  `{"cluster":"app1"}`,
	}}
	ts := httptest.NewServer(api)
	defer ts.Close()
	tests := []struct {
		args     []string
		contains string
		body     string // expected request body substring
	}{
		{[]string{"leader", "--addr", ts.URL}, "leader c2  raft r:7000  http h:8080  term 4", ""},
		{[]string{"leader", "--addr", ts.URL, "--json"}, `"http_addr": "h:8080"`, ""},
		{[]string{"history", "--addr", ts.URL, "--limit", "5"}, "no records", ""},
		{[]string{"history", "--addr", ts.URL, "--cluster", "app1"}, "3   app1     failover", ""},
		{[]string{"history", "--addr", ts.URL, "--id", "3"}, "result:    failed", ""},
		{[]string{"ack", "--addr", ts.URL, "--cluster", "app1", "--by", "ops", "--token", "t0k"}, "acknowledged the last failover of app1 (by ops", `"by":"ops"`},
		{[]string{"maintenance", "--addr", ts.URL, "--cluster", "app1", "--for", "30m", "--token", "t0k"}, "app1 in maintenance until 2026-11-23 02:30:00Z", `"duration":"30m0s"`},
		{[]string{"maintenance", "--addr", ts.URL, "--cluster", "app1", "--end", "--token", "t0k"}, "maintenance of app1 ended", ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[:1], " ")+" "+strings.Join(tt.args[3:], " "), func(t *testing.T) {
			out, err := runCmd(t, tt.args...)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if !strings.Contains(out, tt.contains) {
				t.Fatalf("output %q lacks %q", out, tt.contains)
			}
			api.mu.Lock()
			defer api.mu.Unlock()
			last := len(api.seen) - 1
			if tt.body != "" && !strings.Contains(api.bodies[last], tt.body) {
				t.Fatalf("request body %q lacks %q", api.bodies[last], tt.body)
			}
			if tt.args[0] == "ack" || tt.args[0] == "maintenance" {
				if api.auth[last] != "Bearer t0k" {
					t.Fatalf("authorization %q", api.auth[last])
				}
				if !json.Valid([]byte(api.bodies[last])) && api.bodies[last] != "" {
					t.Fatalf("invalid request body %q", api.bodies[last])
				}
			}
		})
	}
}

func TestCommands_UsageErrors(t *testing.T) {
	tests := [][]string{
		{"ack"},
		{"maintenance", "--cluster", "app1"},
		{"maintenance", "--cluster", "app1", "--for", "1m", "--end"},
		{"history", "--limit", "0", "--addr", "127.0.0.1:1"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			if _, err := runCmd(t, args...); err == nil {
				t.Fatal("expected an error")
			}
		})
	}
}
