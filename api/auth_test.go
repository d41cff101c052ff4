package api

import (
	"net/http"
	"testing"
)

func TestAuth_ReadAndWriteTokens(t *testing.T) {
	const write, read = "w-token", "r-token"
	f := newFixture(t, func(c *Config) { c.Token, c.ReadToken = write, read }, nil)
	bearer := func(tok string) map[string]string {
		if tok == "" {
			return nil
		}
		return map[string]string{"Authorization": "Bearer " + tok}
	}
	tests := []struct {
		name, method, path, token string
		want                      int
	}{
		{"read without token", "GET", "/v1/status", "", http.StatusUnauthorized},
		{"read with read token", "GET", "/v1/status", read, http.StatusOK},
		{"read with write token", "GET", "/v1/history", write, http.StatusOK},
		{"read with unknown token", "GET", "/v1/leader", "nope", http.StatusForbidden},
		{"cluster read without token", "GET", "/v1/clusters/app1", "", http.StatusUnauthorized},
		{"write without token", "POST", "/v1/clusters/app1/ack", "", http.StatusUnauthorized},
		{"write with read token", "POST", "/v1/clusters/app1/ack", read, http.StatusForbidden},
		{"write with write token", "POST", "/v1/clusters/app1/ack", write, http.StatusOK},
		{"healthz open", "GET", "/healthz", "", http.StatusOK},
		{"readyz open", "GET", "/readyz", "", http.StatusOK},
		{"metrics open by default", "GET", "/metrics", "", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := ""
			if tt.method == "POST" {
				body = `{"by":"t"}`
			}
			rec := do(f.srv.Handler(), tt.method, tt.path, body, bearer(tt.token))
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.want, rec.Body)
			}
			if tt.want == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
	if n := len(f.raft.applied()); n != 1 {
		t.Fatalf("%d commands applied, want 1 (only the write-token ack)", n)
	}
}

func TestAuth_ReadsOpenWithoutReadToken(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Token = "w-token" }, nil)
	if rec := do(f.srv.Handler(), "GET", "/v1/status", "", nil); rec.Code != http.StatusOK {
		t.Fatalf("read without a read token configured: %d", rec.Code)
	}
	if rec := do(f.srv.Handler(), "POST", "/v1/clusters/app1/ack", "", nil); rec.Code != http.StatusUnauthorized {
		t.Fatalf("write without token: %d", rec.Code)
	}
}

func TestAuth_MetricsAuth(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Token, c.ReadToken, c.MetricsAuth = "w-token", "r-token", true }, nil)
	for _, tt := range []struct {
		token string
		want  int
	}{{"", 401}, {"nope", 403}, {"r-token", 200}, {"w-token", 200}} {
		var h map[string]string
		if tt.token != "" {
			h = map[string]string{"Authorization": "Bearer " + tt.token}
		}
		if rec := do(f.srv.Handler(), "GET", "/metrics", "", h); rec.Code != tt.want {
			t.Errorf("/metrics with %q: status %d, want %d", tt.token, rec.Code, tt.want)
		}
	}
	if rec := do(f.srv.Handler(), "GET", "/healthz", "", nil); rec.Code != 200 {
		t.Errorf("/healthz with metrics_auth: %d", rec.Code)
	}
}
