package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRun_ClusterViewShowsTheLease runs a real controller whose cluster's
// instances have agents and checks that GET /v1/clusters/{name} carries
// this controller's lease view (no master is recorded, so none is renewed).
func TestRun_ClusterViewShowsTheLease(t *testing.T) {
	dir := t.TempDir()
	raftAddr, httpAddr := freeLoopback(t), freeLoopback(t)
	cfgPath := filepath.Join(dir, "c1.yaml")
	cfgText := fmt.Sprintf(`node:
  id: c1
  zone: zone-a
  data_dir: %s
  raft_addr: %s
  http_addr: %s
  bootstrap: [c1=%s]
log:
  level: error
detector:
  probe_interval: 100ms
  probe_timeout: 200ms
recovery:
  lease_ttl: 1500ms
clusters:
  - name: app1
    user: monitor
    instances:
      - address: %s
        agent: http://%s
      - address: %s
`, filepath.Join(dir, "data"), raftAddr, httpAddr, raftAddr, freeLoopback(t), freeLoopback(t), freeLoopback(t))
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := newRootCmd()
	cmd.SetArgs([]string{"run", "--config", cfgPath})
	cmd.SetOut(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("controller did not stop within 30s")
		}
	})
	var got struct {
		Cluster struct {
			Topology struct {
				Lease *struct {
					Controller string            `json:"controller"`
					TTL        string            `json:"ttl"`
					Masters    []json.RawMessage `json:"masters"`
				} `json:"lease"`
			} `json:"topology"`
		} `json:"cluster"`
	}
	poll(t, 30*time.Second, "the lease view", func() (bool, string) {
		resp, err := http.Get("http://" + httpAddr + "/v1/clusters/app1")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &got) != nil {
			return false, fmt.Sprintf("%d %s", resp.StatusCode, b)
		}
		return got.Cluster.Topology.Lease != nil, string(b)
	})
	l := got.Cluster.Topology.Lease
	if l.Controller != "c1" || l.TTL != "1.5s" || l.Masters == nil || len(l.Masters) != 0 {
		t.Errorf("lease view %+v: want c1's, ttl 1.5s, no master renewed", *l)
	}
}
