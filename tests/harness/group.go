package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
)

// Controller is one `quorumha run` process of a Group.
type Controller struct {
	ID         string
	Zone       string
	RaftAddr   string
	HTTPAddr   string
	GossipAddr string
	Dir        string // data dir, config and log live here
	ConfigPath string
	LogPath    string

	zone   *Zone  // nil: root namespace, 127.0.0.1
	scheme string // http or https
	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has been waited for
}

// NetZone returns the network zone the controller runs in, or nil.
func (c *Controller) NetZone() *Zone { return c.zone }

// URL returns the controller's API URL for path (https:// when the group
// runs TLS).
func (c *Controller) URL(path string) string { return c.scheme + "://" + c.HTTPAddr + path }

// ExitCode returns the exit code of the last run (-1 while running or when
// killed by a signal).
func (c *Controller) ExitCode() int {
	if c.cmd == nil || c.Running() || c.cmd.ProcessState == nil {
		return -1
	}
	return c.cmd.ProcessState.ExitCode()
}

// PID is the process id of the running controller, or 0.
func (c *Controller) PID() int {
	if !c.Running() {
		return 0
	}
	return c.cmd.Process.Pid
}

// Running reports whether the process is started and not yet exited.
func (c *Controller) Running() bool {
	if c.cmd == nil || c.done == nil {
		return false
	}
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// GroupOptions configures StartGroup.
type GroupOptions struct {
	N int // controllers to bootstrap (default 3)
	// ClustersYAML is spliced under `clusters:` in every controller's config
	// (already indented by two spaces per level), "" for none.
	ClustersYAML string
	// ExtraYAML is appended to each config file (top-level keys).
	ExtraYAML string
	Env       []string
	// LogLevel is log.level for the controllers (default debug).
	LogLevel string
	// Net, when set, runs controller i inside Net.Zones[i] with that zone's
	// address, so tests can cut its network paths. Such controllers listen
	// on network addresses, where run refuses to start without an API
	// token and a gossip key, so the group gets both (Token defaults to
	// DefaultToken).
	Net *Net
	// Token is the API write token (api.token_file) of every controller;
	// "" means none on loopback and DefaultToken with Net. A group with a
	// token must not set api: in ExtraYAML.
	Token string
	// ReadToken, when set, is api.read_token_file: reads need a token too.
	ReadToken string
	// TLS serves the API over HTTPS and runs raft over mutual TLS, with a
	// CA and one certificate (valid for every controller's address) made
	// for the group; Group.CAFile is the CA bundle for clients.
	TLS bool
	// Nice, when not 0, starts every controller under nice(1) at that
	// niceness (negative needs root): a test running beside others gives
	// the controllers whose timing it asserts first call on the CPU.
	Nice int
}

// DefaultToken is the API token of groups that need one and do not name
// their own; the package-level Do sends it.
const DefaultToken = "quorumha-harness-token"

// Group is a set of controllers on loopback forming one Raft group.
type Group struct {
	t     testing.TB
	bin   string
	opts  GroupOptions
	base  string
	Nodes []*Controller
	// CAFile is the PEM CA bundle the controllers' certificates chain to
	// ("" without GroupOptions.TLS), for clients such as `quorumha --ca`.
	CAFile string
	// TokenFile holds the group's API write token ("" without one).
	TokenFile string

	sec    securityFiles
	client *http.Client
}

// StartGroup writes configs for N controllers bootstrapped together, starts
// them and registers cleanup (kill and, on failure, dump log tails).
func StartGroup(t testing.TB, bin string, opts GroupOptions) *Group {
	t.Helper()
	if opts.N == 0 {
		opts.N = 3
	}
	if opts.Net != nil && opts.Token == "" {
		opts.Token = DefaultToken
	}
	g := &Group{t: t, bin: bin, opts: opts, base: t.TempDir(), client: http.DefaultClient}
	ports := FreePorts(t, 3*opts.N)
	var boot []string
	for i := 0; i < opts.N; i++ {
		c := g.newController(i, ports[3*i:3*i+3])
		g.Nodes = append(g.Nodes, c)
		boot = append(boot, c.ID+"="+c.RaftAddr)
	}
	g.writeSecurityFiles()
	for _, c := range g.Nodes {
		g.writeConfig(c, boot)
	}
	t.Cleanup(g.cleanup)
	for _, c := range g.Nodes {
		if err := g.Start(c); err != nil {
			t.Fatalf("start %s: %v", c.ID, err)
		}
	}
	return g
}

func (g *Group) newController(i int, ports []int) *Controller {
	id := fmt.Sprintf("c%d", i+1)
	dir := filepath.Join(g.base, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		g.t.Fatalf("mkdir: %v", err)
	}
	host := "127.0.0.1"
	var zone *Zone
	if g.opts.Net != nil {
		if i >= len(g.opts.Net.Zones) {
			g.t.Fatalf("controller %d: only %d network zones", i, len(g.opts.Net.Zones))
		}
		zone = g.opts.Net.Zones[i]
		host = zone.IP
	}
	scheme := "http"
	if g.opts.TLS {
		scheme = "https"
	}
	return &Controller{
		zone:       zone,
		scheme:     scheme,
		ID:         id,
		Zone:       fmt.Sprintf("zone-%c", 'a'+rune(i%26)),
		RaftAddr:   fmt.Sprintf("%s:%d", host, ports[0]),
		HTTPAddr:   fmt.Sprintf("%s:%d", host, ports[1]),
		GossipAddr: fmt.Sprintf("%s:%d", host, ports[2]),
		Dir:        dir,
		ConfigPath: filepath.Join(dir, "config.yaml"),
		LogPath:    filepath.Join(dir, "controller.log"),
	}
}

func (g *Group) writeConfig(c *Controller, bootstrap []string) {
	var b strings.Builder
	fmt.Fprintf(&b, "node:\n  id: %s\n  zone: %s\n  data_dir: %s\n", c.ID, c.Zone, filepath.Join(c.Dir, "data"))
	fmt.Fprintf(&b, "  raft_addr: %s\n  http_addr: %s\n  gossip_addr: %s\n", c.RaftAddr, c.HTTPAddr, c.GossipAddr)
	if len(bootstrap) > 0 {
		fmt.Fprintf(&b, "  bootstrap: [%s]\n", strings.Join(bootstrap, ", "))
	}
	var join []string
	for _, o := range g.Nodes {
		if o != c {
			join = append(join, o.GossipAddr)
		}
	}
	if len(join) > 0 {
		fmt.Fprintf(&b, "  gossip_join: [%s]\n", strings.Join(join, ", "))
	}
	b.WriteString(g.securityYAML())
	level := g.opts.LogLevel
	if level == "" {
		level = "debug"
	}
	fmt.Fprintf(&b, "log:\n  level: %s\n", level)
	if g.opts.ClustersYAML != "" {
		b.WriteString("clusters:\n" + g.opts.ClustersYAML)
	}
	b.WriteString(g.opts.ExtraYAML)
	if err := os.WriteFile(c.ConfigPath, []byte(b.String()), 0o600); err != nil {
		g.t.Fatalf("write config: %v", err)
	}
}

// AddNode creates a controller that is not part of the bootstrap set (it
// waits to be joined) and starts it.
func (g *Group) AddNode() *Controller {
	g.t.Helper()
	c := g.newController(len(g.Nodes), FreePorts(g.t, 3))
	g.Nodes = append(g.Nodes, c)
	g.writeConfig(c, nil)
	if err := g.Start(c); err != nil {
		g.t.Fatalf("start %s: %v", c.ID, err)
	}
	return c
}

// Start (re)starts a controller process with its existing config and data.
func (g *Group) Start(c *Controller) error {
	if c.Running() {
		return fmt.Errorf("%s already running", c.ID)
	}
	logf, err := os.OpenFile(c.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	argv := []string{g.bin, "run", "--config", c.ConfigPath}
	if c.zone != nil {
		argv = append(c.zone.Exec(), argv...)
	}
	argv = sandbox.NiceArgv(g.opts.Nice, argv)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = append(os.Environ(), g.opts.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	done := make(chan struct{})
	started := make(chan error, 1)
	// Owned by the Controller: Kill/Stop wait on done. Pdeathsig fires when
	// the OS thread that forked the child exits (golang/go#27505), so the
	// goroutine that starts the controller keeps that thread, waiting, for
	// the controller's whole life.
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := cmd.Start()
		started <- err
		if err == nil {
			_ = cmd.Wait()
		}
		logf.Close()
		close(done)
	}()
	if err := <-started; err != nil {
		return err
	}
	c.cmd = cmd
	c.done = done
	return nil
}

// Kill sends SIGKILL and waits for the process to be gone.
func (g *Group) Kill(c *Controller) {
	g.t.Helper()
	g.signal(c, syscall.SIGKILL, 10*time.Second)
}

// Stop sends SIGTERM (graceful: leadership transfer) and waits.
func (g *Group) Stop(c *Controller) {
	g.t.Helper()
	g.signal(c, syscall.SIGTERM, 30*time.Second)
}

// Reload sends SIGHUP: the controller reads its config file again. It
// does not wait; the controller logs the outcome.
func (g *Group) Reload(c *Controller) error {
	if !c.Running() {
		return fmt.Errorf("%s is not running", c.ID)
	}
	return c.cmd.Process.Signal(syscall.SIGHUP)
}

func (g *Group) signal(c *Controller, sig syscall.Signal, wait time.Duration) {
	if !c.Running() {
		return
	}
	_ = c.cmd.Process.Signal(sig)
	select {
	case <-c.done:
	case <-time.After(wait):
		_ = c.cmd.Process.Kill()
		<-c.done
		g.t.Errorf("%s did not exit within %s after %v; killed", c.ID, wait, sig)
	}
}

func (g *Group) cleanup() {
	for _, c := range g.Nodes {
		if c.Running() {
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
	if g.t.Failed() {
		for _, c := range g.Nodes {
			g.t.Logf("---- %s log tail (%s) ----\n%s", c.ID, c.LogPath, tail(c.LogPath, 60))
		}
	}
	if dir := os.Getenv(KeepLogsEnv); dir != "" {
		g.keepLogs(dir)
	}
}

// KeepLogsEnv names a directory the controllers' logs are copied to when a
// test ends (DIR/TEST/ID.log), pass or fail: the test's own directory is
// removed with it, and a slow round in a long run is only explained by them.
const KeepLogsEnv = "QUORUMHA_KEEP_LOGS"

func (g *Group) keepLogs(dir string) {
	to := filepath.Join(dir, strings.ReplaceAll(g.t.Name(), "/", "_"))
	if err := os.MkdirAll(to, 0o755); err != nil {
		g.t.Logf("%s: %v", KeepLogsEnv, err)
		return
	}
	for _, c := range g.Nodes {
		b, err := os.ReadFile(c.LogPath)
		if err == nil {
			err = os.WriteFile(filepath.Join(to, c.ID+".log"), b, 0o644)
		}
		if err != nil {
			g.t.Logf("%s: %s: %v", KeepLogsEnv, c.ID, err)
		}
	}
	g.t.Logf("controller logs kept in %s", to)
}

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// Running returns the controllers whose process is up.
func (g *Group) Running() []*Controller {
	var out []*Controller
	for _, c := range g.Nodes {
		if c.Running() {
			out = append(out, c)
		}
	}
	return out
}

// Node returns the controller with the given id, or nil.
func (g *Group) Node(id string) *Controller {
	for _, c := range g.Nodes {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// LeaderInfo is the body of GET /v1/leader.
type LeaderInfo struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	Term     uint64 `json:"term"`
}

// WaitLeader polls GET /v1/leader on every controller in among until all of
// them report the same leader (which must itself be among them) with its HTTP
// address known, and returns it.
func (g *Group) WaitLeader(ctx context.Context, among []*Controller) (LeaderInfo, error) {
	return g.WaitLeaderEvery(ctx, among, 100*time.Millisecond)
}

// WaitLeaderEvery is WaitLeader polling at the given interval (benchmarks
// poll faster to measure failover time).
func (g *Group) WaitLeaderEvery(ctx context.Context, among []*Controller, every time.Duration) (LeaderInfo, error) {
	var last string
	for {
		var seen []LeaderInfo
		for _, c := range among {
			var li LeaderInfo
			code, err := g.Do(ctx, http.MethodGet, c.URL("/v1/leader"), nil, &li)
			if err != nil || code != http.StatusOK {
				last = fmt.Sprintf("%s: code %d err %v", c.ID, code, err)
				break
			}
			seen = append(seen, li)
		}
		if len(seen) == len(among) && agree(seen, among) {
			return seen[0], nil
		}
		if len(seen) == len(among) {
			last = fmt.Sprintf("disagree: %+v", seen)
		}
		select {
		case <-ctx.Done():
			return LeaderInfo{}, fmt.Errorf("no agreed leader: %s: %w", last, ctx.Err())
		case <-time.After(every):
		}
	}
}

func agree(seen []LeaderInfo, among []*Controller) bool {
	first := seen[0]
	if first.ID == "" || first.HTTPAddr == "" {
		return false
	}
	for _, s := range seen[1:] {
		if s.ID != first.ID || s.HTTPAddr != first.HTTPAddr {
			return false
		}
	}
	for _, c := range among {
		if c.ID == first.ID {
			return true
		}
	}
	return false
}

// Do sends a JSON request (body may be nil) and decodes a JSON answer into
// out when out is non-nil and the status is 2xx. It returns the status code.
// It sends DefaultToken, which groups in network zones require for writes
// (and loopback groups without a token ignore); a group with its own token
// or TLS is reached with Group.Do.
func Do(ctx context.Context, method, url string, body, out any) (int, error) {
	return do(ctx, http.DefaultClient, DefaultToken, method, url, body, out)
}

// Do is the package-level Do with this group's HTTPS client and token.
func (g *Group) Do(ctx context.Context, method, url string, body, out any) (int, error) {
	return do(ctx, g.client, g.opts.Token, method, url, body, out)
}

func do(ctx context.Context, client *http.Client, token, method, url string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s: %w: %s", url, err, b)
		}
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("%s %s: %d: %s", method, url, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return resp.StatusCode, nil
}

// Poll calls f every interval until it returns nil or ctx ends; the last error
// is returned with the context's.
func Poll(ctx context.Context, interval time.Duration, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}
