package docker

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/quorumha/quorumha/tests/harness"
)

// The compose stack as the e2e test reaches it from the host: the host is
// on every compose bridge, so the fixed addresses on db answer directly.
var (
	e2eControllers = map[string]string{"c1": "172.30.0.11", "c2": "172.30.0.12", "c3": "172.30.0.13"}
	e2eServers     = map[string]string{"db1": "172.30.0.21", "db2": "172.30.0.22", "db3": "172.30.0.23"}
)

const (
	e2eCluster = "demo"
	e2eProject = "quorumha"
)

// TestComposeE2E builds the images (base image, MariaDB image and
// controller image cached between runs), starts docker/compose.yaml,
// kills the master's container with `docker kill` and checks, through the
// API and SQL, that a replica was promoted (one failover record, closed as
// success on every controller, with its fence step and fence proof
// reported) and that the other replica follows the new master, and that
// a write through the haproxy service's write port reaches db1 before the
// kill and the new master after it; then tears
// everything down. It starts dockerd itself, with scripts/docker-engine.sh's
// safe flags, when no engine answers, and stops only what it started. The
// host's iptables FORWARD policy must be the same before and after.
//
// Skipped with -short; without an engine or the tools it skips, under
// CI=true it fails. It takes the compose project "quorumha" and the
// subnets 172.30.0-3.0/24: a running demo is taken down first.
func TestComposeE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds images and runs the compose stack on a Docker engine")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	e := &e2eEnv{root: root}
	e.requireTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	fwdBefore := forwardPolicy()
	t.Logf("iptables FORWARD policy before: %s", fwdBefore)
	t.Cleanup(func() {
		if after := forwardPolicy(); after != fwdBefore {
			t.Errorf("iptables FORWARD policy changed from %s to %s: the engine must run with --iptables=false", fwdBefore, after)
		} else {
			t.Logf("iptables FORWARD policy after: %s", after)
		}
	})

	phase := time.Now()
	if e.run(ctx, "docker", "info") != nil {
		e.script(ctx, t, "docker-engine.sh", "start")
		t.Cleanup(func() { e.script(context.Background(), t, "docker-engine.sh", "stop") })
		t.Logf("engine started by the test (%s)", time.Since(phase).Round(time.Second))
	} else {
		t.Log("using the Docker engine that already runs (left running)")
	}

	phase = time.Now()
	e.script(ctx, t, "compose-demo.sh", "images")
	t.Logf("images built (%s)", time.Since(phase).Round(time.Second))

	if out, _ := e.output(ctx, "docker", "ps", "-aq", "--filter", "label=com.docker.compose.project="+e2eProject); len(bytes.TrimSpace(out)) > 0 {
		t.Logf("a compose project %q exists: taking it down first", e2eProject)
		e.down(ctx, t)
	}
	phase = time.Now()
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := e.output(context.Background(), filepath.Join(e.root, "scripts/compose-demo.sh"), "compose", "logs", "--no-color", "--tail", "60")
			t.Logf("compose logs (tail):\n%s", out)
		}
		start := time.Now()
		e.down(context.Background(), t)
		t.Logf("stack removed (%s)", time.Since(start).Round(time.Second))
	})
	e.script(ctx, t, "compose-demo.sh", "start")
	t.Logf("stack up and ready (%s)", time.Since(phase).Round(time.Second))
	e.loadSecrets(t)

	// Before the kill: every controller names db1 as the healthy master,
	// db1's agent holds an armed lease (so its death leaves a provable
	// lapse), and a row written on db1 reached both replicas.
	e.waitMaster(ctx, t, "db1:3306")
	e.waitLeaseArmed(ctx, t, "db1")
	db1 := e.db(t, "db1")
	mustExec(ctx, t, db1, "CREATE TABLE IF NOT EXISTS app.e2e (id INT PRIMARY KEY, note VARCHAR(64))")
	mustExec(ctx, t, db1, "INSERT INTO app.e2e VALUES (1, 'before the kill')")
	for _, r := range []string{"db2", "db3"} {
		e.waitRow(ctx, t, r, 1)
	}
	// The haproxy service's write port leads to db1.
	e.writeThroughHAProxy(ctx, t, 10, "db1")
	after := e.lastRecordID(ctx, t)

	phase = time.Now()
	id, err := e.output(ctx, filepath.Join(e.root, "scripts/compose-demo.sh"), "compose", "ps", "-q", "db1")
	if err != nil || len(bytes.TrimSpace(id)) == 0 {
		t.Fatalf("container of db1: %v: %s", err, id)
	}
	if out, err := e.output(ctx, "docker", "kill", string(bytes.TrimSpace(id))); err != nil {
		t.Fatalf("docker kill db1: %v: %s", err, out)
	}
	t.Log("killed db1's container (server and agent)")

	rec := e.waitFailoverClosed(ctx, t, after)
	t.Logf("failover record %d closed %s after the kill: %s", rec.ID, time.Since(phase).Round(time.Second), rec.summary())
	if rec.Result != "success" || rec.OldMaster != "db1:3306" || (rec.NewMaster != "db2:3306" && rec.NewMaster != "db3:3306") {
		t.Fatalf("want a successful failover db1:3306 → db2 or db3; got %s", rec.summary())
	}
	checkFence(t, rec)

	newMaster := strings.TrimSuffix(rec.NewMaster, ":3306")
	other := "db3"
	if newMaster == "db3" {
		other = "db2"
	}
	e.waitMaster(ctx, t, rec.NewMaster)

	// SQL: the new master is writable, the other replica replicates from
	// it and receives a row written there after the failover.
	nm := e.db(t, newMaster)
	var ro int
	if err := nm.QueryRowContext(ctx, "SELECT @@global.read_only").Scan(&ro); err != nil || ro != 0 {
		t.Fatalf("%s: read_only = %d (%v), want 0 on the new master", newMaster, ro, err)
	}
	mustExec(ctx, t, nm, "INSERT INTO app.e2e VALUES (2, 'after the failover')")
	e.waitFollows(ctx, t, other, newMaster)
	e.waitRow(ctx, t, other, 2)
	t.Logf("%s replicates from %s and has the row written there after the failover", other, newMaster)

	// The haproxy service's write port now leads to the new master, and
	// what is written through it replicates to the other replica.
	e.writeThroughHAProxy(ctx, t, 11, newMaster)
	e.waitRow(ctx, t, other, 11)
}

// ---- environment -------------------------------------------------------

type e2eEnv struct {
	root       string
	monitorPW  string
	agentToken string
}

// requireTools skips (fails under CI=true) when what the test needs is
// missing: the docker CLI, a compose tool, and an engine or the means to
// start one (dockerd, root).
func (e *e2eEnv) requireTools(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		skipOrFailInCI(t, "no docker CLI (make deps installs docker.io)")
	}
	if exec.Command("docker", "compose", "version").Run() != nil {
		if _, err := exec.LookPath("docker-compose"); err != nil {
			skipOrFailInCI(t, "neither docker compose nor docker-compose installed (make deps)")
		}
	}
	if exec.Command("docker", "info").Run() == nil {
		return
	}
	if _, err := exec.LookPath("dockerd"); err != nil {
		if _, err := os.Stat("/usr/sbin/dockerd"); err != nil {
			skipOrFailInCI(t, "no Docker engine answers and no dockerd to start (make deps installs docker.io)")
		}
	}
	if os.Geteuid() != 0 {
		skipOrFailInCI(t, "no Docker engine answers, and starting dockerd needs root")
	}
}

// run runs a command, discarding its output.
func (e *e2eEnv) run(ctx context.Context, name string, args ...string) error {
	_, err := e.output(ctx, name, args...)
	return err
}

// output runs a command from the repository root and returns its combined
// output.
func (e *e2eEnv) output(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = e.root
	cmd.Env = append(os.Environ(), "PATH="+os.Getenv("PATH")+":/usr/local/go/bin:/usr/sbin")
	return cmd.CombinedOutput()
}

// script runs scripts/NAME ARGS and fails the test when it fails.
func (e *e2eEnv) script(ctx context.Context, t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := e.output(ctx, filepath.Join(e.root, "scripts", name), args...)
	if err != nil {
		t.Fatalf("scripts/%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// down removes the stack: containers, networks and volumes.
func (e *e2eEnv) down(ctx context.Context, t *testing.T) {
	t.Helper()
	out, err := e.output(ctx, filepath.Join(e.root, "scripts/compose-demo.sh"), "compose", "down", "-v", "--remove-orphans", "-t", "20")
	if err != nil {
		t.Errorf("compose down: %v\n%s", err, out)
	}
}

// loadSecrets reads what gen-secrets.sh wrote: the monitor account's
// password and the agents' token.
func (e *e2eEnv) loadSecrets(t *testing.T) {
	t.Helper()
	read := func(rel string) string {
		b, err := os.ReadFile(filepath.Join(e.root, "docker/secrets", rel))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	e.monitorPW = read("controller/monitor.pass")
	e.agentToken = read("controller/agent.token")
}

// forwardPolicy is the policy of the host's iptables FORWARD chain, or a
// note when it cannot be read.
func forwardPolicy() string {
	out, err := exec.Command("iptables", "-S", "FORWARD").Output()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	for _, l := range strings.Split(string(out), "\n") {
		if p, ok := strings.CutPrefix(l, "-P FORWARD "); ok {
			return strings.TrimSpace(p)
		}
	}
	return "unknown"
}

// ---- API ---------------------------------------------------------------

func ctlURL(id, path string) string { return "http://" + e2eControllers[id] + ":8080" + path }

// getJSON GETs url (with a bearer token when token is set) into out.
func getJSON(ctx context.Context, url, token string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d: %s", url, resp.StatusCode, bytes.TrimSpace(b))
	}
	return json.Unmarshal(b, out)
}

// waitMaster polls until every controller names master as the cluster's
// healthy master.
func (e *e2eEnv) waitMaster(ctx context.Context, t *testing.T, master string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	err := harness.Poll(wctx, time.Second, func() error {
		for _, c := range slices.Sorted(maps.Keys(e2eControllers)) {
			var m struct {
				Master string `json:"master"`
				Source string `json:"source"`
			}
			if err := getJSON(wctx, ctlURL(c, "/v1/clusters/"+e2eCluster+"/master"), "", &m); err != nil {
				return fmt.Errorf("%s: %w", c, err)
			}
			if m.Master != master {
				return fmt.Errorf("%s names %s (%s), want %s", c, m.Master, m.Source, master)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("master %s: %v", master, err)
	}
}

// waitLeaseArmed polls the server's agent until it enforces an armed lease
// held by a majority: only then does its death leave a lease that can be
// shown to have lapsed.
func (e *e2eEnv) waitLeaseArmed(ctx context.Context, t *testing.T, server string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var last string
	err := harness.Poll(wctx, 500*time.Millisecond, func() error {
		var f struct {
			Enforced bool     `json:"enforced"`
			State    string   `json:"state"`
			Armed    bool     `json:"armed"`
			Holders  []string `json:"holders"`
		}
		if err := getJSON(wctx, "http://"+e2eServers[server]+":7080/v1/fence", e.agentToken, &f); err != nil {
			return err
		}
		last = fmt.Sprintf("enforced=%t state=%s armed=%t holders=%v", f.Enforced, f.State, f.Armed, f.Holders)
		if !f.Enforced || !f.Armed || f.State != "held" {
			return errors.New(last)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s's agent never held an armed lease (is agent.fence on?): %v", server, err)
	}
	t.Logf("%s's agent: %s", server, last)
}

// e2eStep and e2eRecord are fsm.Step and fsm.Record as the API shows them;
// Fence is kept raw, since which fence proof is recorded, and how, belongs
// to the recovery code.
type e2eStep struct {
	Name    string `json:"name"`
	Leader  string `json:"leader"`
	Outcome string `json:"outcome"`
	Detail  string `json:"detail"`
}

type e2eRecord struct {
	ID        uint64          `json:"id"`
	Kind      string          `json:"kind"`
	OldMaster string          `json:"old_master"`
	NewMaster string          `json:"new_master"`
	Result    string          `json:"result"`
	Detail    string          `json:"detail"`
	Steps     []e2eStep       `json:"steps"`
	Fence     json.RawMessage `json:"fence"`
}

func (r e2eRecord) summary() string {
	var steps []string
	for _, s := range r.Steps {
		steps = append(steps, fmt.Sprintf("%s(%s: %s)", s.Name, s.Outcome, s.Detail))
	}
	return fmt.Sprintf("record %d %s %s→%s result %q detail %q steps %v", r.ID, r.Kind, r.OldMaster, r.NewMaster, r.Result, r.Detail, steps)
}

func (r e2eRecord) step(name string) (e2eStep, bool) {
	for i := len(r.Steps) - 1; i >= 0; i-- {
		if r.Steps[i].Name == name {
			return r.Steps[i], true
		}
	}
	return e2eStep{}, false
}

func history(ctx context.Context, c string) ([]e2eRecord, error) {
	var h struct {
		Records []e2eRecord `json:"records"`
	}
	err := getJSON(ctx, ctlURL(c, "/v1/history?cluster="+e2eCluster), "", &h)
	return h.Records, err
}

// lastRecordID is the newest record id c1 knows.
func (e *e2eEnv) lastRecordID(ctx context.Context, t *testing.T) uint64 {
	t.Helper()
	recs, err := history(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	var id uint64
	for _, r := range recs {
		id = max(id, r.ID)
	}
	return id
}

// waitFailoverClosed polls until every controller holds exactly one
// failover record newer than after, closed, with the same id and result,
// and returns it.
func (e *e2eEnv) waitFailoverClosed(ctx context.Context, t *testing.T, after uint64) e2eRecord {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	var got e2eRecord
	err := harness.Poll(wctx, time.Second, func() error {
		got = e2eRecord{}
		for _, c := range slices.Sorted(maps.Keys(e2eControllers)) {
			recs, err := history(wctx, c)
			if err != nil {
				return fmt.Errorf("%s: %w", c, err)
			}
			var fresh []e2eRecord
			for _, r := range recs {
				if r.ID > after && r.Kind == "failover" {
					fresh = append(fresh, r)
				}
			}
			switch {
			case len(fresh) == 0:
				return fmt.Errorf("%s: no failover record after id %d", c, after)
			case len(fresh) > 1:
				t.Fatalf("%s holds %d failover records for one kill: %v, %v", c, len(fresh), fresh[0].summary(), fresh[1].summary())
			case fresh[0].Result == "":
				return fmt.Errorf("%s: %s still open", c, fresh[0].summary())
			case got.ID != 0 && (fresh[0].ID != got.ID || fresh[0].Result != got.Result):
				t.Fatalf("controllers disagree: %s / %s", fresh[0].summary(), got.summary())
			}
			got = fresh[0]
		}
		return nil
	})
	if err != nil {
		t.Fatalf("no closed failover record on every controller: %v", err)
	}
	return got
}

// checkFence reports how the old master's fence was established and fails
// when the record claims a fence it cannot have: db1's server and agent
// died with the container, so neither SQL nor the agent can have fenced
// it; the proof that holds is the lapsed quorum lease (or "agent" when the
// recovery code counts an unreachable host whose agent had armed the
// lease; a hook is not configured).
func checkFence(t *testing.T, rec e2eRecord) {
	t.Helper()
	st, ok := rec.step("fence")
	if !ok {
		t.Fatalf("record %d has no fence step: %s", rec.ID, rec.summary())
	}
	t.Logf("fence step (%s by %s): %s", st.Outcome, st.Leader, st.Detail)
	if st.Outcome != "ok" && st.Outcome != "warning" {
		t.Errorf("fence step outcome %q, want ok or warning", st.Outcome)
	}
	if len(rec.Fence) == 0 || string(rec.Fence) == "null" {
		// The controllers of this build record no fence proof in the
		// record (the fence step's detail is all there is).
		t.Logf("record %d carries no fence proof (no \"fence\" field in the API's record)", rec.ID)
		return
	}
	var f struct {
		State  string `json:"state"`
		Proof  string `json:"proof"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(rec.Fence, &f); err != nil {
		t.Fatalf("record %d: fence %s: %v", rec.ID, rec.Fence, err)
	}
	t.Logf("record %d fence: %s", rec.ID, rec.Fence)
	if f.Proof != "lease_expired" && f.Proof != "agent" {
		t.Errorf("record %d promoted with fence proof %q; for a killed container only lease_expired (or agent) can hold: %s", rec.ID, f.Proof, rec.Fence)
	}
}

// ---- SQL ---------------------------------------------------------------

// db opens the monitor account's connection to a server.
func (e *e2eEnv) db(t *testing.T, server string) *sql.DB {
	t.Helper()
	dsn := fmt.Sprintf("quorumha:%s@tcp(%s:3306)/?timeout=3s&readTimeout=5s&writeTimeout=5s", e.monitorPW, e2eServers[server])
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(2)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func mustExec(ctx context.Context, t *testing.T, db *sql.DB, q string) {
	t.Helper()
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(qctx, q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// e2eHAProxyWrite is the haproxy service's write listener.
const e2eHAProxyWrite = "172.30.0.30:5000"

// writeThroughHAProxy writes row id of app.e2e through the haproxy service
// on a fresh connection (HAProxy picks the server when it opens) and checks
// the server that took it is want (its @@hostname, the service name). A
// refused or cut connection is retried: until its checks name the master,
// HAProxy has no server for the write port.
func (e *e2eEnv) writeThroughHAProxy(ctx context.Context, t *testing.T, id int, want string) {
	t.Helper()
	dsn := fmt.Sprintf("quorumha:%s@tcp(%s)/?timeout=3s&readTimeout=5s&writeTimeout=5s", e.monitorPW, e2eHAProxyWrite)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var host string
	err = harness.Poll(wctx, 500*time.Millisecond, func() error {
		conn, err := db.Conn(wctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		if err := conn.QueryRowContext(wctx, "SELECT @@hostname").Scan(&host); err != nil {
			return err
		}
		if host != want {
			return fmt.Errorf("haproxy led to %s, want %s", host, want)
		}
		_, err = conn.ExecContext(wctx, "REPLACE INTO app.e2e VALUES (?, 'through haproxy')", id)
		return err
	})
	if err != nil {
		t.Fatalf("write %d through haproxy %s: %v", id, e2eHAProxyWrite, err)
	}
	t.Logf("write %d through haproxy %s landed on %s", id, e2eHAProxyWrite, host)
}

// waitRow polls until row id of app.e2e is on server.
func (e *e2eEnv) waitRow(ctx context.Context, t *testing.T, server string, id int) {
	t.Helper()
	db := e.db(t, server)
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err := harness.Poll(wctx, 500*time.Millisecond, func() error {
		var n int
		if err := db.QueryRowContext(wctx, "SELECT COUNT(*) FROM app.e2e WHERE id = ?", id).Scan(&n); err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("row %d not there yet", id)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: row %d never replicated: %v", server, id, err)
	}
}

// waitFollows polls until replica replicates from master with both
// threads running.
func (e *e2eEnv) waitFollows(ctx context.Context, t *testing.T, replica, master string) {
	t.Helper()
	db := e.db(t, replica)
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err := harness.Poll(wctx, time.Second, func() error {
		st, err := slaveStatus(wctx, db)
		if err != nil {
			return err
		}
		if st["Master_Host"] != master || st["Slave_IO_Running"] != "Yes" || st["Slave_SQL_Running"] != "Yes" {
			return fmt.Errorf("Master_Host=%s IO=%s SQL=%s Last_IO_Error=%q Last_SQL_Error=%q",
				st["Master_Host"], st["Slave_IO_Running"], st["Slave_SQL_Running"], st["Last_IO_Error"], st["Last_SQL_Error"])
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s does not follow %s: %v", replica, master, err)
	}
}

// slaveStatus returns SHOW SLAVE STATUS's single row by column name.
func slaveStatus(ctx context.Context, db *sql.DB) (map[string]string, error) {
	rows, err := db.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	if !rows.Next() {
		return nil, errors.New("not a replica (SHOW SLAVE STATUS is empty)")
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i, c := range cols {
		out[c] = vals[i].String
	}
	return out, rows.Err()
}
