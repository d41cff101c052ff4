package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quorumha/quorumha/agent"
	"github.com/quorumha/quorumha/sandbox"
	"github.com/quorumha/quorumha/tests/harness"
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

// TestBenchHostVanished freezes the master (SIGSTOP: its sockets stay open
// and nothing answers, as when its host vanishes without a RST) with the
// replicas at MariaDB's defaults (slave_net_timeout=60, heartbeat period
// 30 s), agents beside every instance and a shutdown hook that kills the
// frozen server (the fence proof). It prints freeze → new master writable;
// before the replica hosts' reach checks this waited for slave_net_timeout.
func TestBenchHostVanished(t *testing.T) {
	skipUnlessBench(t)
	var writable []time.Duration
	for i := 0; i < benchRuns(); i++ {
		writable = append(writable, benchOneVanish(t))
	}
	fmt.Println(summarize("host vanished (SIGSTOP, slave_net_timeout=60): freeze -> new master writable", writable))
}

func benchOneVanish(t *testing.T) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sb := sandbox.New(t, sandbox.Options{Replicas: 2, GTID: true, SemiSync: true})
	for i := 1; i < 3; i++ {
		db, err := sb.AdminDB(i)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"STOP SLAVE", "SET GLOBAL slave_net_timeout = 60",
			"CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD = 30", "START SLAVE"} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s on %d: %v", q, i, err)
			}
		}
		db.Close()
	}
	if err := sb.WaitReplicating(ctx); err != nil {
		t.Fatal(err)
	}
	pid := sb.Instance(0).PID
	hook := filepath.Join(t.TempDir(), "shutdown.sh")
	// The shutdown hook kills the frozen server: what MHA's shutdown_script
	// does by power-cycling the host.
	if err := os.WriteFile(hook, []byte(fmt.Sprintf("#!/bin/sh\nkill -9 %d 2>/dev/null\nexit 0\n", pid)), 0o755); err != nil {
		t.Fatal(err)
	}
	clusters := sandboxClusterYAMLWithAgents(sb, startInProcessAgents(ctx, t, sb)) +
		"    hooks:\n      shutdown: " + hook + "\n"
	g := harness.StartGroup(t, bin.Path(t), harness.GroupOptions{N: 3, ClustersYAML: clusters, LogLevel: "info"})
	defer func() {
		_ = syscall.Kill(pid, syscall.SIGCONT)
		for _, c := range g.Running() {
			g.Kill(c)
		}
		_ = sb.Stop()
	}()
	e := &detEnv{sb: sb, g: g, master: sb.Instance(0).Addr()}
	if _, err := g.WaitLeader(ctx, g.Nodes); err != nil {
		t.Fatal(err)
	}
	e.waitHealthy(ctx, t)
	start := time.Now()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	err := harness.Poll(ctx, 10*time.Millisecond, func() error {
		for i := 1; i < 3; i++ {
			if ro, err := instanceReadOnly(ctx, sb, i); err == nil && !ro {
				return nil
			}
		}
		return fmt.Errorf("no replica writable yet")
	})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	logFailoverSteps(ctx, t, g, start)
	return took
}

// logFailoverSteps logs the newest failover record's opening and steps,
// relative to start, to show where the time went.
func logFailoverSteps(ctx context.Context, t *testing.T, g *harness.Group, start time.Time) {
	var h struct {
		Records []struct {
			ID     uint64    `json:"id"`
			Kind   string    `json:"kind"`
			Opened time.Time `json:"opened"`
			Steps  []struct {
				Name    string    `json:"name"`
				Start   time.Time `json:"start"`
				End     time.Time `json:"end"`
				Outcome string    `json:"outcome"`
			} `json:"steps"`
		} `json:"records"`
	}
	for _, c := range g.Running() {
		if _, err := harness.Do(ctx, http.MethodGet, c.URL("/v1/history?cluster=sandbox"), nil, &h); err == nil {
			break
		}
	}
	for _, r := range h.Records {
		t.Logf("record %d %s opened +%s", r.ID, r.Kind, r.Opened.Sub(start).Round(time.Millisecond))
		for _, s := range r.Steps {
			t.Logf("  %-10s +%s .. +%s %s", s.Name, s.Start.Sub(start).Round(time.Millisecond), s.End.Sub(start).Round(time.Millisecond), s.Outcome)
		}
	}
}
