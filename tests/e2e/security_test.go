package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/tests/harness"
)

// TestSecurity_TLSGroup runs three real controllers with HTTPS, raft mutual
// TLS, a write token and a read token: they elect a leader over TLS, the
// CLI agrees on it through every controller with --ca, a write sent to a
// follower is forwarded to the leader over HTTPS, and reads without a
// token, writes with the read token and plain HTTP are refused.
func TestSecurity_TLSGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("starts controller processes")
	}
	parallel(t)
	const writeToken, readToken = "e2e-write-token", "e2e-read-token"
	g := harness.StartGroup(t, bin.Path(t), harness.GroupOptions{
		N: 3, ClustersYAML: clustersYAML, Token: writeToken, ReadToken: readToken, TLS: true,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	leader, err := g.WaitLeader(ctx, g.Nodes)
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://" + g.Node(leader.ID).HTTPAddr; leader.HTTPAddr != want {
		t.Fatalf("leader advertises %q, want %q", leader.HTTPAddr, want)
	}

	for _, c := range g.Nodes {
		out, code := cli(ctx, t, "leader", "--addr", c.URL(""), "--ca", g.CAFile, "--token", readToken)
		if code != 0 || !strings.Contains(out, "leader "+leader.ID) || !strings.Contains(out, leader.HTTPAddr) {
			t.Fatalf("quorumha leader via %s: exit %d: %s", c.ID, code, out)
		}
	}

	// A write through a follower, authorised by the token file, reaches
	// every controller; the leader logs that a follower forwarded it.
	follower := otherThan(g.Nodes, leader.ID)[0]
	out, code := cli(ctx, t, "maintenance", "--cluster", "app1", "--for", "30m", "--reason", "tls-e2e",
		"--addr", follower.URL(""), "--ca", g.CAFile, "--token-file", g.TokenFile)
	if code != 0 {
		t.Fatalf("maintenance through follower %s: exit %d: %s", follower.ID, code, out)
	}
	for _, c := range g.Nodes {
		err := harness.Poll(ctx, 100*time.Millisecond, func() error {
			var cl map[string]any
			if _, err := g.Do(ctx, http.MethodGet, c.URL("/v1/clusters/app1"), nil, &cl); err != nil {
				return err
			}
			if got := findString(cl, "maintenance_reason"); got != "tls-e2e" {
				return fmt.Errorf("%s: maintenance_reason=%q", c.ID, got)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	logText, err := os.ReadFile(g.Node(leader.ID).LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logText), "forwarded_by="+follower.ID) {
		t.Fatalf("leader %s did not log a write forwarded by %s", leader.ID, follower.ID)
	}

	status := func(c *harness.Controller, method, path, token string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, c.URL(path), strings.NewReader(`{"by":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := g.Client().Do(req)
		if err != nil {
			t.Fatalf("%s %s via %s: %v", method, path, c.ID, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tt := range []struct {
		name, method, path, token string
		want                      int
	}{
		{"read without token", "GET", "/v1/status", "", 401},
		{"history without token", "GET", "/v1/history", "", 401},
		{"read with read token", "GET", "/v1/status", readToken, 200},
		{"write with read token", "POST", "/v1/clusters/app1/ack", readToken, 403},
		{"healthz open", "GET", "/healthz", "", 200},
		{"readyz open", "GET", "/readyz", "", 200},
	} {
		if got := status(follower, tt.method, tt.path, tt.token); got != tt.want {
			t.Errorf("%s via %s: status %d, want %d", tt.name, follower.ID, got, tt.want)
		}
	}
	if resp, err := http.Get("http://" + follower.HTTPAddr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP was served")
		}
	}

	// The web view loads without a token over HTTPS, and when its first
	// read is refused it asks for the read token instead of showing data.
	dom := dumpDOM(ctx, t, chromiumPath(t), follower.URL("/ui"), "--ignore-certificate-errors")
	if !strings.Contains(dom, "waiting for a read token") || strings.Contains(dom, `id="token-panel" class="card token" hidden`) ||
		!strings.Contains(dom, `id="token-input"`) {
		t.Errorf("web view without a read token does not ask for one:\n%s", dom)
	}
}
