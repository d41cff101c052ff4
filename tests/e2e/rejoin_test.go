package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
	"github.com/quorumha/quorumha/tests/harness"
)

// errantRows is how many rows only the old master has.
const errantRows = 5

// Rejoin of a former master (issue 19): after a failover the old master is
// left alone; `quorumha rejoin` makes it a read-only replica of the new one,
// refusing (or, with --rewind, reverting) transactions only it has.

// rejoinRecord polls until the newest rejoin record is closed on a running
// controller and returns it.
func (e *foEnv) rejoinRecord(ctx context.Context, t *testing.T) foRecord {
	t.Helper()
	var got foRecord
	err := harness.Poll(ctx, 200*time.Millisecond, func() error {
		recs, err := foHistory(ctx, e.g.Running()[0])
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Kind == "rejoin" && (got.ID == 0 || r.ID > got.ID) {
				got = r
			}
		}
		switch {
		case got.ID == 0:
			return fmt.Errorf("no rejoin record")
		case got.open():
			return fmt.Errorf("rejoin record %d still open", got.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// requireSameRows polls until instance i holds the same ids in table as
// instance j.
func (e *foEnv) requireSameRows(ctx context.Context, t *testing.T, table string, i, j int) []int {
	t.Helper()
	var a, b []int
	err := harness.Poll(ctx, 200*time.Millisecond, func() error {
		var err error
		if a, err = e.salvageIDs(ctx, i, table); err != nil {
			return err
		}
		if b, err = e.salvageIDs(ctx, j, table); err != nil {
			return err
		}
		if fmt.Sprint(a) != fmt.Sprint(b) {
			return fmt.Errorf("%d rows on %d, %d on %d", len(a), i, len(b), j)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: instance %d has %v, instance %d has %v: %v", table, i, a, j, b, err)
	}
	return a
}

// writeRows inserts ids into table on instance i (created if needed).
func (e *foEnv) writeRows(ctx context.Context, t *testing.T, i int, table string, ids ...int) {
	t.Helper()
	db, err := e.sb.AdminDB(i)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	detExec(ctx, t, db, "CREATE TABLE IF NOT EXISTS "+sandbox.TestDB+"."+table+" (id INT PRIMARY KEY, v VARCHAR(64))")
	for _, id := range ids {
		if _, err := db.ExecContext(ctx, "INSERT INTO "+sandbox.TestDB+"."+table+" VALUES (?, ?)", id, fmt.Sprintf("row-%d", id)); err != nil {
			t.Fatalf("insert %d on %s: %v", id, e.addr(i), err)
		}
	}
}

// requireRejoined checks that instance i replicates from m with both
// threads, is read-only, and applies what m writes next.
func (e *foEnv) requireRejoined(ctx context.Context, t *testing.T, i, m int) {
	t.Helper()
	e.waitReplicatesFrom(ctx, t, i, m)
	if ro, err := e.readOnly(ctx, i); err != nil || !ro {
		t.Fatalf("rejoined %s: read_only=%v err=%v, want on", e.addr(i), ro, err)
	}
	e.writeRows(ctx, t, m, "after_rejoin", 1, 2, 3)
	e.requireSameRows(ctx, t, "after_rejoin", i, m)
}

// The clean case: kill -9 of a semi-sync master, failover, the old master
// restarted; it has nothing the new master lacks, and rejoins.
func TestRejoin_CleanAfterKill(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), foTimeout)
	defer cancel()
	e := startFailoverEnv(ctx, t, foOptions{Instances: map[int][]string{1: {"candidate_master: true"}}})
	e.writeRows(ctx, t, 0, "before_kill", 1, 2, 3)
	e.waitTableEverywhere(ctx, t, "before_kill")
	e.requireSameRows(ctx, t, "before_kill", 1, 0)

	rec := e.killMasterAndWaitFailover(ctx, t, 0)
	requireSuccessRecord(t, rec, e.addr(0), e.addr(1), "automatic")
	e.requireNewMaster(ctx, t, 1)
	e.writeRows(ctx, t, 1, "before_kill", 4, 5) // the new master moves on under its own server id
	e.restartReadOnly(ctx, t, 0)

	addr := e.g.Running()[0].HTTPAddr
	out, code := cli(ctx, t, "rejoin", "--cluster", detCluster, "--instance", e.addr(0), "--dry-run", "--addr", addr)
	if code != 0 || !strings.Contains(out, "would rejoin") {
		t.Fatalf("dry run: exit %d\n%s", code, out)
	}
	out, code = cli(ctx, t, "rejoin", "--cluster", detCluster, "--instance", e.addr(0), "--addr", addr)
	if code != 0 {
		t.Fatalf("rejoin: exit %d\n%s", code, out)
	}
	r := e.rejoinRecord(ctx, t)
	if r.Result != "success" || r.OldMaster != e.addr(0) {
		t.Fatalf("rejoin record: %s", r.summary())
	}
	for _, s := range []string{"check", "clear_fence", "change_master", "start_replica"} {
		if st, ok := r.step(s); !ok || st.Outcome != "ok" {
			t.Errorf("step %s: %+v", s, st)
		}
	}
	e.requireRejoined(ctx, t, 0, 1)
	e.requireSameRows(ctx, t, "before_kill", 0, 1)
	e.waitMasterEverywhere(ctx, t, e.addr(1))

	// Rejoining the master, or again while it is a replica, is refused or
	// harmless; the master is refused.
	out, code = cli(ctx, t, "rejoin", "--cluster", detCluster, "--instance", e.addr(1), "--addr", addr)
	if code == 0 || !strings.Contains(out, "recorded master") {
		t.Fatalf("rejoin of the master: exit %d\n%s", code, out)
	}
	e.sampler.require(t)
}

// startAgentOnPort is startAgent on a given port, so an agent stopped
// before a failover can come back at the address the controllers know.
func startAgentOnPort(ctx context.Context, t *testing.T, sb *sandbox.Sandbox, i, port int, tokenFile string) *agentProc {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf("agent:\n  listen: 127.0.0.1:%d\n  binlog_dir: %s\n  binlog_index: %s\n  token_file: %s\n  pid_file: %s\n",
		port, sb.Instance(i).DataDir, filepath.Join(sb.Instance(i).DataDir, sandbox.BinlogIndex), tokenFile, sb.Instance(i).PIDFile())
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
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.cmd.Wait(); logf.Close(); close(a.done) }()
	t.Cleanup(a.stop)
	err = harness.Poll(ctx, 100*time.Millisecond, func() error {
		select {
		case <-a.done:
			out, _ := os.ReadFile(logf.Name())
			t.Fatalf("agent exited: %s", out)
		default:
		}
		_, err := harness.Do(ctx, http.MethodGet, a.url+"/healthz", nil, nil)
		return err
	})
	if err != nil {
		t.Fatalf("agent never answered: %v", err)
	}
	return a
}

// The errant case: asynchronous replication, the replicas' IO threads
// stopped, writes acknowledged by the master alone, its agent gone (no
// salvage) and the master killed: the failover loses them, and the old
// master holds transactions the new master never got. Rejoin refuses,
// naming their GTIDs; with --rewind it saves them to a file, reverts them
// and rejoins.
//
// errantSetup is the errant case up to the rejoin: the old master back,
// read-only, with its agent, holding errantRows rows (and, with ddl, a
// table) the new master never got.
func errantSetup(ctx context.Context, t *testing.T, ddl bool) (e *foEnv, ids []int, masterPos string) {
	t.Helper()
	sb := sandbox.New(t, sandbox.Options{Replicas: 2, GTID: true})
	tokenFile := filepath.Join(t.TempDir(), "agent.token")
	if err := os.WriteFile(tokenFile, []byte("rejoin-agent-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := harness.FreePorts(t, 1)[0]
	ag := startAgentOnPort(ctx, t, sb, 0, port, tokenFile)
	// Nothing proves a fence with the master's agent gone: best_effort, as
	// the salvage tests do; this test is about what the old master kept.
	e = startFailoverEnvOn(ctx, t, sb, foOptions{Async: true, Fence: "best_effort",
		ClusterYAML: []string{"agent:", "  token_file: " + tokenFile},
		Instances:   map[int][]string{0: {"agent: " + ag.url}, 1: {"candidate_master: true"}}})
	ids = writeOnlyOnMaster(ctx, t, e, errantRows)
	if ddl {
		e.writeRows(ctx, t, 0, "errant_ddl", 1)
	}
	survivors, err := e.salvageIDs(ctx, 1, "salvage")
	if err != nil {
		t.Fatal(err)
	}
	if len(survivors) != 0 || len(ids) != errantRows {
		t.Fatalf("replica has %v, master wrote %v", survivors, ids)
	}
	masterPos = e.gtidBinlogPos(ctx, t, 0)
	ag.stop() // no salvage: the writes stay on the old master alone

	rec := e.killMasterAndWaitFailover(ctx, t, 0)
	requireSuccessRecord(t, rec, e.addr(0), e.addr(1), "automatic")
	e.requireNewMaster(ctx, t, 1)
	// The new master writes more than the errant count under its own
	// server id: its sequence numbers overtake the errant ones, which a
	// per-domain comparison would then call known.
	e.writeRows(ctx, t, 1, "salvage", 101, 102, 103, 104, 105, 106, 107)
	e.restartReadOnly(ctx, t, 0)
	startAgentOnPort(ctx, t, sb, 0, port, tokenFile)

	return e, ids, masterPos
}

func TestRejoin_ErrantRefusedThenRewound(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), foTimeout)
	defer cancel()
	e, ids, masterPos := errantSetup(ctx, t, false)

	addr := e.g.Running()[0].HTTPAddr
	out, code := cli(ctx, t, "rejoin", "--cluster", detCluster, "--instance", e.addr(0), "--addr", addr)
	// masterPos is 0-1-N: the errant range ends there.
	last := masterPos[strings.LastIndex(masterPos, "-")+1:]
	want := regexp.MustCompile(`0-1-\d+\.\.` + last)
	if code != 2 || !want.MatchString(out) || !strings.Contains(out, "--rewind") {
		t.Fatalf("rejoin without --rewind: exit %d, want 2 naming the errant GTIDs ending %s\n%s", code, masterPos, out)
	}
	// The agent names each errant transaction; the last is the old
	// master's last position.
	if !strings.Contains(out, "in its binlog: ") || !strings.Contains(out, masterPos) {
		t.Fatalf("refusal does not list the errant transactions from the binlog (last %s)\n%s", masterPos, out)
	}
	out, code = cli(ctx, t, "rejoin", "--cluster", detCluster, "--instance", e.addr(0), "--rewind", "--dry-run", "--addr", addr)
	if code != 0 || !strings.Contains(out, "would rejoin") || !strings.Contains(out, "errant transactions in its binlog: ") {
		t.Fatalf("dry run with --rewind: exit %d\n%s", code, out)
	}
	if got, _ := e.salvageIDs(ctx, 0, "salvage"); fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("the refusal changed the old master: rows %v, want %v", got, ids)
	}

	out, code = cli(ctx, t, "rejoin", "--cluster", detCluster, "--instance", e.addr(0), "--rewind", "--addr", addr)
	if code != 0 {
		t.Fatalf("rejoin --rewind: exit %d\n%s", code, out)
	}
	r := e.rejoinRecord(ctx, t)
	if r.Result != "success" {
		t.Fatalf("rejoin record: %s", r.summary())
	}
	save, _ := r.step("save_errant")
	file := regexp.MustCompile(`saved in (\S+\.binlog)`).FindStringSubmatch(save.Detail)
	if save.Outcome != "ok" || file == nil {
		t.Fatalf("save step %+v", save)
	}
	if fi, err := os.Stat(file[1]); err != nil || fi.Size() == 0 || !strings.Contains(file[1], "/rewind/") {
		t.Fatalf("saved file %s: %v", file[1], err)
	}
	// The saved file holds the errant rows: mariadb-binlog decodes them.
	dump, err := exec.CommandContext(ctx, "mariadb-binlog", "-v", file[1]).CombinedOutput()
	if err != nil || strings.Count(string(dump), "### INSERT INTO") != errantRows {
		t.Fatalf("mariadb-binlog -v %s: %v; %d inserts, want %d\n%s", file[1], err, strings.Count(string(dump), "### INSERT INTO"), errantRows, tailLines(string(dump), 40))
	}
	e.requireRejoined(ctx, t, 0, 1)
	got := e.requireSameRows(ctx, t, "salvage", 0, 1)
	if fmt.Sprint(got) != "[101 102 103 104 105 106 107]" {
		t.Fatalf("old master rows %v after the rewind, want the new master's only", got)
	}
	e.sampler.require(t)
}

// Flashback reverts row events only: errant DDL (a CREATE TABLE, logged as
// a statement) makes the rewind refuse before anything is reverted.
func TestRejoin_ErrantDDLNotRewound(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), foTimeout)
	defer cancel()
	e, ids, _ := errantSetup(ctx, t, true)
	addr := e.g.Running()[0].HTTPAddr
	out, code := cli(ctx, t, "rejoin", "--cluster", detCluster, "--instance", e.addr(0), "--rewind", "--addr", addr)
	if code != 1 {
		t.Fatalf("rejoin --rewind with errant DDL: exit %d, want 1 (record refused)\n%s", code, out)
	}
	r := e.rejoinRecord(ctx, t)
	fb, _ := r.step("flashback")
	if r.Result != "refused" || !strings.Contains(fb.Detail, "CREATE TABLE") || !strings.Contains(fb.Detail, "nothing was reverted") {
		t.Fatalf("rejoin record: %s", r.summary())
	}
	if got, _ := e.salvageIDs(ctx, 0, "salvage"); fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("the refused rewind changed the old master: rows %v, want %v", got, ids)
	}
	if ro, err := e.readOnly(ctx, 0); err != nil || !ro {
		t.Fatalf("old master read_only=%v err=%v after the refusal", ro, err)
	}
	e.sampler.require(t)
}

// A forced failover of a live master fences it through its agent
// (read_only, a global read lock held by the agent): the old master is alive
// and fenced. Rejoin must lift the agent's fence, or the global read lock
// would stop its SQL thread from applying anything.
func TestRejoin_ClearsAgentFence(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), foTimeout)
	defer cancel()
	e := startScenarioEnv(ctx, t, scnOptions{Agents: true, Instances: map[int][]string{1: {"candidate_master: true"}}})
	e.writeRows(ctx, t, 0, "before_fo", 1, 2)
	e.waitTableEverywhere(ctx, t, "before_fo")
	e.requireSameRows(ctx, t, "before_fo", 1, 0)
	addr := e.g.Running()[0].HTTPAddr
	// The master's agent must hold an armed lease before the failover: an
	// agent that was never armed fences nothing when the lease lapses (a
	// group still starting must not fence a healthy master).
	err := harness.Poll(ctx, 200*time.Millisecond, func() error {
		v, err := e.leaseView(ctx, e.g.Running()[0])
		if err != nil {
			return err
		}
		for _, m := range v.Lease.Masters {
			if m.Instance == e.addr(0) && m.Armed {
				return nil
			}
		}
		return fmt.Errorf("the master's agent is not armed yet: %+v", v.Lease.Masters)
	})
	if err != nil {
		t.Fatal(err)
	}
	out, code := cli(ctx, t, "failover", "--cluster", detCluster, "--force", "--to", e.addr(1), "--wait", "90s", "--addr", addr)
	if code != 0 {
		t.Fatalf("forced failover: exit %d\n%s", code, out)
	}
	e.requireNewMaster(ctx, t, 1)
	recs, err := foHistory(ctx, e.g.Running()[0])
	if err != nil {
		t.Fatal(err)
	}
	var fo foRecord
	for _, r := range recs {
		if r.Kind == "failover" && r.ID > fo.ID {
			fo = r
		}
	}
	if fo.Salvage == nil || fo.Salvage.Agent == "" {
		t.Fatalf("no agent of the old master in the record: %s", fo.summary())
	}
	// The controllers stopped renewing the old master's lease: its armed
	// agent fences it (read_only and a global read lock it holds).
	oldAgent := &agentProc{url: fo.Salvage.Agent}
	err = harness.Poll(ctx, 200*time.Millisecond, func() error {
		st, err := agentFence(ctx, oldAgent)
		if err != nil {
			return err
		}
		if st["fenced"] != true {
			return fmt.Errorf("agent of the old master not fenced: %v", st)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e.writeRows(ctx, t, 1, "before_fo", 3)

	out, code = cli(ctx, t, "rejoin", "--cluster", detCluster, "--instance", e.addr(0), "--addr", addr)
	if code != 0 {
		t.Fatalf("rejoin: exit %d\n%s", code, out)
	}
	r := e.rejoinRecord(ctx, t)
	cf, _ := r.step("clear_fence")
	if r.Result != "success" || !strings.Contains(cf.Detail, "agent fence cleared") {
		t.Fatalf("rejoin record: %s", r.summary())
	}
	e.requireRejoined(ctx, t, 0, 1)
	e.requireSameRows(ctx, t, "before_fo", 0, 1)
	if st, err := agentFence(ctx, oldAgent); err != nil || st["fenced"] != false {
		t.Fatalf("agent of the rejoined instance: %v %v, want not fenced", st, err)
	}
	e.sampler.require(t)
}
