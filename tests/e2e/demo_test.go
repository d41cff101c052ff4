package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quorumha/quorumha/tests/harness"
)

// TestDemo_SandboxUpFailoverDown walks the README's quick start: `quorumha
// sandbox up` starts MariaDB, a binlog agent per server and three
// controllers; kill -9 of the master ends in a success record whose salvage
// step read the dead master's binlog through its agent; `sandbox down`
// leaves no process behind. With haproxy on PATH, a write through the
// sandbox's haproxy reaches the master before the kill and the new master
// after it.
func TestDemo_SandboxUpFailoverDown(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), foTimeout)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "demo")
	if out, code := cli(ctx, t, "sandbox", "up", "--dir", dir); code != 0 {
		t.Fatalf("sandbox up: exit %d: %s", code, out)
	}
	var pids []int
	t.Cleanup(func() {
		cli(context.Background(), t, "sandbox", "down", "--dir", dir)
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	})
	var sb struct {
		Instances []struct {
			Port int `json:"port"`
			PID  int `json:"pid"`
		} `json:"instances"`
	}
	readJSON(t, filepath.Join(dir, "sandbox.json"), &sb)
	var ctrls []struct {
		HTTPAddr string `json:"http_addr"`
		PID      int    `json:"pid"`
	}
	readJSON(t, filepath.Join(dir, "controllers.json"), &ctrls)
	var agents []struct {
		PID int `json:"pid"`
	}
	readJSON(t, filepath.Join(dir, "agents.json"), &agents)
	if len(sb.Instances) != 3 || len(ctrls) != 3 || len(agents) != 3 {
		t.Fatalf("want 3 servers, 3 controllers, 3 agents; got %d, %d, %d", len(sb.Instances), len(ctrls), len(agents))
	}
	for _, c := range ctrls {
		pids = append(pids, c.PID)
	}
	for _, a := range agents {
		pids = append(pids, a.PID)
	}
	out, code := cli(ctx, t, "sandbox", "status", "--dir", dir)
	if code != 0 || strings.Count(out, " alive") < 9 || strings.Contains(out, " dead") {
		t.Fatalf("sandbox status: exit %d, want 3 servers, 3 controllers and 3 agents alive:\n%s", code, out)
	}
	proxy := sandboxHAProxy(t, dir)
	if proxy != nil {
		pids = append(pids, proxy.PID)
		requireWriteLandsOn(ctx, t, proxy, 1, fmt.Sprintf("127.0.0.1:%d", sb.Instances[0].Port))
	}

	// The quick start's failover.
	if err := syscall.Kill(sb.Instances[0].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	addr := "http://" + ctrls[0].HTTPAddr
	var rec foRecord
	err := harness.Poll(ctx, 200*time.Millisecond, func() error {
		out, code := cli(ctx, t, "history", "--addr", addr, "--json")
		if code != 0 {
			return fmt.Errorf("history: exit %d", code)
		}
		var h struct {
			Records []foRecord `json:"records"`
		}
		if err := json.Unmarshal([]byte(out), &h); err != nil {
			return err
		}
		for _, r := range h.Records {
			if r.Kind == "failover" && !r.open() {
				rec = r
				return nil
			}
		}
		return fmt.Errorf("no closed failover record yet")
	})
	if err != nil {
		t.Fatal(err)
	}
	// The salvage step reached the dead master's binlog through its
	// agent. Usually the replicas already had everything (semi-sync); on
	// a loaded machine the semi-sync wait (5 s) can lapse before a replica
	// acknowledges the last write, and then the salvage applies it.
	if rec.Result != "success" || rec.Salvage == nil || rec.Salvage.Agent == "" ||
		(rec.Salvage.Outcome != "nothing" && rec.Salvage.Outcome != "applied") {
		t.Fatalf("demo failover: %s; salvage %+v", rec.summary(), rec.Salvage)
	}
	t.Logf("salvage: %s (%d applied)", rec.Salvage.Outcome, rec.Salvage.Applied)
	if out, code := cli(ctx, t, "history", "--addr", addr, "--id", fmt.Sprint(rec.ID)); code != 0 || !strings.Contains(out, "salvage:") {
		t.Errorf("history --id %d: exit %d, no salvage section:\n%s", rec.ID, code, out)
	}
	if proxy != nil {
		// What the client wrote through the proxy before the kill is on
		// the new master, whichever way it got there.
		requireProxyRowOn(ctx, t, rec.NewMaster, 1)
		requireWriteLandsOn(ctx, t, proxy, 2, rec.NewMaster)
	}

	if out, code := cli(ctx, t, "sandbox", "down", "--dir", dir); code != 0 {
		t.Fatalf("sandbox down: exit %d: %s", code, out)
	}
	for _, p := range pids {
		if syscall.Kill(p, 0) == nil && !zombie(p) {
			t.Errorf("process %d still running after sandbox down", p)
		}
	}
	pids = nil
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// zombie reports whether pid has exited and waits to be reaped.
func zombie(pid int) bool {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	f := strings.Fields(string(st))
	return len(f) > 2 && f[2] == "Z"
}
