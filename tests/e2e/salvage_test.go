package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
	"github.com/quorumha/quorumha/tests/harness"
)

// The binlog salvage scenarios (issue 7): asynchronous replication, both
// replicas' IO threads stopped, N acknowledged writes that only the master
// has, then kill -9 of the master's mariadbd alone. A `quorumha agent` runs
// beside the master's datadir the way it would on the master's host.

// salvageRows is N, the acknowledged writes only the dead master has.
const salvageRows = 25

// agentProc is a running `quorumha agent`.
type agentProc struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{}
}

// startAgent runs `quorumha agent` serving instance i's binlog directory
// with a bearer token, and waits until it answers.
func startAgent(ctx context.Context, t *testing.T, sb *sandbox.Sandbox, i int, token string) *agentProc {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "agent.token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := harness.FreePorts(t, 1)[0]
	// pid_file: the agent says whether the server runs (the fence proof
	// after a kill -9); binlog_index: a replica's datadir has a relay log
	// index too.
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

// stop kills the agent (SIGKILL: it serves reads only) and waits for it.
func (a *agentProc) stop() {
	if a.cmd.Process != nil {
		_ = a.cmd.Process.Kill()
	}
	<-a.done
}

// salvageEnv is an async sandbox with an agent beside the master and three
// controllers that know the agent.
func salvageEnv(ctx context.Context, t *testing.T) (*foEnv, *agentProc) {
	t.Helper()
	return salvageEnvMode(ctx, t, true, "")
}

// salvageEnvMode is salvageEnv with GTID or file/position replication and
// recovery.fence ("" for the default, required: the agent's "server not
// running" after the kill -9 is the fence proof).
func salvageEnvMode(ctx context.Context, t *testing.T, gtid bool, fence string) (*foEnv, *agentProc) {
	t.Helper()
	sb := sandbox.New(t, sandbox.Options{Replicas: 2, GTID: gtid})
	const token = "agent-test-token"
	ag := startAgent(ctx, t, sb, 0, token)
	tokenFile := filepath.Join(t.TempDir(), "controller-agent.token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	mode := "gtid"
	if !gtid {
		mode = "file"
	}
	e := startFailoverEnvOn(ctx, t, sb, foOptions{Async: true, Fence: fence,
		ClusterYAML: []string{"replication_mode: " + mode, "agent:", "  token_file: " + tokenFile},
		Instances:   map[int][]string{0: {"agent: " + ag.url}, 1: {"candidate_master: true"}}})
	return e, ag
}

// writeOnlyOnMaster creates the table while replication runs, stops both
// replicas' IO threads, then commits n rows on the master (each one
// acknowledged) and returns their ids.
func writeOnlyOnMaster(ctx context.Context, t *testing.T, e *foEnv, n int) []int {
	t.Helper()
	db, err := e.sb.AdminDB(0)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	detExec(ctx, t, db, "CREATE TABLE IF NOT EXISTS "+sandbox.TestDB+".salvage (id INT PRIMARY KEY, v VARCHAR(64))")
	e.waitTableEverywhere(ctx, t, "salvage")
	for i := 1; i <= 2; i++ {
		e.stopReplicaThread(ctx, t, i, "IO_THREAD")
	}
	var ids []int
	for k := 1; k <= n; k++ {
		if _, err := db.ExecContext(ctx, "INSERT INTO "+sandbox.TestDB+".salvage VALUES (?, ?)", k, fmt.Sprintf("only-on-master-%d", k)); err != nil {
			t.Fatalf("insert %d: %v", k, err)
		}
		ids = append(ids, k)
	}
	return ids
}

// waitTableEverywhere polls until every replica has the table.
func (e *foEnv) waitTableEverywhere(ctx context.Context, t *testing.T, table string) {
	t.Helper()
	err := harness.Poll(ctx, 100*time.Millisecond, func() error {
		for i := 1; i <= 2; i++ {
			if _, err := e.salvageIDs(ctx, i, table); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("table %s never replicated: %v", table, err)
	}
}

// salvageIDs returns the ids in the table on instance i.
func (e *foEnv) salvageIDs(ctx context.Context, i int, table string) ([]int, error) {
	db, err := e.sb.AdminDB(i)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SELECT id FROM "+sandbox.TestDB+"."+table+" ORDER BY id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// requireRows polls until instance i holds exactly want.
func (e *foEnv) requireRows(ctx context.Context, t *testing.T, i int, want []int) {
	t.Helper()
	var got []int
	err := harness.Poll(ctx, 200*time.Millisecond, func() error {
		var err error
		got, err = e.salvageIDs(ctx, i, "salvage")
		if err != nil {
			return err
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("has %d rows", len(got))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("instance %d (%s): rows %v, want %v: %v", i, e.addr(i), got, want, err)
	}
}

// gtidBinlogPos reads @@gtid_binlog_pos of instance i.
func (e *foEnv) gtidBinlogPos(ctx context.Context, t *testing.T, i int) string {
	t.Helper()
	db, err := e.sb.AdminDB(i)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var p string
	if err := db.QueryRowContext(ctx, "SELECT @@global.gtid_binlog_pos").Scan(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSalvage_AgentRecoversWhatOnlyTheMasterHad(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), foTimeout)
	defer cancel()
	e, ag := salvageEnv(ctx, t)
	ids := writeOnlyOnMaster(ctx, t, e, salvageRows)
	masterPos := e.gtidBinlogPos(ctx, t, 0)

	rec := e.killMasterAndWaitFailover(ctx, t, 0)
	requireSuccessRecord(t, rec, e.addr(0), e.addr(1), "automatic")
	e.requireNewMaster(ctx, t, 1)
	e.waitReplicatesFrom(ctx, t, 2, 1)
	e.requireRows(ctx, t, 1, ids)
	e.requireRows(ctx, t, 2, ids)

	s := rec.Salvage
	if s == nil || s.Outcome != "applied" || s.Applied != salvageRows || len(s.GTIDs) != salvageRows || s.Agent != ag.url {
		t.Fatalf("salvage report %+v; %s", s, rec.summary())
	}
	if s.MasterLast != masterPos || s.Recovered != masterPos || s.LossWindow != "" || len(s.Skipped) != 0 {
		t.Errorf("salvage report %+v; want the master's last position %s recovered and no loss window", s, masterPos)
	}
	st, _ := rec.step("salvage")
	if st.Outcome != "ok" || !strings.Contains(st.Detail, fmt.Sprintf("%d transactions", salvageRows)) {
		t.Errorf("salvage step %+v", st)
	}
	t.Logf("salvage of %d transactions took %s (step %s)", s.Applied, s.Took, st.End.Sub(st.Start))
	e.sampler.require(t)

	// The web view shows the salvage of the record.
	dom := dumpDOM(ctx, t, chromiumPath(t), e.g.Running()[0].URL("/ui"))
	for _, want := range []string{"Binlog salvage", s.GTIDs[0], s.GTIDs[len(s.GTIDs)-1], ag.url} {
		if !strings.Contains(dom, htmlText(want)) {
			t.Errorf("web view lacks %q", want)
		}
	}
}

// With file/position replication every replica is salvaged from its own
// coordinate in the dead master's binlog, before the others are repointed
// to the new master's coordinate.
func TestSalvage_FilePosition(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), foTimeout)
	defer cancel()
	e, _ := salvageEnvMode(ctx, t, false, "")
	ids := writeOnlyOnMaster(ctx, t, e, salvageRows)
	rec := e.killMasterAndWaitFailover(ctx, t, 0)
	requireSuccessRecord(t, rec, e.addr(0), e.addr(1), "automatic")
	e.requireNewMaster(ctx, t, 1)
	e.waitReplicatesFrom(ctx, t, 2, 1)
	e.requireRows(ctx, t, 1, ids)
	e.requireRows(ctx, t, 2, ids)
	s := rec.Salvage
	if s == nil || s.Outcome != "applied" || s.Applied != salvageRows || !strings.HasPrefix(s.Recovered, "mysql-bin.") {
		t.Fatalf("salvage report %+v; %s", s, rec.summary())
	}
	if st, _ := rec.step("salvage"); !strings.Contains(st.Detail, e.addr(2)+fmt.Sprintf(": %d applied", salvageRows)) {
		t.Errorf("salvage step does not report the other replica's salvage: %+v", st)
	}
	e.sampler.require(t)
}

func TestSalvage_AgentDownFailoverStillCompletes(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), foTimeout)
	defer cancel()
	// With the master's whole host gone and no lease witness, nothing
	// proves a fence: this test is about the salvage, so it promotes
	// under best_effort (the fence tests cover the wait).
	e, ag := salvageEnvMode(ctx, t, true, "best_effort")
	writeOnlyOnMaster(ctx, t, e, salvageRows)
	survivors, err := e.salvageIDs(ctx, 1, "salvage")
	if err != nil {
		t.Fatal(err)
	}
	// Wait until every controller's probes have read the master's final
	// position: that is what the loss window is measured against.
	masterPos := e.gtidBinlogPos(ctx, t, 0)
	err = harness.Poll(ctx, 100*time.Millisecond, func() error {
		for _, c := range e.g.Running() {
			a, _, err := detAssess(ctx, c)
			if err != nil {
				return err
			}
			if v, ok := a.vote(c.ID); !ok || v.LastPosition != masterPos {
				return fmt.Errorf("%s's own vote has last position %q, want %q", c.ID, v.LastPosition, masterPos)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("probes never read the master's position: %v", err)
	}
	ag.stop() // the master's whole host is gone

	rec := e.killMasterAndWaitFailover(ctx, t, 0)
	requireSuccessRecord(t, rec, e.addr(0), e.addr(1), "automatic")
	e.requireNewMaster(ctx, t, 1)
	e.waitReplicatesFrom(ctx, t, 2, 1)
	e.requireRows(ctx, t, 1, survivors)

	s := rec.Salvage
	if s == nil || s.Outcome != "unreachable" || s.Applied != 0 {
		t.Fatalf("salvage report %+v; %s", s, rec.summary())
	}
	if !strings.Contains(s.LossWindow, e.addr(0)) || !strings.Contains(s.LossWindow, s.Before) || s.Before == "" {
		t.Errorf("loss window %q must name the dead master and the recovered position %q", s.LossWindow, s.Before)
	}
	// The probes saw the master at masterPos; the survivors lack every row.
	if !strings.HasPrefix(s.MasterLastSeen, masterPos+" ") || !strings.Contains(s.LossWindow, fmt.Sprintf("at least %d committed transactions are lost", salvageRows)) {
		t.Errorf("last seen %q, loss window %q: want %s and %d transactions lost", s.MasterLastSeen, s.LossWindow, masterPos, salvageRows)
	}
	if st, _ := rec.step("salvage"); st.Outcome != "warning" {
		t.Errorf("salvage step %+v, want a warning", st)
	}
	if f := rec.Fence; f == nil || f.State != "unproven" || f.Proof != "none" {
		t.Errorf("fence %+v, want best_effort's unproven/none", f)
	}
	e.sampler.require(t)
}

func TestSalvage_TruncatedLastTransactionIsNotApplied(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), foTimeout)
	defer cancel()
	e, _ := salvageEnv(ctx, t)
	ids := writeOnlyOnMaster(ctx, t, e, salvageRows)
	// kill -9, then cut the last commit in half as a crash while writing
	// it would leave it. The cut is done microseconds after the kill; the
	// salvage reads the binlog only after detection (three failed probes
	// 500 ms apart) and four more steps, and if it ever read the file
	// before the cut the test would fail (all rows), never pass wrongly.
	before := e.lastRecordID(ctx, t)
	if err := e.sb.Kill(0); err != nil {
		t.Fatal(err)
	}
	cutLastBinlog(t, e.sb.Instance(0).DataDir, 10)
	rec := e.waitFailoverClosed(ctx, t, e.g.Running(), before)
	requireSuccessRecord(t, rec, e.addr(0), e.addr(1), "automatic")
	want := ids[:len(ids)-1]
	e.requireRows(ctx, t, 1, want)
	e.waitReplicatesFrom(ctx, t, 2, 1)
	e.requireRows(ctx, t, 2, want)
	s := rec.Salvage
	if s == nil || s.Outcome != "applied" || s.Applied != salvageRows-1 || len(s.Skipped) != 1 || s.Skipped[0].Bytes <= 0 {
		t.Fatalf("salvage report %+v; want %d applied and the cut transaction skipped", s, salvageRows-1)
	}
	if !strings.Contains(s.Skipped[0].Reason, "incomplete") {
		t.Errorf("skipped reason %q", s.Skipped[0].Reason)
	}
}

// cutLastBinlog removes n bytes from the end of the newest binlog file in dir.
func cutLastBinlog(t *testing.T, dir string, n int64) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "mysql-bin.[0-9]*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no binlog in %s: %v", dir, err)
	}
	sort.Strings(files)
	last := files[len(files)-1]
	st, err := os.Stat(last)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(last, st.Size()-n); err != nil {
		t.Fatal(err)
	}
}
