package agent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/quorumha/quorumha/sandbox"
)

// The fencing account of the live tests holds exactly the privileges the
// README lists, so these tests prove they are enough on MariaDB 10.11.
const (
	liveFencer   = "qha_fencer"
	liveFencerPW = "fencer-pass"
	liveFenceSQL = "GRANT RELOAD, PROCESS, CONNECTION ADMIN, READ_ONLY ADMIN ON *.* TO " + liveFencer + "@localhost"
)

// liveFence is a sandbox with a fencing agent beside instance 0.
type liveFence struct {
	t     *testing.T
	sb    *sandbox.Sandbox
	admin *sql.DB // the sandbox's admin account (ALL PRIVILEGES) on instance 0
	state string  // the agent's state file
	// The running agent; stop ends it.
	client *Client
	stop   func()
}

func newLiveFence(t *testing.T, replicas int) *liveFence {
	t.Helper()
	return newLiveFenceWith(t, sandbox.Options{Replicas: replicas, GTID: true})
}

func newLiveFenceWith(t *testing.T, opts sandbox.Options) *liveFence {
	t.Helper()
	if testing.Short() {
		t.Skip("real MariaDB: not with -short")
	}
	sb := sandbox.New(t, opts)
	admin, err := sb.AdminDB(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	lf := &liveFence{t: t, sb: sb, admin: admin, state: filepath.Join(t.TempDir(), "fence.json")}
	lf.exec("CREATE USER " + liveFencer + "@localhost IDENTIFIED BY '" + liveFencerPW + "'")
	lf.exec(liveFenceSQL)
	lf.exec("CREATE TABLE qha_test.f (id INT PRIMARY KEY) ENGINE=InnoDB")
	return lf
}

func (lf *liveFence) exec(q string) {
	lf.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := lf.admin.ExecContext(ctx, q); err != nil {
		lf.t.Fatalf("%s: %v", q, err)
	}
}

// start runs an agent with fencing over instance 0's socket, as the
// fencing account.
func (lf *liveFence) start() {
	t := lf.t
	t.Helper()
	inst := lf.sb.Instance(0)
	s, err := New(Config{Listen: "127.0.0.1:0", BinlogDir: inst.DataDir, BinlogIndex: filepath.Join(inst.DataDir, sandbox.BinlogIndex),
		Token: testToken, PIDFile: filepath.Join(inst.DataDir, "mariadbd.pid"),
		Fence: &FenceConfig{Socket: inst.Socket, User: liveFencer, Password: liveFencerPW, StateFile: lf.state,
			CheckInterval: 100 * time.Millisecond}},
		slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	var once sync.Once
	lf.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("agent: %v", err)
			}
		})
	}
	t.Cleanup(lf.stop)
	lf.client = newTestClient(t, "http://"+ln.Addr().String())
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// renewer renews as the given controllers every 200ms with a 1.5s ttl (slack for a loaded machine)
// until stopped.
func (lf *liveFence) renewer(ids ...string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, id := range ids {
				_, _ = lf.client.Lease(ctx, LeaseRequest{Controller: id, Voters: 3, TTLMillis: 1500}) // the test reads the state separately
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// waitStatus polls GET /v1/fence until cond holds.
func (lf *liveFence) waitStatus(what string, cond func(FenceStatus) bool) FenceStatus {
	lf.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := lf.client.FenceStatus(ctx)
		cancel()
		if err == nil && cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			lf.t.Fatalf("%s: last status %+v, %v", what, st, err)
		}
		time.Sleep(100 * time.Millisecond) // polling the agent
	}
}

// readOnly samples @@global.read_only; ok is false when the sample failed
// (unknown, never read-only).
func (lf *liveFence) readOnly() (on, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var v int
	if err := lf.admin.QueryRowContext(ctx, "SELECT @@global.read_only").Scan(&v); err != nil {
		return false, false
	}
	return v == 1, true
}

// waitReadOnly polls until a sample answers read_only=want.
func (lf *liveFence) waitReadOnly(want bool) {
	lf.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if on, ok := lf.readOnly(); ok && on == want {
			return
		}
		if time.Now().After(deadline) {
			lf.t.Fatalf("read_only never sampled as %v", want)
		}
		time.Sleep(100 * time.Millisecond) // polling the server
	}
}

// adminWrite inserts id as the admin account (ALL PRIVILEGES, so READ
// ONLY ADMIN) on a new session whose lock waits last 2s. It returns the
// server's error, nil when the row was written.
func (lf *liveFence) adminWrite(id int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := lf.admin.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET SESSION lock_wait_timeout = 2"); err != nil {
		return fmt.Errorf("set lock_wait_timeout: %w", err)
	}
	_, err = conn.ExecContext(ctx, fmt.Sprintf("INSERT INTO qha_test.f VALUES (%d)", id))
	return err
}

// blockedByLock reports an error the server gives a writer the global read
// lock stopped: lock wait timeout (1205) or conflicting read lock (1223).
func blockedByLock(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1205 || me.Number == 1223)
}

// processExists reports whether thread id is in the processlist.
func (lf *liveFence) processExists(id uint64) bool {
	lf.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	if err := lf.admin.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?", id).Scan(&n); err != nil {
		lf.t.Fatal(err)
	}
	return n == 1
}

// dumpThreads lists the binlog dump threads of instance 0 (one per
// replica).
func (lf *liveFence) dumpThreads() []uint64 {
	lf.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := lf.admin.QueryContext(ctx, "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%' ORDER BY ID")
	if err != nil {
		lf.t.Fatal(err)
	}
	defer rows.Close()
	var ids []uint64
	for rows.Next() {
		var id uint64
		if err := rows.Scan(&id); err != nil {
			lf.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// TestFence_RealMariaDB: a fresh agent stays unarmed without renewals; two
// of three controllers arm it; without renewals it fences: read_only on,
// an admin session opened before killed, an ALL PRIVILEGES account cannot
// write, the replica's dump thread intact; renewals do not unfence; a
// mysqld restarted writable is fenced again; clear releases the lock.
func TestFence_RealMariaDB(t *testing.T) {
	t.Parallel()
	lf := newLiveFence(t, 1)
	lf.start()
	ctx := context.Background()

	// A fresh agent never fences: a few ttl (1.5s in this test) without
	// renewals leave it unarmed and the server writable.
	if err := lf.adminWrite(1); err != nil {
		t.Fatalf("write before any lease: %v", err)
	}
	until := time.Now().Add(4500 * time.Millisecond)
	for time.Now().Before(until) {
		st, err := lf.client.FenceStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.State != FenceUnarmed || st.Armed || st.Fenced {
			t.Fatalf("fresh agent without renewals: %+v", st)
		}
		if on, ok := lf.readOnly(); ok && on {
			t.Fatal("fresh agent without renewals: the server became read-only")
		}
		time.Sleep(200 * time.Millisecond) // an absence check over a bounded window
	}

	// A session of the admin account opened before the fence.
	victim, err := lf.admin.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	var victimID uint64
	if err := victim.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&victimID); err != nil {
		t.Fatal(err)
	}
	dumps := lf.dumpThreads()
	if len(dumps) != 1 {
		t.Fatalf("binlog dump threads before the fence: %v, want one (the replica's)", dumps)
	}

	stopRenew := lf.renewer("c1", "c2")
	st := lf.waitStatus("two of three renew", func(s FenceStatus) bool { return s.State == FenceHeld })
	if !st.Armed || st.Voters != 3 || len(st.Holders) != 2 {
		t.Fatalf("held: %+v", st)
	}
	if err := lf.adminWrite(2); err != nil {
		t.Fatalf("write while the lease holds: %v", err)
	}
	stopRenew()

	st = lf.waitStatus("the lapsed lease fences", func(s FenceStatus) bool { return s.State == FenceFenced })
	t.Logf("fenced: %+v", st)
	if len(st.Errors) != 0 || !strings.Contains(st.Reason, "lease lapsed") || st.ServerRunning == nil || !*st.ServerRunning {
		t.Fatalf("fence status: %+v", st)
	}
	if on, ok := lf.readOnly(); !ok || !on {
		t.Fatalf("read_only after the fence: on=%v sampled=%v", on, ok)
	}
	if lf.processExists(victimID) {
		t.Fatalf("the admin session %d opened before the fence was not killed", victimID)
	}
	if err := lf.adminWrite(3); !blockedByLock(err) {
		t.Fatalf("write as ALL PRIVILEGES while fenced: %v, want a lock wait error", err)
	}
	if got := lf.dumpThreads(); len(got) != 1 || got[0] != dumps[0] {
		t.Fatalf("binlog dump threads after the fence: %v, want %v (replication must survive)", got, dumps)
	}
	if rs := replicaIORunning(t, lf.sb); rs != "Yes" {
		t.Fatalf("replica IO thread after the fence: %q", rs)
	}

	// Renewals resume: still fenced.
	for _, id := range []string{"c1", "c2", "c3"} {
		r, err := lf.client.Lease(ctx, LeaseRequest{Controller: id, Voters: 3, TTLMillis: 1000})
		if err != nil || r.State != FenceFenced {
			t.Fatalf("renewal after the fence: %+v, %v", r, err)
		}
	}

	// mysqld restarts (mysqld_safe, systemd) writable: the agent sees it
	// stopped, then fences it again.
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := lf.sb.StopInstance(sctx, 0); err != nil {
		t.Fatal(err)
	}
	lf.waitStatus("the agent sees the server stopped", func(s FenceStatus) bool {
		return s.ServerRunning != nil && !*s.ServerRunning
	})
	if err := lf.sb.StartInstance(sctx, 0); err != nil {
		t.Fatal(err)
	}
	lf.waitReadOnly(true)
	st = lf.waitStatus("re-applied after the restart", func(s FenceStatus) bool {
		return s.State == FenceFenced && len(s.Errors) == 0 && s.ServerRunning != nil && *s.ServerRunning &&
			strings.Contains(strings.Join(s.Actions, "; "), "re-applying")
	})
	t.Logf("re-fenced: %+v", st)
	// The lock is back too (re-applied before the status said so).
	lf.waitStatus("global read lock after the restart", func(s FenceStatus) bool {
		return strings.Count(strings.Join(s.Actions, "; "), "global read lock held") >= 2
	})
	if err := lf.adminWrite(4); !blockedByLock(err) {
		t.Fatalf("write as ALL PRIVILEGES after the restart: %v, want a lock wait error", err)
	}

	// Clear: unarmed, lock released (read_only stays: the admin account
	// writes through it, as READ ONLY ADMIN).
	st, err = lf.client.ClearFence(ctx, FenceRequest{Controller: "c1", Reason: "promoting"})
	if err != nil || st.Armed || st.Fenced || st.State != FenceUnarmed {
		t.Fatalf("clear: %+v, %v", st, err)
	}
	if err := lf.adminWrite(5); err != nil {
		t.Fatalf("write after clear: %v (lock not released?)", err)
	}
	if on, ok := lf.readOnly(); !ok || !on {
		t.Fatalf("clear changed read_only: on=%v sampled=%v", on, ok)
	}
}

// replicaIORunning reads Slave_IO_Running on instance 1.
func replicaIORunning(t *testing.T, sb *sandbox.Sandbox) string {
	t.Helper()
	db, err := sb.AdminDB(1)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	if !rows.Next() {
		t.Fatal("instance 1 is not a replica")
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	for i, c := range cols {
		if c == "Slave_IO_Running" {
			return vals[i].String
		}
	}
	t.Fatal("no Slave_IO_Running column")
	return ""
}

// TestFence_RestartArmed_RealMariaDB: an agent restarted while armed
// counts its start as the last renewal and fences once that ttl passes
// without a majority renewing.
func TestFence_RestartArmed_RealMariaDB(t *testing.T) {
	t.Parallel()
	lf := newLiveFence(t, -1)
	lf.start()
	stopRenew := lf.renewer("c1", "c2")
	lf.waitStatus("armed", func(s FenceStatus) bool { return s.State == FenceHeld })
	stopRenew()
	lf.stop()
	if st, err := loadLeaseState(lf.state); err != nil || !st.Armed || st.Fenced {
		t.Fatalf("state file of the stopped agent: %+v, %v", st, err)
	}
	if on, ok := lf.readOnly(); !ok || on {
		t.Fatalf("read_only before the restart: on=%v sampled=%v, want a writable master", on, ok)
	}
	lf.start()
	st := lf.waitStatus("the restarted agent fences", func(s FenceStatus) bool { return s.State == FenceFenced })
	if !st.Armed || !strings.Contains(st.Reason, "lease lapsed") || len(st.Errors) != 0 {
		t.Fatalf("fence after restart: %+v", st)
	}
	if on, ok := lf.readOnly(); !ok || !on {
		t.Fatalf("read_only after the restarted agent fenced: on=%v sampled=%v", on, ok)
	}
	if err := lf.adminWrite(1); !blockedByLock(err) {
		t.Fatalf("write as ALL PRIVILEGES: %v, want a lock wait error", err)
	}
	// And a third start, while fenced, stays fenced.
	lf.stop()
	lf.start()
	st = lf.waitStatus("restarted fenced", func(s FenceStatus) bool { return s.State == FenceFenced && len(s.Errors) == 0 })
	if !strings.Contains(st.Reason, "lease lapsed") {
		t.Fatalf("restarted fenced: %+v", st)
	}
	if err := lf.adminWrite(2); !blockedByLock(err) {
		t.Fatalf("write as ALL PRIVILEGES after the fenced restart: %v, want a lock wait error", err)
	}
}
