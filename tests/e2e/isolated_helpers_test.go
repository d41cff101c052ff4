package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
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
	"github.com/quorumha/quorumha/tests/harness"
)

// The isolated-master environment (scenario 24): three controllers in
// zones 0-2, the master in zone 3 and the replicas in zones 4 and 5, each
// database server with its host agent beside it in its zone, fencing on.
// "The group side" is the root namespace: it reaches every zone over the
// bridge until a zone is cut off.

// Zones of an isolated-master environment.
const (
	isoMasterZone = 3
	isoZones      = 6
)

// isoLeaseTTL is recovery.lease_ttl of the controllers.
const isoLeaseTTL = 2 * time.Second

// isoAgentToken is the bearer token of every agent.
const isoAgentToken = "iso-agent-token"

// isoEnv is one isolated-master environment.
type isoEnv struct {
	nw     *harness.Net
	sb     *sandbox.Sandbox
	g      *harness.Group
	fo     *foEnv
	agents []*agentProc
	// fencing is false when the quorumha binary refused agent.fence (the
	// agents then run without it, so the rest of the scenario can still
	// be observed, and the test has already failed saying why).
	fencing bool
}

// zoneOf returns the zone instance i runs in.
func (e *isoEnv) zoneOf(i int) *harness.Zone { return e.nw.Zones[isoMasterZone+i] }

// isoOptions vary an isolated-master environment.
type isoOptions struct {
	// SlaveNetTimeout is every server's slave_net_timeout in seconds, with
	// MariaDB's default heartbeat (half of it); 0 keeps 4 s with a 1 s
	// heartbeat.
	SlaveNetTimeout int
}

// startIsolatedEnv builds the environment and waits until every controller
// sees the master healthy.
func startIsolatedEnv(ctx context.Context, t *testing.T, logLevel string) *isoEnv {
	t.Helper()
	return startIsolatedEnvWith(ctx, t, logLevel, isoOptions{})
}

// startIsolatedEnvWith is startIsolatedEnv with options.
func startIsolatedEnvWith(ctx context.Context, t *testing.T, logLevel string, o isoOptions) *isoEnv {
	t.Helper()
	path := bin.Path(t)
	nw := harness.NewNet(t, isoZones)
	var place []sandbox.Placement
	for i := 0; i < 3; i++ {
		z := nw.Zones[isoMasterZone+i]
		place = append(place, sandbox.Placement{NetNS: z.Name, IP: z.IP})
	}
	// slave_net_timeout=4 with a 1 s heartbeat: the replicas notice the lost
	// master within seconds (fast detection is a later issue).
	hb, snt := time.Second, 4
	if o.SlaveNetTimeout > 0 {
		hb, snt = 0, o.SlaveNetTimeout
	}
	sb := sandbox.New(t, sandbox.Options{Replicas: 2, GTID: true, SemiSync: true, Placement: place,
		HeartbeatPeriod: hb, ExtraConfig: []string{fmt.Sprintf("slave_net_timeout=%d", snt)}, Nice: niceOf(t)})
	e := &isoEnv{nw: nw, sb: sb, fencing: true}
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "agent.token")
	if err := os.WriteFile(tokenFile, []byte(isoAgentToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	inst := map[int][]string{}
	for i := range sb.Instances() {
		a, fencing := startZoneAgent(ctx, t, sb, i, e.zoneOf(i), tokenFile)
		e.fencing = e.fencing && fencing
		e.agents = append(e.agents, a)
		inst[i] = []string{"agent: " + a.url}
	}
	// The agents listen on the zones' bridge addresses over plain http:
	// accepted explicitly, as a test network that never leaves this host.
	cl := foClustersYAML(sb, foOptions{ClusterYAML: []string{"agent:", "  token_file: " + tokenFile, "  insecure_http: true"}, Instances: inst})
	extra := detectYAML + fmt.Sprintf("recovery:\n  fence: required\n  lease_ttl: %s\n", isoLeaseTTL)
	g := harness.StartGroup(t, path, harness.GroupOptions{N: 3, Net: nw, ClustersYAML: cl, ExtraYAML: extra, LogLevel: logLevel, Nice: niceOf(t)})
	if _, err := g.WaitLeader(ctx, g.Nodes); err != nil {
		t.Fatal(err)
	}
	e.g = g
	e.fo = &foEnv{det: &detEnv{sb: sb, g: g, master: sb.Instance(0).Addr(), failover: true}, sb: sb, g: g}
	e.fo.det.waitHealthy(ctx, t)
	// The lane's promise (parallel_test.go) is a fact, not a hope: every
	// thread of every server, controller and agent runs at the niceness
	// this test's processes must have.
	pids := map[string]int{}
	for _, in := range sb.Instances() {
		pids["mariadbd "+in.Name] = in.PID
	}
	for _, c := range g.Nodes {
		pids["controller "+c.ID] = c.PID()
	}
	for i, a := range e.agents {
		pids[fmt.Sprintf("agent %d", i)] = a.cmd.Process.Pid
	}
	for what, pid := range pids {
		if err := requireNice(pid, niceOf(t)); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	return e
}

// startZoneAgent runs `quorumha agent` for instance i inside zone z, on
// the zone's address, with agent.fence on the server's socket. When the
// binary refuses agent.fence it fails the test (Errorf) and starts the
// agent without it, so the scenario still runs to show what happens
// without fencing; fencing reports which.
func startZoneAgent(ctx context.Context, t *testing.T, sb *sandbox.Sandbox, i int, z *harness.Zone, tokenFile string) (*agentProc, bool) {
	t.Helper()
	in := sb.Instance(i)
	dir := t.TempDir()
	passFile := filepath.Join(dir, "admin.pass")
	if err := os.WriteFile(passFile, []byte(sandbox.AdminPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := harness.FreePorts(t, 1)[0] // free on loopback; the zone's port space is its own
	base := fmt.Sprintf("agent:\n  listen: %s:%d\n  binlog_dir: %s\n  binlog_index: %s\n  token_file: %s\n  pid_file: %s\n",
		z.IP, port, in.DataDir, filepath.Join(in.DataDir, sandbox.BinlogIndex), tokenFile, filepath.Join(in.DataDir, "mariadbd.pid"))
	fence := fmt.Sprintf("  fence:\n    socket: %s\n    user: %s\n    password_file: %s\n    state_file: %s\n",
		in.Socket, sandbox.AdminUser, passFile, filepath.Join(dir, "fence.state"))
	cfg := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(cfg, []byte(base+fence), 0o600); err != nil {
		t.Fatal(err)
	}
	check := exec.CommandContext(ctx, bin.Path(t), "agent", "--config", cfg, "--check")
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("agent of %s refuses agent.fence (is the agents' fencing merged?): %v: %s", in.Name, err, strings.TrimSpace(string(out)))
		if err := os.WriteFile(cfg, []byte(base), 0o600); err != nil {
			t.Fatal(err)
		}
		return runZoneAgent(ctx, t, z, cfg, fmt.Sprintf("http://%s:%d", z.IP, port), dir), false
	}
	return runZoneAgent(ctx, t, z, cfg, fmt.Sprintf("http://%s:%d", z.IP, port), dir), true
}

// runZoneAgent starts the agent process inside the zone and waits until it
// answers from the root namespace.
func runZoneAgent(ctx context.Context, t *testing.T, z *harness.Zone, cfg, url, dir string) *agentProc {
	t.Helper()
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	argv := niceArgv(t, append(z.Exec(), bin.Path(t), "agent", "--config", cfg))
	a := &agentProc{url: url, done: make(chan struct{})}
	a.cmd = exec.Command(argv[0], argv[1:]...)
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	started := make(chan error, 1)
	// Owned by a (stop waits on done); it keeps the forking thread for the
	// agent's life, since Pdeathsig follows the thread (golang/go#27505).
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := a.cmd.Start()
		started <- err
		if err == nil {
			_ = a.cmd.Wait()
		}
		logf.Close()
		close(a.done)
	}()
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.stop()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("---- agent %s log ----\n%s", url, tailLines(string(b), 40))
		}
	})
	err = harness.Poll(ctx, 100*time.Millisecond, func() error {
		select {
		case <-a.done:
			out, _ := os.ReadFile(logf.Name())
			t.Fatalf("agent %s exited: %s", url, out)
		default:
		}
		_, err := harness.Do(ctx, http.MethodGet, a.url+"/healthz", nil, nil)
		return err
	})
	if err != nil {
		t.Fatalf("agent %s never answered: %v", url, err)
	}
	return a
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// agentFence reads GET /v1/fence of an agent.
func agentFence(ctx context.Context, a *agentProc) (map[string]any, error) {
	var st map[string]any
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url+"/v1/fence", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+isoAgentToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/v1/fence: %s", a.url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err
	}
	return st, nil
}

// waitLeaseHeld polls the master's agent until it reports the lease held
// (armed): before that a lapse would fence nothing.
func (e *isoEnv) waitLeaseHeld(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return harness.Poll(ctx, 200*time.Millisecond, func() error {
		st, err := agentFence(ctx, e.agents[0])
		if err != nil {
			return err
		}
		if st["state"] != "held" {
			return fmt.Errorf("master's agent: fence state %v (%v)", st["state"], st)
		}
		return nil
	})
}

// samplers starts one read_only sampler per database zone and one on the
// group side (the root namespace), each reading every server.
func (e *isoEnv) samplers(t *testing.T) (zone *harness.ReadOnlySampler, all []*harness.ReadOnlySampler) {
	t.Helper()
	insts := e.sb.Instances()
	for zi := 0; zi < len(insts); zi++ {
		z := e.zoneOf(zi)
		var targets []harness.SampleTarget
		for i, in := range insts {
			targets = append(targets, harness.SampleTarget{Server: in.Addr(),
				DSN: e.sb.DSNVia(i, z.MySQLNet(), sandbox.AdminUser, sandbox.AdminPassword)})
		}
		all = append(all, harness.StartReadOnlySampler(t, harness.SamplerOptions{Name: z.Name, Targets: targets}))
	}
	var targets []harness.SampleTarget
	for i, in := range insts {
		targets = append(targets, harness.SampleTarget{Server: in.Addr(), DSN: e.sb.DSN(i, sandbox.AdminUser, sandbox.AdminPassword)})
	}
	all = append(all, harness.StartReadOnlySampler(t, harness.SamplerOptions{Name: "group", Targets: targets}))
	return all[0], all
}

// cutMaster cuts the master's zone off from every other address, both
// ways: the other zones and the root namespace's bridge address.
func (e *isoEnv) cutMaster() {
	var peers []string
	for i, z := range e.nw.Zones {
		if i != isoMasterZone {
			peers = append(peers, z.IP)
		}
	}
	e.nw.Isolate(e.zoneOf(0), append(peers, e.nw.HostIP)...)
}

// zoneWriter starts the application writing straight to the master's own
// address from inside the master's zone, as the application on the
// master's side of the cut does, with the application account (no SUPER,
// no READ ONLY ADMIN).
func (e *isoEnv) zoneWriter(ctx context.Context, t *testing.T, every time.Duration) *harness.WriteLoad {
	t.Helper()
	dsn := e.sb.DSNVia(0, e.zoneOf(0).MySQLNet(), sandbox.AppUser, sandbox.AppPassword)
	w := harness.StartWriteLoad(t, func() string { return dsn }, every)
	waitAcks(ctx, t, "writer in the master's zone", w, 3)
	return w
}

// groupWriter starts the application on the group side following GET
// /v1/clusters/{c}/master.
func (e *isoEnv) groupWriter(ctx context.Context, t *testing.T, every time.Duration) *harness.WriteLoad {
	t.Helper()
	f := &masterFollower{sb: e.sb, g: e.g}
	w := harness.StartWriteLoad(t, f.dsn, every)
	f.setFailed(func() int { return w.Snapshot().Failed })
	waitAcks(ctx, t, "group-side writer", w, 3)
	return w
}

func waitAcks(ctx context.Context, t *testing.T, what string, w *harness.WriteLoad, n int) {
	t.Helper()
	err := harness.Poll(ctx, 50*time.Millisecond, func() error {
		if s := w.Snapshot(); len(s.Acked) < n {
			return fmt.Errorf("%d acknowledged, %d failed (%s)", len(s.Acked), s.Failed, s.LastErr)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// loadIDs reads the write loads' ids on instance i from the root namespace.
func (e *isoEnv) loadIDs(ctx context.Context, i int) ([]int64, error) {
	db, err := sql.Open("mysql", e.sb.DSN(i, sandbox.AdminUser, sandbox.AdminPassword))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return harness.LoadIDs(ctx, db)
}

// allSamples stops every sampler and returns their samples together.
func allSamples(ss []*harness.ReadOnlySampler) []harness.Sample {
	var out []harness.Sample
	for _, s := range ss {
		out = append(out, s.Stop()...)
	}
	return out
}

// isoFence is fsm.FenceInfo as the API shows it (a record's "fence").
type isoFence struct {
	State   string `json:"state"`
	Proof   string `json:"proof"`
	Reason  string `json:"reason"`
	Detail  string `json:"detail"`
	Targets []struct {
		Address string `json:"address"`
		Proof   string `json:"proof"`
		Detail  string `json:"detail"`
	} `json:"targets"`
}

func (f *isoFence) String() string {
	if f == nil {
		return "no fence state in the record"
	}
	b, _ := json.Marshal(f)
	return string(b)
}

// isoRecordFence returns the fence state of record id as c shows it.
func isoRecordFence(ctx context.Context, c *harness.Controller, id uint64) (*isoFence, bool, error) {
	var h struct {
		Records []struct {
			ID     uint64    `json:"id"`
			Result string    `json:"result"`
			Fence  *isoFence `json:"fence"`
		} `json:"records"`
	}
	if _, err := harness.Do(ctx, http.MethodGet, c.URL("/v1/history?cluster="+detCluster), nil, &h); err != nil {
		return nil, false, err
	}
	for _, r := range h.Records {
		if r.ID == id {
			return r.Fence, r.Result != "", nil
		}
	}
	return nil, false, fmt.Errorf("%s: no record %d", c.ID, id)
}

// waitDecision polls until some controller holds a failover record newer
// than after and that record is closed, logging its fence state whenever
// it changes; on timeout it fails with the record and its fence state, so
// a failover held in awaiting_fence says so.
func (e *isoEnv) waitDecision(ctx context.Context, t *testing.T, after uint64, within time.Duration) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var id uint64
	var last string
	err := harness.Poll(wctx, 200*time.Millisecond, func() error {
		for _, c := range e.g.Running() {
			if id == 0 {
				recs, err := foHistory(wctx, c)
				if err != nil {
					continue
				}
				fresh := failoversAfter(recs, after)
				if len(fresh) == 0 {
					continue
				}
				id = fresh[0].ID
			}
			f, closed, err := isoRecordFence(wctx, c, id)
			if err != nil {
				continue
			}
			if s := f.String(); s != last {
				t.Logf("record %d fence: %s", id, s)
				last = s
			}
			if closed {
				return nil
			}
			return fmt.Errorf("record %d open; fence: %s", id, f)
		}
		if id == 0 {
			return fmt.Errorf("no failover record after %d", after)
		}
		return fmt.Errorf("record %d: no controller answers", id)
	})
	if err != nil {
		t.Fatalf("no failover decision closed within %s of the cut: %v", within, err)
	}
}
