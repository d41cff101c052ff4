package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorumha/quorumha/config"
)

// The demo's HAProxy lives under DIR/haproxy (its haproxy.cfg, from the same
// renderHAProxy as `quorumha proxy-config haproxy`, and its log), described
// by DIR/haproxy.json so status and down find it again.
const (
	sandboxHAProxyDir  = "haproxy"
	sandboxHAProxyFile = "haproxy.json"
	sandboxCluster     = "sandbox"
)

// sandboxHAProxy is the demo's detached haproxy.
type sandboxHAProxy struct {
	Write  string `json:"write"` // host:port applications write through (the master)
	Read   string `json:"read"`  // host:port for reads (healthy replicas)
	Check  string `json:"check"` // the checks' local listener
	Config string `json:"config"`
	Log    string `json:"log"`
	PID    int    `json:"pid"`
}

// haproxyReady bounds the wait for the write port to lead to the master:
// the checks need a controller with leader contact to name it.
const haproxyReady = 30 * time.Second

// startSandboxHAProxy writes the haproxy.cfg of the sandbox's cluster (its
// checks ask every controller) and starts haproxy detached, in its own
// session, then waits until the write port reaches the master (a MySQL
// greeting comes back). configPath is one controller's config: the
// clusters, token and TLS settings are the same in all of them.
func startSandboxHAProxy(ctx context.Context, haproxy, dir, configPath string, ctrls []sandboxController) (sandboxHAProxy, error) {
	cfg, _, err := config.Load(configPath, config.LoadOptions{})
	if err != nil {
		return sandboxHAProxy{}, fmt.Errorf("haproxy: %w", err)
	}
	ports, err := freeLoopbackPorts(3)
	if err != nil {
		return sandboxHAProxy{}, fmt.Errorf("haproxy: %w", err)
	}
	hdir := filepath.Join(dir, sandboxHAProxyDir)
	h := sandboxHAProxy{
		Write:  fmt.Sprintf("127.0.0.1:%d", ports[0]),
		Read:   fmt.Sprintf("127.0.0.1:%d", ports[1]),
		Check:  fmt.Sprintf("127.0.0.1:%d", ports[2]),
		Config: filepath.Join(hdir, "haproxy.cfg"),
		Log:    filepath.Join(hdir, "haproxy.log"),
	}
	opts := haproxyOptions{Cluster: sandboxCluster, Listen: h.Write, ReadListen: h.Read, CheckListen: h.Check}
	for _, c := range ctrls {
		opts.Controllers = append(opts.Controllers, c.HTTPAddr)
	}
	text, err := renderHAProxy(cfg, opts)
	if err != nil {
		return sandboxHAProxy{}, err
	}
	if err := os.MkdirAll(hdir, 0o700); err != nil {
		return sandboxHAProxy{}, fmt.Errorf("haproxy: %w", err)
	}
	// 0600: the file would hold the read token if the API had one.
	if err := os.WriteFile(h.Config, []byte(text), 0o600); err != nil {
		return sandboxHAProxy{}, fmt.Errorf("haproxy: %w", err)
	}
	if out, err := exec.CommandContext(ctx, haproxy, "-c", "-q", "-f", h.Config).CombinedOutput(); err != nil {
		return sandboxHAProxy{}, fmt.Errorf("haproxy -c -f %s: %w: %s", h.Config, err, out)
	}
	logf, err := os.OpenFile(h.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return sandboxHAProxy{}, fmt.Errorf("haproxy: %w", err)
	}
	// Foreground (no -D): the pid started is the pid to stop; Setsid
	// detaches it from this command's terminal and process group.
	cmd := exec.Command(haproxy, "-f", h.Config)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	logf.Close()
	if err != nil {
		return sandboxHAProxy{}, fmt.Errorf("start haproxy: %w", err)
	}
	h.PID = cmd.Process.Pid
	_ = cmd.Process.Release() // detached: nobody here waits for it
	b, _ := json.MarshalIndent(h, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, sandboxHAProxyFile), b, 0o600); err != nil {
		return h, err
	}
	if err := waitMySQLGreeting(ctx, h.Write, haproxyReady); err != nil {
		return h, fmt.Errorf("haproxy's write port %s never reached the master (see %s): %w", h.Write, h.Log, err)
	}
	return h, nil
}

// waitMySQLGreeting polls addr until a server greets a new connection: a
// MySQL handshake packet (protocol version 10) arrives. HAProxy accepts and
// then closes connections while no server of the listener is up.
func waitMySQLGreeting(ctx context.Context, addr string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var last error
	for {
		if last = mysqlGreeting(ctx, addr); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no MySQL greeting within %s: %w", limit, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func mysqlGreeting(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	var hdr [5]byte // 3-byte length, sequence id, protocol version
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return fmt.Errorf("read greeting: %w", err)
	}
	if hdr[4] != 10 {
		return fmt.Errorf("not a MySQL greeting (first byte %d)", hdr[4])
	}
	return nil
}

// loadSandboxHAProxy reads DIR/haproxy.json (nil when the sandbox has no
// haproxy).
func loadSandboxHAProxy(dir string) (*sandboxHAProxy, error) {
	path := filepath.Join(dir, sandboxHAProxyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var h sandboxHAProxy
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &h, nil
}

// haproxyAlive reports whether pid is still the demo's haproxy.
func haproxyAlive(h sandboxHAProxy) bool { return detachedAlive(h.PID, "-f\x00"+h.Config) }

// stopSandboxHAProxy stops the demo's haproxy (SIGTERM, SIGKILL after a
// bounded wait) and removes its files.
func stopSandboxHAProxy(dir string) error {
	h, err := loadSandboxHAProxy(dir)
	if err != nil || h == nil {
		return err
	}
	if haproxyAlive(*h) {
		_ = syscall.Kill(h.PID, syscall.SIGTERM)
	}
	deadline := time.Now().Add(10 * time.Second)
	for haproxyAlive(*h) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond) // waiting on a process we do not own: poll
	}
	if haproxyAlive(*h) {
		_ = syscall.Kill(h.PID, syscall.SIGKILL)
	}
	if err := os.RemoveAll(filepath.Join(dir, sandboxHAProxyDir)); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dir, sandboxHAProxyFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// printSandboxHAProxy prints the demo's haproxy and its ports, if it has one.
func printSandboxHAProxy(w io.Writer, dir string) error {
	h, err := loadSandboxHAProxy(dir)
	if err != nil || h == nil {
		return err
	}
	state := "dead"
	if haproxyAlive(*h) {
		state = "alive"
	}
	fmt.Fprintf(w, "\nhaproxy (pid %d, %s): writes %s (the master), reads %s (replicas)\n  config %s, log %s\n",
		h.PID, state, h.Write, h.Read, h.Config, h.Log)
	return nil
}

// sandboxHAProxyUp starts the demo's haproxy after the controllers when the
// binary is on PATH, and says why not otherwise; a failure to start it
// leaves the rest of the sandbox running.
func sandboxHAProxyUp(cmd *cobra.Command, dir string, ctrls []sandboxController) {
	out := cmd.OutOrStdout()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		// Debian installs it in /usr/sbin, which a user's PATH may lack.
		bin, err = exec.LookPath("/usr/sbin/haproxy")
	}
	if err != nil {
		fmt.Fprintf(out, "\nhaproxy: not on PATH, no proxy started (apt-get install haproxy; see quorumha proxy-config haproxy)\n")
		return
	}
	h, err := startSandboxHAProxy(cmd.Context(), bin, dir, ctrls[0].Config, ctrls)
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: sandbox haproxy: %v\n", err)
		if h.PID != 0 {
			fmt.Fprintf(out, "\nhaproxy (pid %d) started but not ready: writes %s, reads %s\n", h.PID, h.Write, h.Read)
		}
		return
	}
	fmt.Fprintf(out, "\nhaproxy (pid %d): writes %s (follows the master), reads %s (healthy replicas)\n  config %s\n",
		h.PID, h.Write, h.Read, h.Config)
}
