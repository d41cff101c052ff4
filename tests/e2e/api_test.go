package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/tests/harness"
)

// TestGroup_BadInputChangesNothing sends malformed, unauthorised and
// oversize writes to a real group with an API token and checks each gets the
// right 4xx and that the replicated state did not move.
func TestGroup_BadInputChangesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts controller processes")
	}
	parallel(t)
	tokenFile := filepath.Join(t.TempDir(), "api.token")
	if err := os.WriteFile(tokenFile, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := harness.StartGroup(t, bin.Path(t), harness.GroupOptions{
		N:            3,
		ClustersYAML: clustersYAML,
		ExtraYAML:    "api:\n  token_file: " + tokenFile + "\n",
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	leader, err := g.WaitLeader(ctx, g.Nodes)
	if err != nil {
		t.Fatal(err)
	}
	follower := otherThan(g.Nodes, leader.ID)[0]
	// Each controller registers its verdict key and HTTP address through
	// the leader at start; measure once that is done.
	waitRegistered(ctx, t, g, leader)
	before := settledAppliedIndex(ctx, t, g.Node(leader.ID))

	cases := []struct {
		name, method, path, token, body string
		want                            int
	}{
		{"no token", "POST", "/v1/clusters/app1/ack", "", `{"by":"x"}`, 401},
		{"wrong token", "POST", "/v1/clusters/app1/ack", "nope", `{"by":"x"}`, 403},
		{"malformed json", "POST", "/v1/clusters/app1/ack", "s3cret-token", `{"by":`, 400},
		{"unknown field", "POST", "/v1/clusters/app1/ack", "s3cret-token", `{"by":"x","bogus":1}`, 400},
		{"unknown cluster", "POST", "/v1/clusters/nosuch/ack", "s3cret-token", `{"by":"x"}`, 404},
		{"oversize body", "POST", "/v1/clusters/app1/ack", "s3cret-token", `{"by":"` + strings.Repeat("x", 200<<10) + `"}`, 413},
		{"bad maintenance", "POST", "/v1/clusters/app1/maintenance", "s3cret-token", `{"duration":"soon"}`, 400},
		{"join without id", "POST", "/v1/raft/join", "s3cret-token", `{"raft_addr":"127.0.0.1:1"}`, 400},
		{"remove unknown peer", "DELETE", "/v1/raft/peers/nobody", "s3cret-token", ``, 404},
	}
	for _, c := range cases {
		for _, via := range []*harness.Controller{g.Node(leader.ID), follower} {
			req, _ := http.NewRequestWithContext(ctx, c.method, via.URL(c.path), bytes.NewBufferString(c.body))
			req.Header.Set("Content-Type", "application/json")
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s via %s: %v", c.name, via.ID, err)
			}
			var e struct {
				Error string `json:"error"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&e)
			resp.Body.Close()
			if resp.StatusCode != c.want || e.Error == "" {
				t.Errorf("%s via %s: status %d error %q, want %d with a JSON error", c.name, via.ID, resp.StatusCode, e.Error, c.want)
			}
		}
	}
	if after := appliedIndex(ctx, t, g.Node(leader.ID)); after != before {
		t.Fatalf("applied index moved from %d to %d after rejected requests", before, after)
	}
	// Reads stay open without a token, and a good write with it succeeds.
	if _, err := harness.Do(ctx, http.MethodGet, follower.URL("/v1/history"), nil, nil); err != nil {
		t.Fatalf("read without token: %v", err)
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", follower.URL("/v1/clusters/app1/ack"), strings.NewReader(`{"by":"ok"}`))
	req.Header.Set("Authorization", "Bearer s3cret-token")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("authorised ack: %v %v", err, resp)
	}
	resp.Body.Close()
	waitAcked(ctx, t, g.Nodes, "ok")
}

// TestGroup_SIGTERMTransfersLeadership stops the leader gracefully: it exits
// 0 and the others have a new leader.
func TestGroup_SIGTERMTransfersLeadership(t *testing.T) {
	if testing.Short() {
		t.Skip("starts controller processes")
	}
	parallel(t)
	g := harness.StartGroup(t, bin.Path(t), harness.GroupOptions{N: 3, ClustersYAML: clustersYAML})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	leader, err := g.WaitLeader(ctx, g.Nodes)
	if err != nil {
		t.Fatal(err)
	}
	c := g.Node(leader.ID)
	g.Stop(c)
	if code := c.ExitCode(); code != 0 {
		t.Fatalf("%s exited %d after SIGTERM, want 0", c.ID, code)
	}
	next, err := g.WaitLeader(ctx, otherThan(g.Nodes, c.ID))
	if err != nil {
		t.Fatal(err)
	}
	if next.ID == c.ID {
		t.Fatalf("stopped node %s still reported leader", c.ID)
	}
}

func appliedIndex(ctx context.Context, t *testing.T, c *harness.Controller) uint64 {
	t.Helper()
	var st struct {
		Applied uint64 `json:"fsm_applied_index"`
	}
	if _, err := harness.Do(ctx, http.MethodGet, c.URL("/v1/status"), nil, &st); err != nil {
		t.Fatal(err)
	}
	return st.Applied
}

// registrationSettles outlasts a controller's registration retry (its
// registerEvery, 2 s): a registration begun before the leader's own record
// of itself committed may apply again once, after the addresses show.
const registrationSettles = 3 * time.Second

// settledAppliedIndex waits until c's applied index has not moved for
// registrationSettles and returns it: nothing is applying any more, so a
// later move has a cause the test made.
func settledAppliedIndex(ctx context.Context, t *testing.T, c *harness.Controller) uint64 {
	t.Helper()
	last, since := appliedIndex(ctx, t, c), time.Now()
	err := harness.Poll(ctx, 250*time.Millisecond, func() error {
		if now := appliedIndex(ctx, t, c); now != last {
			last, since = now, time.Now()
		}
		if time.Since(since) < registrationSettles {
			return fmt.Errorf("applied index %d, unchanged for %s", last, time.Since(since).Round(time.Millisecond))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("applied index never settled: %v", err)
	}
	return last
}

// waitRegistered waits until the leader's replicated state holds every
// controller's HTTP address (recorded after its verdict key).
func waitRegistered(ctx context.Context, t *testing.T, g *harness.Group, leader harness.LeaderInfo) {
	t.Helper()
	err := harness.Poll(ctx, 100*time.Millisecond, func() error {
		var resp struct {
			Peers []struct {
				ID       string `json:"id"`
				HTTPAddr string `json:"http_addr"`
			} `json:"peers"`
		}
		if _, err := g.Do(ctx, http.MethodGet, g.Node(leader.ID).URL("/v1/raft/peers"), nil, &resp); err != nil {
			return err
		}
		peers := resp.Peers
		for _, p := range peers {
			if p.HTTPAddr == "" {
				return fmt.Errorf("%s not registered yet", p.ID)
			}
		}
		if len(peers) < len(g.Nodes) {
			return fmt.Errorf("%d peers", len(peers))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("controllers did not register: %v", err)
	}
}
