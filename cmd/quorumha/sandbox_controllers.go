package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// The demo's controllers live under DIR/controllers, described by
// DIR/controllers.json so status and down can find them again.
const (
	sandboxControllersDir  = "controllers"
	sandboxControllersFile = "controllers.json"
)

// sandboxController is one detached `quorumha run` of the demo.
type sandboxController struct {
	ID       string `json:"id"`
	Zone     string `json:"zone"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	Gossip   string `json:"gossip_addr"`
	Config   string `json:"config"`
	Log      string `json:"log"`
	PID      int    `json:"pid"`
}

// startSandboxControllers writes one config per controller (the sandbox's
// cluster plus a node section) and starts `quorumha run` for each, detached
// in its own session so it outlives this command.
func startSandboxControllers(dir string, n int, clustersYAML string) ([]sandboxController, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("sandbox controllers: find own binary: %w", err)
	}
	ports, err := freeLoopbackPorts(3 * n)
	if err != nil {
		return nil, err
	}
	var ctrls []sandboxController
	var boot []string
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("c%d", i+1)
		cdir := filepath.Join(dir, sandboxControllersDir, id)
		c := sandboxController{
			ID: id, Zone: fmt.Sprintf("zone-%c", 'a'+rune(i)),
			RaftAddr: fmt.Sprintf("127.0.0.1:%d", ports[3*i]),
			HTTPAddr: fmt.Sprintf("127.0.0.1:%d", ports[3*i+1]),
			Gossip:   fmt.Sprintf("127.0.0.1:%d", ports[3*i+2]),
			Config:   filepath.Join(cdir, "config.yaml"),
			Log:      filepath.Join(cdir, "controller.log"),
		}
		boot = append(boot, id+"="+c.RaftAddr)
		ctrls = append(ctrls, c)
	}
	for i := range ctrls {
		c := &ctrls[i]
		var join []string
		for _, o := range ctrls {
			if o.ID != c.ID {
				join = append(join, o.Gossip)
			}
		}
		cfg := fmt.Sprintf("node:\n  id: %s\n  zone: %s\n  data_dir: %s\n  raft_addr: %s\n  http_addr: %s\n  gossip_addr: %s\n  bootstrap: [%s]\n  gossip_join: [%s]\n%s",
			c.ID, c.Zone, filepath.Join(filepath.Dir(c.Config), "data"), c.RaftAddr, c.HTTPAddr, c.Gossip,
			strings.Join(boot, ", "), strings.Join(join, ", "), clustersYAML)
		if err := os.MkdirAll(filepath.Dir(c.Config), 0o700); err != nil {
			return ctrls[:i], err
		}
		if err := os.WriteFile(c.Config, []byte(cfg), 0o600); err != nil {
			return ctrls[:i], err
		}
		logf, err := os.OpenFile(c.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return ctrls[:i], err
		}
		cmd := exec.Command(self, "run", "--config", c.Config)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		err = cmd.Start()
		logf.Close()
		if err != nil {
			return ctrls[:i], fmt.Errorf("start controller %s: %w", c.ID, err)
		}
		c.PID = cmd.Process.Pid
		_ = cmd.Process.Release() // detached: nobody here waits for it
	}
	b, _ := json.MarshalIndent(ctrls, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, sandboxControllersFile), b, 0o600); err != nil {
		return ctrls, err
	}
	return ctrls, nil
}

// waitSandboxLeader polls the controllers until one reports a leader.
func waitSandboxLeader(ctx context.Context, ctrls []sandboxController) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		for _, c := range ctrls {
			if id, ok := sandboxLeader(ctx, c); ok {
				return id, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no controller reported a leader within 30s (see %s)", ctrls[0].Log)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func sandboxLeader(ctx context.Context, c sandboxController) (string, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.HTTPAddr+"/v1/leader", nil)
	if err != nil {
		return "", false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	var l struct {
		ID string `json:"id"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&l) != nil {
		return "", false
	}
	return l.ID, l.ID != ""
}

func loadSandboxControllers(dir string) ([]sandboxController, error) {
	return loadDetached[sandboxController](filepath.Join(dir, sandboxControllersFile))
}

// loadDetached reads the JSON list of detached processes `sandbox up`
// recorded in path (none when it does not exist).
func loadDetached[T any](path string) ([]T, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []T
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// controllerAlive reports whether pid is still a `quorumha run` process (the
// pid may have been reused since the sandbox started).
func controllerAlive(pid int) bool { return detachedAlive(pid, "run\x00--config") }

// detachedAlive reports whether pid is a live process whose command line
// holds marker.
func detachedAlive(pid int, marker string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		if f := strings.Fields(string(st)); len(f) > 2 && f[2] == "Z" {
			return false // zombie: exited, waiting to be reaped
		}
	}
	return strings.Contains(string(b), marker)
}

// stopSandboxControllers sends SIGTERM (graceful leadership transfer), waits
// a bounded time, then kills what is left, and removes their directory.
func stopSandboxControllers(dir string) error {
	ctrls, err := loadSandboxControllers(dir)
	if err != nil {
		return err
	}
	for _, c := range ctrls {
		if controllerAlive(c.PID) {
			_ = syscall.Kill(c.PID, syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, c := range ctrls {
		for controllerAlive(c.PID) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond) // waiting on a process we do not own: poll
		}
		if controllerAlive(c.PID) {
			_ = syscall.Kill(c.PID, syscall.SIGKILL)
		}
	}
	if err := os.RemoveAll(filepath.Join(dir, sandboxControllersDir)); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dir, sandboxControllersFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// printSandboxControllers prints each controller with its state and the leader.
func printSandboxControllers(ctx context.Context, w io.Writer, ctrls []sandboxController) {
	if len(ctrls) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTROLLER\tZONE\tHTTP\tRAFT\tPID\tSTATE\tLEADER")
	for _, c := range ctrls {
		state, leader := "dead", "-"
		if controllerAlive(c.PID) {
			state = "alive"
			if id, ok := sandboxLeader(ctx, c); ok {
				leader = id
			}
		}
		fmt.Fprintf(tw, "%s\t%s\thttp://%s\t%s\t%d\t%s\t%s\n", c.ID, c.Zone, c.HTTPAddr, c.RaftAddr, c.PID, state, leader)
	}
	_ = tw.Flush()
}

// freeLoopbackPorts returns n distinct free ports on 127.0.0.1.
func freeLoopbackPorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
