package e2e

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumha/quorumha/agent"
	"github.com/quorumha/quorumha/tests/sandbox"
)

// TestBenchFailoverAgents is TestBenchFailover with a host agent beside every
// instance: the controllers' first refused probe, with the master's agent
// saying the server process is gone, is a Down vote (the crash fast path),
// instead of waiting for probe_interval x failure_threshold.
func TestBenchFailoverAgents(t *testing.T) {
	skipUnlessBench(t)
	var writable, repointed []time.Duration
	lost := 0
	for i := 0; i < benchRuns(); i++ {
		w, r, l := benchOneFailover(t, true)
		writable, repointed, lost = append(writable, w), append(repointed, r), lost+l
	}
	fmt.Println(summarize("failover with agents: kill -9 master -> new master writable (defaults: probe 500ms x3)", writable))
	fmt.Println(summarize("failover with agents: kill -9 master -> all replicas replicating from it", repointed))
	fmt.Printf("BENCH failover with agents: acknowledged writes lost over %d runs: %d\n", len(writable), lost)
}

// startInProcessAgents serves an agent for every sandbox instance from the
// test process (no auth: loopback, test only), each watching its server's
// pid file, and returns their URLs by instance address. They stop with ctx
// or the test.
func startInProcessAgents(ctx context.Context, t *testing.T, sb *sandbox.Sandbox) map[string]string {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	urls := map[string]string{}
	for _, in := range sb.Instances() {
		srv, err := agent.New(agent.Config{BinlogDir: in.DataDir, BinlogIndex: filepath.Join(in.DataDir, sandbox.BinlogIndex),
			PIDFile: filepath.Join(in.DataDir, "mariadbd.pid"), InsecureNoAuth: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = srv.Serve(ctx, ln) }) // ends with ctx; its error is the listener closing
		urls[in.Addr()] = "http://" + ln.Addr().String()
	}
	return urls
}

// sandboxClusterYAMLWithAgents is sandboxClusterYAML with each instance's
// agent URL.
func sandboxClusterYAMLWithAgents(sb *sandbox.Sandbox, agents map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: sandbox\n    user: %s\n    password: %s\n    repl_user: %s\n    repl_password: %s\n    instances:\n",
		sandbox.AdminUser, sandbox.AdminPassword, sandbox.ReplUser, sandbox.ReplPassword)
	for _, in := range sb.Instances() {
		fmt.Fprintf(&b, "      - address: %s\n        agent: %s\n", in.Addr(), agents[in.Addr()])
	}
	return b.String()
}
