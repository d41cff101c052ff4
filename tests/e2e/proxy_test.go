package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/quorumha/quorumha/sandbox"
	"github.com/quorumha/quorumha/tests/harness"
)

// proxyTable is where proxyWriter inserts: each row names the server that
// wrote it (@@server_id evaluated on that server).
const proxyTable = "qha_test.proxy_load"

// proxyAck is one acknowledged write through the proxy: its id, the server
// that answered (in the same transaction), when it was sent and when the
// COMMIT's OK arrived.
type proxyAck struct {
	ID       int64
	ServerID int
	Sent, At time.Time
}

// proxyWriter writes through one fixed DSN (the proxy's write port), as an
// application behind HAProxy does: it never asks the controllers anything.
type proxyWriter struct {
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	mu      sync.Mutex
	acks    []proxyAck
	failed  int
	lastErr string
}

func startProxyWriter(t *testing.T, dsn string, interval time.Duration) *proxyWriter {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &proxyWriter{cancel: cancel, done: make(chan struct{})}
	go w.run(ctx, dsn, interval) // owned by w: stop (or the cleanup) waits for it
	t.Cleanup(func() { w.stop() })
	return w
}

func (w *proxyWriter) stop() {
	w.once.Do(func() {
		w.cancel()
		<-w.done
	})
}

func (w *proxyWriter) snapshot() ([]proxyAck, int, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.acks), w.failed, w.lastErr
}

func (w *proxyWriter) run(ctx context.Context, dsn string, interval time.Duration) {
	defer close(w.done)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		w.mu.Lock()
		w.failed, w.lastErr = w.failed+1, err.Error()
		w.mu.Unlock()
		return
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	next := time.Now().UnixMicro()
	ready := false // the table exists on the server behind the proxy
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		next++
		sent := time.Now()
		sid, err := w.insert(ctx, db, &ready, next)
		if err != nil && ctx.Err() != nil {
			return // cancelled by stop: neither acknowledged nor failed
		}
		w.mu.Lock()
		if err == nil {
			w.acks = append(w.acks, proxyAck{ID: next, ServerID: sid, Sent: sent, At: time.Now()})
		} else {
			w.failed, w.lastErr = w.failed+1, err.Error()
		}
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// insert writes one row and reads @@server_id in one transaction: the
// COMMIT's OK acknowledges both, so the ack names the server that holds
// the row.
func (w *proxyWriter) insert(ctx context.Context, db *sql.DB, ready *bool, id int64) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if !*ready {
		if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+proxyTable+
			" (id BIGINT PRIMARY KEY, sid INT NOT NULL, at DATETIME(6) NOT NULL)"); err != nil {
			return 0, fmt.Errorf("create table: %w", err)
		}
		*ready = true
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, "INSERT INTO "+proxyTable+" (id, sid, at) VALUES (?, @@server_id, NOW(6))", id); err != nil {
		return 0, err
	}
	var sid int
	if err := tx.QueryRowContext(ctx, "SELECT @@server_id").Scan(&sid); err != nil {
		return 0, err
	}
	return sid, tx.Commit()
}

// proxyDSN is the application account's DSN through a proxy port.
func proxyDSN(addr string) string {
	c := mysql.NewConfig()
	c.User, c.Passwd = sandbox.AppUser, sandbox.AppPassword
	c.Net, c.Addr = "tcp", addr
	c.Timeout, c.ReadTimeout, c.WriteTimeout = 2*time.Second, 5*time.Second, 5*time.Second
	c.InterpolateParams = true
	return c.FormatDSN()
}

// serverIDVia answers SELECT @@server_id over a fresh connection to addr.
func serverIDVia(ctx context.Context, addr string) (int, error) {
	db, err := sql.Open("mysql", proxyDSN(addr))
	if err != nil {
		return 0, err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var sid int
	err = db.QueryRowContext(ctx, "SELECT @@server_id").Scan(&sid)
	return sid, err
}

// haproxyEnv is an HAProxy started by the test from the config
// `quorumha proxy-config haproxy` generates for the sandbox cluster.
type haproxyEnv struct {
	write, read, check string
	logPath            string
}

func haproxyBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"haproxy", "/usr/sbin/haproxy"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("haproxy is not installed (make deps)")
	}
	t.Skip("haproxy is not installed (make deps)")
	return ""
}

func startHAProxy(ctx context.Context, t *testing.T, e *foEnv) *haproxyEnv {
	t.Helper()
	hp := haproxyBinary(t)
	ports := harness.FreePorts(t, 3)
	h := &haproxyEnv{
		write: "127.0.0.1:" + strconv.Itoa(ports[0]),
		read:  "127.0.0.1:" + strconv.Itoa(ports[1]),
		check: "127.0.0.1:" + strconv.Itoa(ports[2]),
	}
	var ctls []string
	for _, c := range e.g.Nodes {
		ctls = append(ctls, c.HTTPAddr)
	}
	cmd := exec.CommandContext(ctx, bin.Path(t), "proxy-config", "haproxy", "--config", e.g.Nodes[0].ConfigPath,
		"--cluster", detCluster, "--listen", h.write, "--read-listen", h.read, "--check-listen", h.check,
		"--controllers", strings.Join(ctls, ","))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cfg, err := cmd.Output()
	if err != nil {
		t.Fatalf("proxy-config haproxy: %v\n%s", err, stderr.String())
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	h.logPath = filepath.Join(dir, "haproxy.log")
	logf, err := os.Create(h.logPath)
	if err != nil {
		t.Fatal(err)
	}
	// -db: stay in the foreground, so the test owns the process.
	proc := exec.Command(hp, "-db", "-f", cfgPath)
	proc.Stdout, proc.Stderr = logf, logf
	if err := proc.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = proc.Wait(); logf.Close(); close(exited) }() // owned by the cleanup below
	t.Cleanup(func() {
		_ = proc.Process.Kill()
		<-exited
		if t.Failed() {
			if b, err := os.ReadFile(h.logPath); err == nil {
				t.Logf("haproxy log (tail):\n%s", tailString(string(b), 60))
			}
			t.Logf("haproxy.cfg:\n%s", cfg)
		}
	})
	err = harness.Poll(ctx, 100*time.Millisecond, func() error {
		select {
		case <-exited:
			t.Fatalf("haproxy exited; see its log %s", h.logPath)
		default:
		}
		c, err := net.DialTimeout("tcp", h.write, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	if err != nil {
		t.Fatalf("haproxy write port %s: %v", h.write, err)
	}
	return h
}

func tailString(s string, lines int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// waitServerVia polls until addr (a proxy port) answers with one of the
// wanted server ids.
func waitServerVia(ctx context.Context, t *testing.T, addr string, want ...int) int {
	t.Helper()
	var got int
	err := harness.Poll(ctx, 100*time.Millisecond, func() error {
		sid, err := serverIDVia(ctx, addr)
		if err != nil {
			return err
		}
		if !slices.Contains(want, sid) {
			return fmt.Errorf("%s answered server_id %d, want one of %v", addr, sid, want)
		}
		got = sid
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// waitAckBy polls until the writer has an acknowledged write by server sid.
func waitAckBy(ctx context.Context, t *testing.T, w *proxyWriter, sid int) {
	t.Helper()
	err := harness.Poll(ctx, 50*time.Millisecond, func() error {
		acks, failed, last := w.snapshot()
		n := 0
		for _, a := range acks {
			if a.ServerID == sid {
				n++
			}
		}
		if n < 5 {
			return fmt.Errorf("%d writes acknowledged by server_id %d (%d in all, %d failed, last error: %s)", n, sid, len(acks), failed, last)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// writeGap is the time between the last acknowledged write by from and the
// first by to: how long applications behind the proxy could not write.
func writeGap(acks []proxyAck, from, to int) time.Duration {
	var lastFrom, firstTo time.Time
	for _, a := range acks {
		if a.ServerID == from {
			lastFrom = a.At
		}
		if a.ServerID == to && firstTo.IsZero() {
			firstTo = a.At
		}
	}
	if lastFrom.IsZero() || firstTo.IsZero() {
		return -1
	}
	return firstTo.Sub(lastFrom)
}

// requireOneServerAtATime checks the acknowledged writes, in order, came
// from one server at a time: each server's acks form one contiguous run in
// the order of the masters, never back and forth (which would mean two
// servers took writes through the proxy in the same period).
func requireOneServerAtATime(t *testing.T, acks []proxyAck, order ...int) {
	t.Helper()
	var runs []int
	for _, a := range acks {
		if len(runs) == 0 || runs[len(runs)-1] != a.ServerID {
			runs = append(runs, a.ServerID)
		}
	}
	if !slices.Equal(runs, order) {
		t.Fatalf("acknowledged writes came from servers in runs %v, want exactly %v", runs, order)
	}
}

// proxyRun is one sandbox behind HAProxy with a writer through its write
// port.
type proxyRun struct {
	e *foEnv
	h *haproxyEnv
	w *proxyWriter
}

func (r *proxyRun) sid(i int) int { return r.e.sb.Instance(i).ServerID }

// startProxyRun starts the sandbox, the controllers, HAProxy and the
// writer, and waits until writes through HAProxy reach the master and
// reads a replica.
func startProxyRun(ctx context.Context, t *testing.T) *proxyRun {
	t.Helper()
	e := startFailoverEnv(ctx, t, foOptions{})
	r := &proxyRun{e: e, h: startHAProxy(ctx, t, e)}
	waitServerVia(ctx, t, r.h.write, r.sid(0))
	waitServerVia(ctx, t, r.h.read, r.sid(1), r.sid(2))
	r.w = startProxyWriter(t, proxyDSN(r.h.write), 20*time.Millisecond)
	waitAckBy(ctx, t, r.w, r.sid(0))
	return r
}

// failover kills the master (instance 0) with SIGKILL and waits for the
// writes through HAProxy to reach the new master; it returns the new
// master and the write gap seen through the proxy.
func (r *proxyRun) failover(ctx context.Context, t *testing.T) (int, time.Duration) {
	t.Helper()
	killed := time.Now()
	rec := r.e.killMasterAndWaitFailover(ctx, t, 0)
	requireSuccessRecord(t, rec, r.e.addr(0), "", "automatic")
	nm := r.e.index(rec.NewMaster)
	if nm != 1 && nm != 2 {
		t.Fatalf("new master %s is not a replica", rec.NewMaster)
	}
	waitAckBy(ctx, t, r.w, r.sid(nm))
	acks, _, _ := r.w.snapshot()
	gap := writeGap(acks, r.sid(0), r.sid(nm))
	var killToAck time.Duration
	for _, a := range acks {
		if a.ServerID == r.sid(nm) {
			killToAck = a.At.Sub(killed)
			break
		}
	}
	t.Logf("failover: writes through HAProxy resumed on %s; write gap %s (kill -9 to the first ack on the new master %s)",
		r.e.addr(nm), gap.Round(time.Millisecond), killToAck.Round(time.Millisecond))
	return nm, gap
}

// switchover switches from master nm to the other replica through a
// follower and waits for the writes through HAProxy to reach it; it
// returns the new master and the write gap.
func (r *proxyRun) switchover(ctx context.Context, t *testing.T, nm int) (int, time.Duration) {
	t.Helper()
	other := otherReplica(nm)
	r.e.waitReplicatesFrom(ctx, t, other, nm)
	_, follower := r.e.leaderAndFollower(ctx, t)
	before := r.e.lastRecordID(ctx, t)
	if out, code := cli(ctx, t, "switchover", "--cluster", detCluster, "--to", r.e.addr(other), "--addr", follower.HTTPAddr); code != 0 {
		t.Fatalf("switchover to %s: exit %d: %s", r.e.addr(other), code, out)
	}
	sw := r.e.waitSwitchoverClosed(ctx, t, before)
	if sw.Result != "success" {
		t.Fatalf("switchover: %s", sw.summary())
	}
	waitAckBy(ctx, t, r.w, r.sid(other))
	acks, _, _ := r.w.snapshot()
	gap := writeGap(acks, r.sid(nm), r.sid(other))
	t.Logf("switchover: writes through HAProxy resumed on %s; write gap %s (the switchover record was open %s)",
		r.e.addr(other), gap.Round(time.Millisecond), sw.Closed.Sub(sw.Opened).Round(time.Millisecond))
	return other, gap
}

// lostOn stops the writer and returns the acknowledged writes instance i
// lacks, and those whose row names another server than the ack did.
func (r *proxyRun) lostOn(ctx context.Context, t *testing.T, i int) (lost, wrong []string) {
	t.Helper()
	r.w.stop()
	acks, _, _ := r.w.snapshot()
	if err := r.e.sb.WaitReplicating(ctx); err != nil {
		t.Fatal(err)
	}
	db, err := r.e.sb.AdminDB(i)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows := map[int64]int{}
	q, err := db.QueryContext(ctx, "SELECT id, sid FROM "+proxyTable)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for q.Next() {
		var id int64
		var s int
		if err := q.Scan(&id, &s); err != nil {
			t.Fatal(err)
		}
		rows[id] = s
	}
	if err := q.Err(); err != nil {
		t.Fatal(err)
	}
	for _, a := range acks {
		s, ok := rows[a.ID]
		switch {
		case !ok:
			lost = append(lost, strconv.FormatInt(a.ID, 10))
		case s != a.ServerID:
			wrong = append(wrong, fmt.Sprintf("%d (row says %d, ack %d)", a.ID, s, a.ServerID))
		}
	}
	return lost, wrong
}

// TestProxy_HAProxyFollowsTheMaster is issue 18: an application writing
// through a real HAProxy configured by `quorumha proxy-config haproxy`
// follows the master through a kill -9 failover and a switchover, loses no
// acknowledged write and never has writes acknowledged by two servers in
// the same period; the read port serves a replica; killing the raft leader
// does not interrupt the writes.
func TestProxy_HAProxyFollowsTheMaster(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*foTimeout)
	defer cancel()
	r := startProxyRun(ctx, t)
	e, w := r.e, r.w
	nm, _ := r.failover(ctx, t)
	other, _ := r.switchover(ctx, t, nm)
	// Reads follow too: the old master, now a replica of the new one, is
	// the only replica left (instance 0 is dead).
	waitServerVia(ctx, t, r.h.read, r.sid(nm))

	// One controller down does not mark the master down: HAProxy's checks
	// go round the controllers and retry another on a refused connection.
	// Writes go on without a single failure while the raft leader is
	// killed (the followers elect another within
	// api.leader_contact_window, answering all along) and for the next two
	// seconds of checks.
	gone, _ := e.leaderAndFollower(ctx, t)
	acks, failedBefore, _ := w.snapshot()
	e.g.Kill(gone)
	killedCtl, n0 := time.Now(), len(acks)
	li, err := e.g.WaitLeader(ctx, e.g.Running())
	if err != nil {
		t.Fatal(err)
	}
	elected := time.Now()
	t.Logf("leader %s killed; %s elected %s later", gone.ID, li.ID, elected.Sub(killedCtl).Round(time.Millisecond))
	err = harness.Poll(ctx, 100*time.Millisecond, func() error {
		acks, failed, last := w.snapshot()
		if failed != failedBefore {
			t.Fatalf("with controller %s down, %d writes through HAProxy failed (last: %s)", gone.ID, failed-failedBefore, last)
		}
		if since := time.Since(elected); since < 2*time.Second || len(acks) < n0+20 {
			return fmt.Errorf("%d acks since controller %s was killed, %s since the election", len(acks)-n0, gone.ID, since.Round(time.Millisecond))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Nothing acknowledged is lost, and each row was written where the
	// ack said: the final master and the old one (now its replica) hold
	// every acknowledged row with the server id its ack named.
	for _, i := range []int{other, nm} {
		if lost, wrong := r.lostOn(ctx, t, i); len(lost) > 0 || len(wrong) > 0 {
			t.Fatalf("%s: %d acknowledged writes lost %v; %d written elsewhere than acknowledged %v", e.addr(i), len(lost), lost, len(wrong), wrong)
		}
	}
	acks, failed, lastErr := w.snapshot()
	t.Logf("writer: %d acknowledged, %d failed (last error: %s)", len(acks), failed, lastErr)
	// Never two servers at once: master 0, then nm, then other.
	requireOneServerAtATime(t, acks, r.sid(0), r.sid(nm), r.sid(other))
}
