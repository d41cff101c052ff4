package detector

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quorumha/quorumha/agent"
	"github.com/quorumha/quorumha/sandbox"
)

// freezeMaster stops the master's process with SIGSTOP: its sockets stay
// open and nothing answers, as when its host vanishes without a RST. The
// replica's IO thread keeps saying Yes until slave_net_timeout (set to 60 s,
// MariaDB's default, here). The process is resumed before the sandbox stops.
func freezeMaster(t *testing.T, sb *sandbox.Sandbox) {
	t.Helper()
	pid := sb.Instance(0).PID
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) }) // resumed so the sandbox can stop it
}

// frozenSandbox is a master and one replica with slave_net_timeout=60 and
// the given heartbeat period on the replica.
func frozenSandbox(t *testing.T, heartbeat string) *sandbox.Sandbox {
	t.Helper()
	sb := newSandbox(t, sandbox.Options{Replicas: 1, GTID: true})
	db := adminDB(t, sb, 1)
	for _, q := range []string{"STOP SLAVE", "SET GLOBAL slave_net_timeout = 60",
		"CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD = " + heartbeat, "START SLAVE"} {
		exec(t, db, q)
	}
	if err := sb.WaitReplicating(context.Background()); err != nil {
		t.Fatal(err)
	}
	return sb
}

func runDetector(t *testing.T, sb *sandbox.Sandbox, mod func(*Config)) *Detector {
	t.Helper()
	cfg := Config{Controller: "c1", Zone: "a", ProbeInterval: 200 * time.Millisecond, ProbeTimeout: 500 * time.Millisecond,
		FailureThreshold: 3, Rules: Rules{ReplicaCheck: true, MultiZone: true},
		Clusters: []ClusterSpec{{Name: "app1", Master: sb.Instance(0).Addr(), Replicas: []string{sb.Instance(1).Addr()},
			User: sandbox.AdminUser, Password: sandbox.AdminPassword}},
		Logger: testLogger(t)}
	if mod != nil {
		mod(&cfg)
	}
	d, err := New(cfg, newTestProber(t, 500*time.Millisecond), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return d
}

func waitState(t *testing.T, d *Detector, want AssessState, timeout time.Duration) Assessment {
	t.Helper()
	var a Assessment
	waitFor(t, timeout, want.String(), func() (bool, string) {
		var ok bool
		a, ok = d.Assessment("app1")
		return ok && a.State == want, fmt.Sprintf("%s: %s", a.State, a.Reason)
	})
	return a
}

// TestDetector_SandboxFrozenMasterHeartbeats: a frozen master stops sending
// heartbeats; the replica whose IO thread still says Yes counts as having
// lost it after two heartbeat periods, not after slave_net_timeout.
func TestDetector_SandboxFrozenMasterHeartbeats(t *testing.T) {
	t.Parallel()
	sb := frozenSandbox(t, "0.2")
	d := runDetector(t, sb, nil)
	a := waitState(t, d, AssessHealthy, 15*time.Second)
	waitFor(t, 10*time.Second, "heartbeats in the replica view", func() (bool, string) {
		a, _ = d.Assessment("app1")
		return len(a.ReplicaView) == 1 && a.ReplicaView[0].Heartbeats != nil && a.ReplicaView[0].HeartbeatPeriod == 200*time.Millisecond,
			fmt.Sprintf("%+v", a.ReplicaView)
	})
	frozen := time.Now()
	freezeMaster(t, sb)
	a = waitState(t, d, AssessDeadConfirmed, 40*time.Second)
	t.Logf("dead confirmed %s after the master froze: %s", time.Since(frozen).Round(time.Millisecond), a.Reason)
	if o := a.ReplicaView[0]; o.IORunning != "Yes" || !o.HeartbeatStalled(a.At) {
		t.Errorf("want the replica's IO thread still Yes with its heartbeats stalled: %+v", o)
	}
}

// agentAdapter is cmd's HostAgents adapter in miniature: one real agent.
type agentAdapter struct{ c *agent.Client }

func (a agentAdapter) Reach(ctx context.Context, _, _, addr string, timeout time.Duration) (AgentReach, error) {
	r, err := a.c.Reach(ctx, addr, timeout)
	return AgentReach{Reachable: r.Reachable, Stage: r.Stage, Error: r.Error, ElapsedMillis: r.ElapsedMillis}, err
}

func (a agentAdapter) ServerProcess(ctx context.Context, _, _ string) (HostProcess, error) {
	p, err := a.c.ServerProcess(ctx)
	return HostProcess{Known: p.Known, Running: p.Running, PID: p.PID, Since: p.Since, Error: p.Error}, err
}

// TestDetector_SandboxFrozenMasterAgent: with the heartbeat period at 30 s
// (what MariaDB derives from slave_net_timeout=60), only the replica host's
// agent can tell, within seconds, that the frozen master does not greet.
func TestDetector_SandboxFrozenMasterAgent(t *testing.T) {
	t.Parallel()
	sb := frozenSandbox(t, "30")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mysql-bin.index"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	srv, err := agent.New(agent.Config{BinlogDir: dir, InsecureNoAuth: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	c, err := agent.NewClient(ts.URL, agent.ClientOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d := runDetector(t, sb, func(cfg *Config) {
		cfg.Agents = agentAdapter{c}
		cfg.Clusters[0].Agents = map[string]string{sb.Instance(1).Addr(): ts.URL}
	})
	waitState(t, d, AssessHealthy, 15*time.Second)
	frozen := time.Now()
	freezeMaster(t, sb)
	a := waitState(t, d, AssessDeadConfirmed, 40*time.Second)
	t.Logf("dead confirmed %s after the master froze: %s", time.Since(frozen).Round(time.Millisecond), a.Reason)
	o := a.ReplicaView[0]
	if o.IORunning != "Yes" || o.Reach == nil || !o.Reach.Answered || o.Reach.Reachable || o.Reach.Stage != agent.ReachStageGreeting {
		t.Errorf("want the IO thread still Yes and the agent connected but ungreeted: %+v reach %+v", o, o.Reach)
	}
	if !strings.Contains(a.Reason, "agent cannot reach the master") {
		t.Errorf("reason does not name the agent: %s", a.Reason)
	}
}

// TestDetector_SandboxKillFastPath: kill -9 of the master with its host's
// agent watching the pid file: the first refused probe is a Down vote.
func TestDetector_SandboxKillFastPath(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t, sandbox.Options{Replicas: 1, GTID: true})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mysql-bin.index"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	srv, err := agent.New(agent.Config{BinlogDir: dir, InsecureNoAuth: true,
		PIDFile: filepath.Join(sb.Instance(0).DataDir, "mariadbd.pid")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	c, err := agent.NewClient(ts.URL, agent.ClientOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d := runDetector(t, sb, func(cfg *Config) {
		cfg.FailureThreshold = 1000 // only the fast path can make this vote Down
		cfg.Agents = agentAdapter{c}
		cfg.Clusters[0].Agents = map[string]string{sb.Instance(0).Addr(): ts.URL}
	})
	waitState(t, d, AssessHealthy, 15*time.Second)
	killed := time.Now()
	if err := sb.Kill(0); err != nil {
		t.Fatal(err)
	}
	a := waitState(t, d, AssessDeadConfirmed, 20*time.Second)
	t.Logf("dead confirmed %s after kill -9: %s", time.Since(killed).Round(time.Millisecond), a.Reason)
	if v := a.Votes[0]; !v.ProcessGone || v.State != StateDown || !strings.Contains(v.Detail, "no server process running") {
		t.Errorf("vote %+v, want down by the fast path", v)
	}
}
