package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/agent"
	"github.com/quorumha/quorumha/config"
)

// runAgentCmd runs `quorumha agent ARGS` through the root command, as main
// does, and returns stdout, stderr and the error.
func runAgentCmd(ctx context.Context, args ...string) (string, string, error) {
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"agent"}, args...))
	err := root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// agentDir writes a binlog dir with an index and a 0600 token file and
// returns the dir and the token file.
func agentDir(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	binlogs := filepath.Join(dir, "mysql")
	if err := os.Mkdir(binlogs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(binlogs, "mysql-bin.index"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(dir, "agent.token")
	if err := os.WriteFile(token, []byte("tok-xyz\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return binlogs, token
}

func writeAgentConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAgentCmd_BadConfig(t *testing.T) {
	binlogs, _ := agentDir(t)
	for _, tc := range []struct {
		name string
		yaml string
		want []string
	}{
		{"no binlog_dir", "agent:\n  listen: 127.0.0.1:7080\n  insecure_no_auth: true\n", []string{"agent.binlog_dir: required"}},
		{"no auth", "agent:\n  listen: 127.0.0.1:7080\n  binlog_dir: " + binlogs + "\n", []string{"agent.token_file", "agent.client_ca", "agent.insecure_no_auth"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeAgentConfig(t, tc.yaml)
			for _, args := range [][]string{{"--config", path}, {"--config", path, "--check"}} {
				_, _, err := runAgentCmd(context.Background(), args...)
				if got := exitCodeOf(err); got != 2 {
					t.Fatalf("%v: exit %d (%v), want 2", args, got, err)
				}
				for _, w := range append([]string{path + ": "}, tc.want...) {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%v: error %q lacks %q", args, err, w)
					}
				}
			}
		})
	}
	if _, _, err := runAgentCmd(context.Background()); exitCodeOf(err) != 2 || !strings.Contains(err.Error(), "--config") {
		t.Errorf("no --config: %v", err)
	}
}

func TestAgentCmd_CheckPrintsMaskedConfig(t *testing.T) {
	binlogs, token := agentDir(t)
	path := writeAgentConfig(t, "agent:\n  listen: 127.0.0.1:7080\n  binlog_dir: "+binlogs+"\n  token_file: "+token+"\n")
	out, _, err := runAgentCmd(context.Background(), "--config", path, "--check")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`"listen": "127.0.0.1:7080"`, `"binlog_index": "` + filepath.Join(binlogs, "mysql-bin.index") + `"`, `"token": "****"`} {
		if !strings.Contains(out, w) {
			t.Errorf("--check output lacks %s:\n%s", w, out)
		}
	}
	if strings.Contains(out, "tok-xyz") {
		t.Errorf("--check printed the token:\n%s", out)
	}
}

// TestAgentCmd_RunsAndStops starts the agent on a free port, waits for
// /healthz, and checks that cancelling the context (what SIGTERM does in
// main) stops it with exit 0.
func TestAgentCmd_RunsAndStops(t *testing.T) {
	binlogs, token := agentDir(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	path := writeAgentConfig(t, "agent:\n  listen: "+addr+"\n  binlog_dir: "+binlogs+"\n  token_file: "+token+"\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, err := runAgentCmd(ctx, "--config", path)
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent did not answer /healthz: %v", err)
		}
		select {
		case err := <-done:
			t.Fatalf("agent exited early: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	resp, err := http.Get("http://" + addr + "/v1/binlogs")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/v1/binlogs without a token: %d, want 401", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("agent stopped with %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("agent did not stop")
	}
}

// TestAgentCmd_FenceConfig: the agent.fence section reaches the agent (and
// its absence leaves fencing off), and --check masks the password.
func TestAgentCmd_FenceConfig(t *testing.T) {
	binlogs, token := agentDir(t)
	pw := filepath.Join(filepath.Dir(token), "fence.pw")
	if err := os.WriteFile(pw, []byte("fence-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(filepath.Dir(token), "fence.json")
	base := "agent:\n  listen: 127.0.0.1:7080\n  binlog_dir: " + binlogs + "\n  token_file: " + token + "\n"
	cfg, err := config.LoadAgent(writeAgentConfig(t, base))
	if err != nil {
		t.Fatal(err)
	}
	if agentConfig(cfg).Fence != nil {
		t.Fatal("fencing on without an agent.fence section")
	}
	path := writeAgentConfig(t, base+"  fence:\n    socket: /run/mysqld/mysqld.sock\n    user: fencer\n    password_file: "+pw+"\n    state_file: "+state+"\n")
	cfg, err = config.LoadAgent(path)
	if err != nil {
		t.Fatal(err)
	}
	want := agent.FenceConfig{Socket: "/run/mysqld/mysqld.sock", User: "fencer", Password: "fence-secret",
		StateFile: state, CheckInterval: config.DefaultAgentFenceCheckInterval}
	if got := agentConfig(cfg).Fence; got == nil || *got != want {
		t.Fatalf("fence config %+v, want %+v", got, want)
	}
	out, _, err := runAgentCmd(context.Background(), "--config", path, "--check")
	if err != nil || strings.Contains(out, "fence-secret") || !strings.Contains(out, `"state_file": "`+state+`"`) {
		t.Fatalf("--check: %v\n%s", err, out)
	}
}
