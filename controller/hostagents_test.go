package controller

import (
	"context"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/quorumha/quorumha/agent"
	"github.com/quorumha/quorumha/config"
)

// TestHostAgents_Adapter asks a real agent handler through the adapter the
// detector uses.
func TestHostAgents_Adapter(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mysql-bin.index"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	srv, err := agent.New(agent.Config{BinlogDir: dir, Token: "tok", PIDFile: filepath.Join(dir, "none.pid")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	cfg := &config.Config{Clusters: []config.Cluster{{Name: "app1", Agent: config.AgentClient{Token: "tok"},
		Instances: []config.Instance{{Address: "10.0.0.1:3306", Agent: ts.URL}, {Address: "10.0.0.2:3306"}}}}}
	h := newHostAgents(cfg)
	if urls := agentURLs(cfg.Clusters[0]); len(urls) != 1 || urls["10.0.0.1:3306"] != ts.URL {
		t.Errorf("agent URLs %v", urls)
	}
	ctx := context.Background()
	r, err := h.Reach(ctx, "app1", ts.URL, closed, 200*time.Millisecond)
	if err != nil || r.Reachable || r.Stage != agent.ReachStageConnect {
		t.Errorf("reach of a closed port: %+v, %v", r, err)
	}
	p, err := h.ServerProcess(ctx, "app1", ts.URL)
	if err != nil || !p.Gone() {
		t.Errorf("no pid file: %+v, %v; want gone", p, err)
	}
	if _, err := h.Reach(ctx, "nope", ts.URL, closed, time.Second); err == nil {
		t.Error("unknown cluster answered")
	}
}
