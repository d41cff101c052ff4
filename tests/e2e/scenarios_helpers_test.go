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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
	"github.com/quorumha/quorumha/tests/harness"
)

// The environments of the scenario tests (issue 13; shared/scenarios.md):
// a GTID, semi-sync sandbox watched by three controllers, with a host
// agent beside every server where a failover must happen, so the fence
// step has a proof (recovery.fence: required): the agent fences its server
// on request, or reports through agent.pid_file that its process is not
// running.

// scnOptions configures a scenario environment.
type scnOptions struct {
	// Replicas defaults to 2.
	Replicas int
	// Agents runs a fencing host agent beside every server.
	Agents bool
	// SandboxExtra adds my.cnf lines to every server.
	SandboxExtra []string
	// Instances adds YAML keys to the instance with that index.
	Instances map[int][]string
	// Recovery adds lines under the controllers' recovery: section.
	Recovery []string
}

// startScenarioEnv starts the sandbox, the agents (when asked), the
// controllers and the split-brain sampler.
func startScenarioEnv(ctx context.Context, t *testing.T, o scnOptions) *foEnv {
	t.Helper()
	if o.Replicas == 0 {
		o.Replicas = 2
	}
	sb := sandbox.New(t, sandbox.Options{Replicas: o.Replicas, GTID: true, SemiSync: true, ExtraConfig: o.SandboxExtra})
	fo := foOptions{Instances: map[int][]string{}}
	for k, v := range o.Instances {
		fo.Instances[k] = append(fo.Instances[k], v...)
	}
	if o.Agents {
		dir := t.TempDir()
		tokenFile := filepath.Join(dir, "agent.token")
		if err := os.WriteFile(tokenFile, []byte(isoAgentToken+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		for i := range sb.Instances() {
			a := startLocalAgent(ctx, t, sb, i, tokenFile)
			fo.Instances[i] = append(fo.Instances[i], "agent: "+a.url)
		}
		fo.ClusterYAML = []string{"agent:", "  token_file: " + tokenFile}
	}
	if len(o.Recovery) > 0 {
		fo.ExtraYAML = "recovery:\n"
		for _, l := range o.Recovery {
			fo.ExtraYAML += "  " + l + "\n"
		}
	}
	return startFailoverEnvOn(ctx, t, sb, fo)
}

// startLocalAgent runs `quorumha agent` for instance i on loopback, with
// its binlogs, its pid file (so a dead server is reported as not running,
// a fence proof) and agent.fence on the server's socket, and waits until
// it answers.
func startLocalAgent(ctx context.Context, t *testing.T, sb *sandbox.Sandbox, i int, tokenFile string) *agentProc {
	t.Helper()
	in := sb.Instance(i)
	dir := t.TempDir()
	passFile := filepath.Join(dir, "admin.pass")
	if err := os.WriteFile(passFile, []byte(sandbox.AdminPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := harness.FreePorts(t, 1)[0]
	cfg := fmt.Sprintf("agent:\n  listen: 127.0.0.1:%d\n  binlog_dir: %s\n  binlog_index: %s\n  token_file: %s\n  pid_file: %s\n"+
		"  fence:\n    socket: %s\n    user: %s\n    password_file: %s\n    state_file: %s\n",
		port, in.DataDir, filepath.Join(in.DataDir, sandbox.BinlogIndex), tokenFile, filepath.Join(in.DataDir, "mariadbd.pid"),
		in.Socket, sandbox.AdminUser, passFile, filepath.Join(dir, "fence.state"))
	cfgFile := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	a := &agentProc{url: fmt.Sprintf("http://127.0.0.1:%d", port), done: make(chan struct{})}
	a.cmd = exec.Command(bin.Path(t), "agent", "--config", cfgFile)
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.cmd.Wait(); logf.Close(); close(a.done) }() // owned by a: stop waits on done
	t.Cleanup(func() {
		a.stop()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("---- agent %s (%s) log ----\n%s", a.url, in.Name, tailLines(string(b), 30))
		}
	})
	err = harness.Poll(ctx, 100*time.Millisecond, func() error {
		select {
		case <-a.done:
			out, _ := os.ReadFile(logf.Name())
			t.Fatalf("agent of %s exited: %s", in.Name, out)
		default:
		}
		_, err := harness.Do(ctx, http.MethodGet, a.url+"/healthz", nil, nil)
		return err
	})
	if err != nil {
		t.Fatalf("agent of %s never answered: %v", in.Name, err)
	}
	return a
}

// ---- what the controllers report ------------------------------------------

// scnClusterJSON returns GET /v1/clusters/sandbox of c as raw JSON.
func scnClusterJSON(ctx context.Context, c *harness.Controller) (any, string, error) {
	var v any
	if _, err := harness.Do(ctx, http.MethodGet, c.URL("/v1/clusters/"+detCluster), nil, &v); err != nil {
		return nil, "", err
	}
	b, _ := json.Marshal(v)
	return v, string(b), nil
}

// scnFindObjects returns every JSON object inside v with key == value.
func scnFindObjects(v any, key, value string) []map[string]any {
	var out []map[string]any
	switch x := v.(type) {
	case map[string]any:
		if s, ok := x[key].(string); ok && s == value {
			out = append(out, x)
		}
		for _, y := range x {
			out = append(out, scnFindObjects(y, key, value)...)
		}
	case []any:
		for _, y := range x {
			out = append(out, scnFindObjects(y, key, value)...)
		}
	}
	return out
}

// waitReplicaReported polls until some controller's view of the cluster
// holds an observation of replica addr for which bad returns true: the
// controllers report the broken replica.
func (e *foEnv) waitReplicaReported(ctx context.Context, t *testing.T, addr, what string, bad func(map[string]any) bool) {
	t.Helper()
	var last string
	err := harness.Poll(ctx, 200*time.Millisecond, func() error {
		for _, c := range e.g.Running() {
			v, raw, err := scnClusterJSON(ctx, c)
			if err != nil {
				continue
			}
			last = raw
			for _, o := range scnFindObjects(v, "replica", addr) {
				if bad(o) {
					t.Logf("%s reports %s (%s): %v", c.ID, addr, what, o)
					return nil
				}
			}
		}
		return fmt.Errorf("no controller reports %s as %s", addr, what)
	})
	if err != nil {
		t.Fatalf("%v; last view: %s", err, last)
	}
}

// requireCandidateRefused checks that the record considered addr, did not
// choose it, and says why: its reason contains why (case-insensitive)
// when why is not empty.
func requireCandidateRefused(t *testing.T, r foRecord, addr, why string) {
	t.Helper()
	for _, c := range r.Candidates {
		if c.Address == addr {
			if c.Chosen || c.Reason == "" {
				t.Fatalf("candidate %s: chosen=%t reason %q, want refused with a reason: %s", addr, c.Chosen, c.Reason, r.summary())
			}
			if why != "" && !strings.Contains(strings.ToLower(c.Reason), strings.ToLower(why)) {
				t.Errorf("candidate %s refused for %q, want a reason naming %q", addr, c.Reason, why)
			}
			t.Logf("candidate %s refused: %s", addr, c.Reason)
			return
		}
	}
	t.Fatalf("record does not list %s among its candidates: %s", addr, r.summary())
}

// ---- a multi-table concurrent write load ----------------------------------

// parLoad runs one writer per table, concurrently, following the master,
// so a parallel-replicating replica has independent transactions to apply
// in several workers at once. Each writer inserts client-numbered rows and
// remembers which were acknowledged.
type parLoad struct {
	tables []string
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	acked  map[string][]int64
	failed int
}

// startParLoad creates n tables on the master and starts the writers.
func (e *foEnv) startParLoad(ctx context.Context, t *testing.T, n int) *parLoad {
	t.Helper()
	db, err := e.sb.AdminDB(0)
	if err != nil {
		t.Fatal(err)
	}
	p := &parLoad{acked: map[string][]int64{}}
	for k := 0; k < n; k++ {
		tb := fmt.Sprintf("qha_test.par_%d", k)
		p.tables = append(p.tables, tb)
		detExec(ctx, t, db, "CREATE TABLE IF NOT EXISTS "+tb+" (id BIGINT PRIMARY KEY, pad VARCHAR(255) NOT NULL)")
	}
	db.Close()
	if err := e.sb.WaitReplicating(ctx); err != nil {
		t.Fatal(err)
	}
	f := &masterFollower{sb: e.sb, g: e.g}
	f.setFailed(func() int {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.failed
	})
	lctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	for _, tb := range p.tables {
		p.wg.Go(func() { p.write(lctx, f, tb) })
	}
	t.Cleanup(p.stop)
	err = harness.Poll(ctx, 50*time.Millisecond, func() error {
		if a := p.total(); a < 20 {
			return fmt.Errorf("%d writes acknowledged", a)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("parallel load: %v", err)
	}
	return p
}

func (p *parLoad) write(ctx context.Context, f *masterFollower, table string) {
	var (
		db      *sql.DB
		current string
	)
	defer func() {
		if db != nil {
			db.Close()
		}
	}()
	pad := strings.Repeat("x", 200)
	for id := int64(1); ctx.Err() == nil; id++ {
		if dsn := f.dsn(); dsn != current || db == nil {
			if db != nil {
				db.Close()
			}
			var err error
			if db, err = sql.Open("mysql", dsn); err != nil {
				db = nil
				continue
			}
			db.SetMaxOpenConns(1)
			current = dsn
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := db.ExecContext(wctx, "INSERT INTO "+table+" (id, pad) VALUES (?, ?)", id, pad)
		cancel()
		p.mu.Lock()
		if err == nil {
			p.acked[table] = append(p.acked[table], id)
		} else if ctx.Err() == nil {
			p.failed++
		}
		p.mu.Unlock()
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

func (p *parLoad) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, ids := range p.acked {
		n += len(ids)
	}
	return n
}

// stop ends the writers and waits for them; it may be called more than once.
func (p *parLoad) stop() {
	p.cancel()
	p.wg.Wait()
}

// waitMore polls until n more writes were acknowledged than now.
func (p *parLoad) waitMore(ctx context.Context, t *testing.T, n int) {
	t.Helper()
	base := p.total()
	err := harness.Poll(ctx, 100*time.Millisecond, func() error {
		if a := p.total(); a < base+n {
			return fmt.Errorf("%d writes acknowledged since, want %d (failed %d)", a-base, n, p.failed)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("writes never reached the master: %v", err)
	}
}

// requireAll fails unless instance i holds every acknowledged row of
// every table.
func (p *parLoad) requireAll(ctx context.Context, t *testing.T, sb *sandbox.Sandbox, i int) {
	t.Helper()
	db, err := sb.AdminDB(i)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p.mu.Lock()
	acked := map[string][]int64{}
	for k, v := range p.acked {
		acked[k] = append([]int64(nil), v...)
	}
	p.mu.Unlock()
	total := 0
	for _, tb := range p.tables {
		rows, err := db.QueryContext(ctx, "SELECT id FROM "+tb)
		if err != nil {
			t.Fatalf("%s: %v", sb.Instance(i).Name, err)
		}
		var have []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			have = append(have, id)
		}
		rows.Close()
		if missing := harness.MissingIDs(acked[tb], have); len(missing) > 0 {
			t.Fatalf("%s lost %d of %d acknowledged writes to %s: %v", sb.Instance(i).Name, len(missing), len(acked[tb]), tb, missing)
		}
		total += len(acked[tb])
	}
	t.Logf("%s holds all %d acknowledged writes of %d tables", sb.Instance(i).Name, total, len(p.tables))
}

// requireFenceProven checks the record's fence state as the fence code
// records it (fsm.FenceInfo): proven, by a named proof. A branch whose
// records carry no fence state yet (before recovery.fence: required is
// merged) only logs that.
func (e *foEnv) requireFenceProven(ctx context.Context, t *testing.T, r foRecord) {
	t.Helper()
	var f *isoFence
	var err error
	for _, c := range e.g.Running() { // the first that holds the record: a cut-off one may not
		if f, _, err = isoRecordFence(ctx, c, r.ID); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if f == nil {
		t.Logf("record %d carries no fence state (fence code not merged?)", r.ID)
		return
	}
	if f.State != "proven" || f.Proof == "" {
		t.Fatalf("record %d promoted without a proven fence: %s; %s", r.ID, f, r.summary())
	}
	t.Logf("record %d fence: proven by %s (%s)", r.ID, f.Proof, f.Detail)
}
