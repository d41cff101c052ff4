package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
	"github.com/quorumha/quorumha/tests/harness"
)

// crResult is check-repl's --json output, as much as the tests read.
type crResult struct {
	OK       bool `json:"ok"`
	Clusters []struct {
		Name      string `json:"name"`
		Master    string `json:"master"`
		Instances []struct {
			Address string `json:"address"`
			Role    string `json:"role"`
		} `json:"instances"`
		Problems []crProblem `json:"problems"`
	} `json:"clusters"`
}

type crProblem struct {
	Severity string `json:"severity"`
	Code     string `json:"code"`
	Instance string `json:"instance"`
	Message  string `json:"message"`
}

func (r crResult) problems() []crProblem {
	var out []crProblem
	for _, c := range r.Clusters {
		out = append(out, c.Problems...)
	}
	return out
}

func (r crResult) has(code, instance string) bool {
	for _, p := range r.problems() {
		if p.Code == code && p.Instance == instance {
			return true
		}
	}
	return false
}

// runCheckRepl runs `quorumha check-repl --config cfg --json` and returns its
// exit status and decoded output.
func runCheckRepl(t *testing.T, cfg string) (int, crResult, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin.Path(t), "check-repl", "--config", cfg, "--json")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("check-repl: %v", err)
	}
	var res crResult
	if jerr := json.Unmarshal(out, &res); jerr != nil {
		t.Fatalf("check-repl exit %d, output is not JSON: %v\n%s\nstderr: %s", code, jerr, out, stderr.String())
	}
	return code, res, string(out)
}

// waitCheckRepl runs check-repl until it reports code on instance (states
// such as a SQL error or lag take a moment to appear), then requires exit 1.
func waitCheckRepl(t *testing.T, cfg, code, instance string, during func(*testing.T)) crResult {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if during != nil {
			during(t)
		}
		exit, res, out := runCheckRepl(t, cfg)
		if res.has(code, instance) {
			if exit != 1 || res.OK {
				t.Fatalf("check-repl found %s on %s but exit=%d ok=%v\n%s", code, instance, exit, res.OK, out)
			}
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("check-repl never reported %s on %s; last exit %d:\n%s", code, instance, exit, out)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// requireClean requires exit 0, ok:true and no problem at all but the
// sandbox's heartbeat period (the server's default, slave_net_timeout/2),
// which check-repl rightly warns about.
func requireClean(t *testing.T, cfg string) {
	t.Helper()
	exit, res, out := runCheckRepl(t, cfg)
	n := 0
	for _, p := range res.problems() {
		if p.Code != "slow_master_loss_detection" {
			n++
		}
	}
	if exit != 0 || !res.OK || n != 0 {
		t.Fatalf("check-repl on a healthy sandbox: exit %d ok=%v\n%s", exit, res.OK, out)
	}
}

// crYAML writes a config for the sandbox: node0 master, node1 candidate_master.
func crYAML(t *testing.T, sb *sandbox.Sandbox, name, mode, maxLag string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "clusters:\n  - name: app1\n    user: %s\n    password: %s\n    repl_user: %s\n    repl_password: %s\n    replication_mode: %s\n",
		sandbox.AdminUser, sandbox.AdminPassword, sandbox.ReplUser, sandbox.ReplPassword, mode)
	if maxLag != "" {
		fmt.Fprintf(&b, "    max_lag: %s\n", maxLag)
	}
	b.WriteString("    instances:\n")
	for n, in := range sb.Instances() {
		fmt.Fprintf(&b, "      - address: %s\n", in.Addr())
		if n == 1 {
			b.WriteString("        candidate_master: true\n")
		}
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sqlOn runs statements on one connection of instance i (so session
// settings such as sql_log_bin=0 apply to the ones after them).
func sqlOn(t *testing.T, sb *sandbox.Sandbox, i int, stmts ...string) {
	t.Helper()
	db, err := sb.AdminDB(i)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatalf("%s: %v", sb.Instance(i).Name, err)
	}
	defer conn.Close()
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %s: %v", sb.Instance(i).Name, s, err)
		}
	}
}

func waitReplicating(t *testing.T, sb *sandbox.Sandbox) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sb.WaitReplicating(ctx); err != nil {
		t.Fatal(err)
	}
}

// restartWithConfig restarts instance i with edit applied to its my.cnf and
// returns a function that puts the original file back and restarts again.
func restartWithConfig(t *testing.T, sb *sandbox.Sandbox, i int, edit func(string) string) func() {
	t.Helper()
	cnf := filepath.Join(sb.Instance(i).DataDir, "my.cnf")
	orig, err := os.ReadFile(cnf)
	if err != nil {
		t.Fatal(err)
	}
	restart := func(content string) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := sb.StopInstance(ctx, i); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cnf, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := sb.StartInstance(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	restart(edit(string(orig)))
	return func() { restart(string(orig)) }
}

func TestCheckRepl_BrokenStates(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MariaDB servers")
	}
	parallel(t)
	bin.Path(t)
	// Heartbeats as quorumha sets them (detector.replica_heartbeat): the
	// text report of a healthy sandbox must then have no warning at all.
	sb := sandbox.New(t, sandbox.Options{Replicas: 2, GTID: true, HeartbeatPeriod: time.Second})
	addr := func(i int) string { return sb.Instance(i).Addr() }
	cfg := crYAML(t, sb, "app1.yaml", "gtid", "")
	changeMaster := fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%d, MASTER_USER='%s', MASTER_PASSWORD='%s', MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos",
		sb.Instance(0).Host, sb.Instance(0).Port, sandbox.ReplUser, sandbox.ReplPassword)

	requireClean(t, cfg)
	t.Run("text report and --cluster", func(t *testing.T) {
		out, err := exec.Command(bin.Path(t), "check-repl", "--config", cfg).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "cluster app1: master "+addr(0)) || !strings.Contains(string(out), "OK: no problems") {
			t.Fatalf("text report on a healthy sandbox: %v\n%s", err, out)
		}
		// A second cluster whose servers are all down fails the whole run,
		// unless --cluster selects the healthy one.
		orig, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ports := harness.FreePorts(t, 2)
		two := filepath.Join(t.TempDir(), "two.yaml")
		extra := fmt.Sprintf("  - name: app2\n    user: x\n    password: y\n    instances:\n      - address: 127.0.0.1:%d\n      - address: 127.0.0.1:%d\n", ports[0], ports[1])
		if err := os.WriteFile(two, append(orig, extra...), 0o600); err != nil {
			t.Fatal(err)
		}
		exit, res, out2 := runCheckRepl(t, two)
		if exit != 1 || res.OK || len(res.Clusters) != 2 || !res.has("unreachable", fmt.Sprintf("127.0.0.1:%d", ports[0])) {
			t.Fatalf("two clusters, app2 down: exit %d, want 1 with app2's instances unreachable\n%s", exit, out2)
		}
		out3, err := exec.Command(bin.Path(t), "check-repl", "--config", two, "--cluster", "app1", "--json").Output()
		if err != nil || !strings.Contains(string(out3), `"name": "app1"`) || strings.Contains(string(out3), "app2") {
			t.Fatalf("--cluster app1: %v\n%s", err, out3)
		}
	})
	t.Run("mha cnf", func(t *testing.T) {
		var b strings.Builder
		fmt.Fprintf(&b, "[server default]\nuser=%s\npassword=%s\nrepl_user=%s\nrepl_password=%s\nping_interval=1\n",
			sandbox.AdminUser, sandbox.AdminPassword, sandbox.ReplUser, sandbox.ReplPassword)
		for n, in := range sb.Instances() {
			fmt.Fprintf(&b, "\n[server%d]\nhostname=%s\nport=%d\n", n+1, in.Host, in.Port)
			if n == 1 {
				b.WriteString("candidate_master=1\n")
			}
			if n == 2 {
				b.WriteString("no_master=1\n")
			}
		}
		path := filepath.Join(t.TempDir(), "app1.cnf")
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		exit, res, out := runCheckRepl(t, path)
		if exit != 0 || !res.OK || len(res.Clusters) != 1 || res.Clusters[0].Master != addr(0) {
			t.Fatalf("MHA .cnf: exit %d, want 0 with master %s\n%s", exit, addr(0), out)
		}
	})

	restore := map[int]func(){} // my.cnf edits to undo
	steps := []struct {
		name     string
		code     string
		instance int
		msg      string // must appear in the problem's message
		config   string // "" means cfg
		breakIt  func(t *testing.T)
		during   func(t *testing.T)
		final    bool // the state is left broken
		repair   func(t *testing.T)
	}{
		{
			name: "unreachable replica", code: "unreachable", instance: 2, msg: "refused",
			breakIt: func(t *testing.T) {
				if err := sb.Kill(2); err != nil {
					t.Fatal(err)
				}
			},
			repair: func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				if err := sb.StartInstance(ctx, 2); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "second writable master", code: "multiple_masters", instance: 2, msg: "read_only=OFF",
			breakIt: func(t *testing.T) {
				sqlOn(t, sb, 2, "STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only=0")
			},
			repair: func(t *testing.T) {
				sqlOn(t, sb, 2, "SET GLOBAL read_only=1", changeMaster, "START SLAVE")
			},
		},
		{
			name: "replica not read_only", code: "replica_not_read_only", instance: 1,
			breakIt: func(t *testing.T) { sqlOn(t, sb, 1, "SET GLOBAL read_only=0") },
			repair:  func(t *testing.T) { sqlOn(t, sb, 1, "SET GLOBAL read_only=1") },
		},
		{
			name: "IO thread stopped", code: "io_thread_not_running", instance: 1, msg: "Slave_IO_Running=No",
			breakIt: func(t *testing.T) { sqlOn(t, sb, 1, "STOP SLAVE IO_THREAD") },
			repair:  func(t *testing.T) { sqlOn(t, sb, 1, "START SLAVE IO_THREAD") },
		},
		{
			name: "SQL thread stopped by an error", code: "sql_thread_not_running", instance: 2, msg: "Last_SQL_Errno=1062",
			// MariaDB replicas ignore "table exists" (slave_ddl_exec_mode=
			// IDEMPOTENT), so the conflict is a duplicate key (error 1062).
			breakIt: func(t *testing.T) {
				sqlOn(t, sb, 0, "CREATE TABLE qha_test.cr_dup (id INT PRIMARY KEY)")
				waitReplicating(t, sb)
				sqlOn(t, sb, 2, "SET SESSION sql_log_bin=0", "INSERT INTO qha_test.cr_dup VALUES (1)")
				sqlOn(t, sb, 0, "INSERT INTO qha_test.cr_dup VALUES (1)")
			},
			repair: func(t *testing.T) {
				sqlOn(t, sb, 2, "STOP SLAVE", "SET SESSION sql_log_bin=0", "DELETE FROM qha_test.cr_dup", "START SLAVE")
				waitReplicating(t, sb)
				sqlOn(t, sb, 0, "DROP TABLE qha_test.cr_dup")
			},
		},
		{
			name: "candidate without log_bin", code: "no_log_bin", instance: 1, msg: "log_bin is OFF",
			breakIt: func(t *testing.T) {
				restore[1] = restartWithConfig(t, sb, 1, func(s string) string { return strings.Replace(s, "log_bin=mysql-bin\n", "", 1) })
			},
			repair: func(t *testing.T) { restore[1]() },
		},
		{
			name: "candidate without log_slave_updates", code: "no_log_slave_updates", instance: 2,
			breakIt: func(t *testing.T) {
				restore[2] = restartWithConfig(t, sb, 2, func(s string) string { return s + "log_slave_updates=OFF\n" })
			},
			repair: func(t *testing.T) { restore[2]() },
		},
		{
			name: "repl user missing", code: "repl_user_missing", instance: 1, msg: `"repl" does not exist`,
			breakIt: func(t *testing.T) {
				sqlOn(t, sb, 1, "SET SESSION sql_log_bin=0", "DROP USER 'repl'@'%'")
			},
			repair: func(t *testing.T) {
				sqlOn(t, sb, 1, "SET SESSION sql_log_bin=0", "CREATE USER 'repl'@'%' IDENTIFIED BY '"+sandbox.ReplPassword+"'",
					"GRANT REPLICATION SLAVE, REPLICATION CLIENT, SLAVE MONITOR ON *.* TO 'repl'@'%'")
			},
		},
		{
			name: "repl user without REPLICATION SLAVE", code: "repl_user_no_privilege", instance: 2, msg: "'repl'@'%'",
			breakIt: func(t *testing.T) {
				sqlOn(t, sb, 2, "SET SESSION sql_log_bin=0", "REVOKE REPLICATION SLAVE ON *.* FROM 'repl'@'%'")
			},
			repair: func(t *testing.T) {
				sqlOn(t, sb, 2, "SET SESSION sql_log_bin=0", "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%'")
			},
		},
		{
			name: "replication filters differ", code: "filters_differ", instance: 2, msg: "replicate_do_db=qha_test",
			breakIt: func(t *testing.T) {
				sqlOn(t, sb, 2, "STOP SLAVE", "SET GLOBAL replicate_do_db='qha_test'", "START SLAVE")
			},
			repair: func(t *testing.T) {
				sqlOn(t, sb, 2, "STOP SLAVE", "SET GLOBAL replicate_do_db=''", "START SLAVE")
			},
		},
		{
			name: "GTID mode differs", code: "gtid_mode_differs", instance: 2, msg: "Using_Gtid=No",
			breakIt: func(t *testing.T) {
				sqlOn(t, sb, 2, "STOP SLAVE", "CHANGE MASTER TO MASTER_USE_GTID=no", "START SLAVE")
			},
			repair: func(t *testing.T) {
				sqlOn(t, sb, 2, "STOP SLAVE", "CHANGE MASTER TO MASTER_USE_GTID=slave_pos", "START SLAVE")
			},
		},
		{
			name: "lag above max_lag", code: "lag_too_high", instance: 1, msg: "MASTER_DELAY=60",
			config: crYAML(t, sb, "lag.yaml", "gtid", "1s"),
			breakIt: func(t *testing.T) {
				sqlOn(t, sb, 1, "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=60", "START SLAVE")
				sqlOn(t, sb, 0, "CREATE TABLE IF NOT EXISTS qha_test.cr_lag (id INT AUTO_INCREMENT PRIMARY KEY)")
			},
			during: func(t *testing.T) { sqlOn(t, sb, 0, "INSERT INTO qha_test.cr_lag VALUES ()") },
			repair: func(t *testing.T) {
				sqlOn(t, sb, 1, "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=0", "START SLAVE")
			},
		},
		{
			// Last: an errant transaction is not undone, only reported.
			name: "errant GTID on a replica", code: "errant_gtids", instance: 2, msg: "0-3-",
			breakIt: func(t *testing.T) {
				sqlOn(t, sb, 2, "SET GLOBAL read_only=0", "CREATE TABLE qha_test.cr_errant (id INT)", "SET GLOBAL read_only=1")
			},
			repair: func(t *testing.T) {
				// Not undone: check the human report of it instead.
				out, err := exec.Command(bin.Path(t), "check-repl", "--config", cfg).CombinedOutput()
				want := "ERROR [errant_gtids] " + addr(2) + ": has transactions its master lacks"
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), want) {
					t.Fatalf("text report: %v, want exit 1 and %q\n%s", err, want, out)
				}
			},
			final: true,
		},
	}
	for _, st := range steps {
		ok := t.Run(st.name, func(t *testing.T) {
			c := cfg
			if st.config != "" {
				c = st.config
			}
			st.breakIt(t)
			res := waitCheckRepl(t, c, st.code, addr(st.instance), st.during)
			for _, p := range res.problems() {
				if p.Code == st.code && p.Instance == addr(st.instance) {
					t.Logf("%s %s [%s] %s", p.Severity, p.Instance, p.Code, p.Message)
					if p.Severity != "error" || !strings.Contains(p.Message, st.msg) {
						t.Errorf("want an error whose message contains %q", st.msg)
					}
				}
			}
			st.repair(t)
			if st.final {
				return
			}
			waitReplicating(t, sb)
			requireClean(t, cfg)
		})
		if !ok {
			t.Fatalf("%s: left the sandbox broken; later steps would not be meaningful", st.name)
		}
	}
}

func TestCheckRepl_FilePositionWarnsOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MariaDB servers")
	}
	parallel(t)
	bin.Path(t)
	sb := sandbox.New(t, sandbox.Options{Replicas: 1, GTID: false})
	cfg := crYAML(t, sb, "file.yaml", "file", "")
	exit, res, out := runCheckRepl(t, cfg)
	if exit != 0 || !res.OK {
		t.Fatalf("file/position sandbox: exit %d ok=%v, want 0 and true (warnings only)\n%s", exit, res.OK, out)
	}
	replica := sb.Instance(1).Addr()
	if !res.has("relay_log_purge", replica) {
		t.Fatalf("no relay_log_purge warning for %s:\n%s", replica, out)
	}
	if !res.has("slow_master_loss_detection", replica) || !strings.Contains(out, "MASTER_HEARTBEAT_PERIOD = 1") {
		t.Fatalf("no heartbeat period warning with the statement to run for %s:\n%s", replica, out)
	}
	for _, p := range res.problems() {
		if p.Severity != "warning" {
			t.Errorf("unexpected %s %s on %s: %s", p.Severity, p.Code, p.Instance, p.Message)
		}
	}
}
