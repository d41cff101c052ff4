package sandbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func openDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// writeRows creates a table as AppUser on instance 0 and inserts n rows.
func writeRows(t *testing.T, ctx context.Context, s *Sandbox, table string, n int) {
	t.Helper()
	db := openDB(t, s.DSN(0, AppUser, AppPassword))
	if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+TestDB+"."+table+" (id INT PRIMARY KEY, v VARCHAR(32))"); err != nil {
		t.Fatalf("create table: %v", err)
	}
	var start int
	if err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(id),0) FROM "+TestDB+"."+table).Scan(&start); err != nil {
		t.Fatalf("max id: %v", err)
	}
	for i := start + 1; i <= start+n; i++ {
		if _, err := db.ExecContext(ctx, "INSERT INTO "+TestDB+"."+table+" VALUES (?, ?)", i, fmt.Sprint("row", i)); err != nil {
			t.Fatalf("insert: %v", err)
		}
	}
}

// countRows returns the number of rows of table on instance i.
func countRows(t *testing.T, ctx context.Context, s *Sandbox, i int, table string) int {
	t.Helper()
	db := openDB(t, s.DSN(i, AdminUser, AdminPassword))
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+TestDB+"."+table).Scan(&n); err != nil {
		t.Fatalf("count on %s: %v", s.Instance(i).Name, err)
	}
	return n
}

func checkReplicated(t *testing.T, ctx context.Context, s *Sandbox, table string, want int) {
	t.Helper()
	if err := s.WaitReplicating(ctx); err != nil {
		t.Fatalf("WaitReplicating: %v", err)
	}
	for i := range s.Instances() {
		if got := countRows(t, ctx, s, i, table); got != want {
			t.Errorf("%s: %d rows, want %d", s.Instance(i).Name, got, want)
		}
	}
}

func TestAvailable(t *testing.T) {
	if err := Available(); err != nil {
		if !strings.Contains(err.Error(), "apt-get install mariadb-server") {
			t.Errorf("error does not say what to install: %v", err)
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v", err)
		}
		t.Skipf("%v", err)
	}
}

func TestStart_GTIDSemiSync(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts MariaDB servers")
	}
	begin := time.Now()
	s := New(t, Options{GTID: true, SemiSync: true})
	t.Logf("Start of 1+2 took %v", time.Since(begin))
	ctx := testCtx(t)

	insts := s.Instances()
	if len(insts) != 3 {
		t.Fatalf("%d instances, want 3", len(insts))
	}
	for i, inst := range insts {
		if inst.ServerID != i+1 || inst.Name != fmt.Sprintf("node%d", i) || inst.Addr() != fmt.Sprintf("127.0.0.1:%d", inst.Port) {
			t.Errorf("instance %d: %+v", i, inst)
		}
	}
	master := openDB(t, s.DSN(0, AdminUser, AdminPassword))
	var semi string
	if err := master.QueryRowContext(ctx, "SELECT @@rpl_semi_sync_master_enabled").Scan(&semi); err != nil || semi != "1" {
		t.Errorf("semi-sync master enabled = %q, %v", semi, err)
	}
	writeRows(t, ctx, s, "t1", 20)
	checkReplicated(t, ctx, s, "t1", 20)

	var clients string
	if err := master.QueryRowContext(ctx, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='RPL_SEMI_SYNC_MASTER_CLIENTS'").Scan(&clients); err != nil || clients != "2" {
		t.Errorf("semi-sync clients = %q, %v; want 2", clients, err)
	}
	// Replicas are read-only for the application.
	replica := openDB(t, s.DSN(1, AppUser, AppPassword))
	if _, err := replica.ExecContext(ctx, "INSERT INTO "+TestDB+".t1 VALUES (1000, 'x')"); err == nil {
		t.Errorf("insert on read-only replica succeeded")
	}
	// GTID sets are identical: no errant transactions from the setup.
	var gm, gr string
	if err := master.QueryRowContext(ctx, "SELECT @@gtid_binlog_pos").Scan(&gm); err != nil {
		t.Fatal(err)
	}
	if err := openDB(t, s.DSN(2, AdminUser, AdminPassword)).QueryRowContext(ctx, "SELECT @@gtid_binlog_pos").Scan(&gr); err != nil {
		t.Fatal(err)
	}
	if gm != gr || gm == "" {
		t.Errorf("gtid_binlog_pos master %q, replica %q", gm, gr)
	}
}

func TestStart_FilePos(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts MariaDB servers")
	}
	s := New(t, Options{Replicas: 1})
	ctx := testCtx(t)
	st, err := s.ReplicaStatus(ctx, 1)
	if err != nil || st == nil {
		t.Fatalf("ReplicaStatus: %v, %v", st, err)
	}
	if st.GTIDIOPos != "" || st.MasterPort != s.Instance(0).Port {
		t.Errorf("replica status %+v: want file/pos from node0", st)
	}
	writeRows(t, ctx, s, "t2", 10)
	checkReplicated(t, ctx, s, "t2", 10)
}

func TestKill_StartInstance_ResumesReplicating(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts MariaDB servers")
	}
	for _, gtid := range []bool{true, false} {
		t.Run(fmt.Sprintf("gtid=%v", gtid), func(t *testing.T) { testKillStart(t, gtid) })
	}
}

func testKillStart(t *testing.T, gtid bool) {
	s := New(t, Options{GTID: gtid, Replicas: 1})
	ctx := testCtx(t)
	writeRows(t, ctx, s, "t3", 5)
	if err := s.WaitReplicating(ctx); err != nil {
		t.Fatal(err)
	}
	oldPID := s.Instance(1).PID
	if err := s.Kill(1); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if s.Alive(1) {
		t.Fatalf("node1 alive after Kill")
	}
	writeRows(t, ctx, s, "t3", 5) // written while the replica is down
	if err := s.StartInstance(ctx, 1); err != nil {
		t.Fatalf("StartInstance: %v", err)
	}
	if s.Instance(1).PID == oldPID {
		t.Errorf("PID unchanged after restart")
	}
	checkReplicated(t, ctx, s, "t3", 10)

	// A clean stop and start of the master keeps replication going too.
	if err := s.StopInstance(ctx, 0); err != nil {
		t.Fatalf("StopInstance: %v", err)
	}
	if err := s.StartInstance(ctx, 0); err != nil {
		t.Fatalf("StartInstance master: %v", err)
	}
	writeRows(t, ctx, s, "t3", 5)
	checkReplicated(t, ctx, s, "t3", 15)
}

func TestTwoSandboxesAtOnce(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts MariaDB servers")
	}
	var wg sync.WaitGroup
	boxes := make([]*Sandbox, 2)
	errs := make([]error, 2)
	ctx := testCtx(t)
	for i := range boxes {
		wg.Go(func() { boxes[i], errs[i] = Start(ctx, Options{GTID: true, Replicas: 1, BaseDir: t.TempDir()}) })
	}
	wg.Wait()
	for i, s := range boxes {
		if errs[i] != nil {
			t.Fatalf("sandbox %d: %v", i, errs[i])
		}
		t.Cleanup(func() {
			if err := s.Stop(); err != nil {
				t.Errorf("stop: %v", err)
			}
		})
	}
	if boxes[0].Instance(0).Port == boxes[1].Instance(0).Port {
		t.Fatalf("same port for both sandboxes")
	}
	for _, s := range boxes {
		writeRows(t, ctx, s, "t4", 3)
		checkReplicated(t, ctx, s, "t4", 3)
	}
}

func TestLoad_Detached(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts MariaDB servers")
	}
	ctx := testCtx(t)
	dir := t.TempDir() + "/sb"
	s, err := Start(ctx, Options{Replicas: -1, Detach: true, BaseDir: dir})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	l, err := Load(dir)
	if err != nil {
		_ = s.Stop()
		t.Fatalf("Load: %v", err)
	}
	if got, want := l.Instances(), s.Instances(); len(got) != 1 || got[0] != want[0] {
		t.Errorf("loaded %+v, want %+v", got, want)
	}
	if !l.Alive(0) {
		t.Errorf("loaded instance not alive")
	}
	db := openDB(t, l.DSN(0, AdminUser, AdminPassword))
	if err := db.PingContext(ctx); err != nil {
		t.Errorf("ping loaded: %v", err)
	}
	if err := l.Stop(); err != nil {
		t.Fatalf("Stop loaded: %v", err)
	}
	if s.Alive(0) {
		t.Errorf("server alive after Stop of the loaded sandbox")
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dir %s not removed: %v", dir, err)
	}
}
