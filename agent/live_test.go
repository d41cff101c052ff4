package agent

import (
	"bytes"
	"context"
	"database/sql"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
)

// liveBinlogs is what TestScanBinlog_RealMariaDB's workload left behind.
type liveBinlogs struct {
	// datadir is the running server's own data directory.
	datadir string
	dir     string   // copy of the binlog files (the server keeps writing its own)
	files   []string // in index order
	// events are SHOW BINLOG EVENTS per file.
	events map[string][]binlogEventRow
	// gtidBinlogPos is @@gtid_binlog_pos after the workload.
	gtidBinlogPos string
	// written are the GTIDs of the transactions the test committed, in order.
	written []string
}

// binlogEventRow is one row of SHOW BINLOG EVENTS.
type binlogEventRow struct {
	pos, end int64
	typ      string
	info     string
}

// runLiveWorkload starts one MariaDB server (GTID, ROW format), writes
// DDL, single- and multi-statement transactions, a non-transactional
// (Aria) insert and a transaction in a second GTID domain, rotating the
// binlog twice, and copies the binlogs away.
func runLiveWorkload(t *testing.T) liveBinlogs {
	t.Helper()
	sb := sandbox.New(t, sandbox.Options{Replicas: -1, GTID: true})
	db, err := sb.AdminDB(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := db.Conn(ctx) // one session: SET gtid_domain_id must stick
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var live liveBinlogs
	exec := func(qs ...string) {
		t.Helper()
		for _, q := range qs {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	// commit runs one transaction's statements and records its GTID.
	commit := func(qs ...string) {
		t.Helper()
		exec(qs...)
		var g string
		if err := conn.QueryRowContext(ctx, "SELECT @@last_gtid").Scan(&g); err != nil {
			t.Fatal(err)
		}
		live.written = append(live.written, g)
	}
	commit("CREATE TABLE qha_test.t (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB")
	commit("INSERT INTO qha_test.t VALUES (1, 'one')")
	commit("BEGIN", "INSERT INTO qha_test.t VALUES (2, 'two')", "INSERT INTO qha_test.t VALUES (3, 'three')", "COMMIT")
	commit("CREATE TABLE qha_test.a (id INT) ENGINE=Aria")
	commit("INSERT INTO qha_test.a VALUES (1)")
	commit("ALTER TABLE qha_test.t ADD COLUMN w INT")
	exec("FLUSH BINARY LOGS")
	commit("INSERT INTO qha_test.t VALUES (4, 'four', 4)")
	exec("SET SESSION gtid_domain_id = 1")
	commit("INSERT INTO qha_test.t VALUES (5, 'five', 5)")
	exec("SET SESSION gtid_domain_id = 0", "FLUSH BINARY LOGS")
	commit("UPDATE qha_test.t SET v = 'uno' WHERE id = 1")
	commit("INSERT INTO qha_test.t VALUES (6, 'six', 6)")
	if err := conn.QueryRowContext(ctx, "SELECT @@gtid_binlog_pos").Scan(&live.gtidBinlogPos); err != nil {
		t.Fatal(err)
	}

	src := sb.Instance(0).DataDir
	live.datadir = src
	live.dir = t.TempDir()
	index, err := os.ReadFile(filepath.Join(src, "mysql-bin.index"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(live.dir, "mysql-bin.index"), index, 0o644); err != nil {
		t.Fatal(err)
	}
	live.events = map[string][]binlogEventRow{}
	for _, line := range strings.Fields(string(index)) {
		name := filepath.Base(line)
		live.files = append(live.files, name)
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(live.dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		live.events[name] = showBinlogEvents(ctx, t, conn, name)
	}
	return live
}

func showBinlogEvents(ctx context.Context, t *testing.T, conn *sql.Conn, name string) []binlogEventRow {
	t.Helper()
	rows, err := conn.QueryContext(ctx, "SHOW BINLOG EVENTS IN '"+name+"'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []binlogEventRow
	for rows.Next() {
		var logName, serverID string
		var r binlogEventRow
		if err := rows.Scan(&logName, &r.pos, &r.typ, &serverID, &r.end, &r.info); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// expectedTrx derives the transactions from SHOW BINLOG EVENTS, the
// server's own reading of the file: a Gtid event opens one ("BEGIN GTID
// d-s-n", or "GTID d-s-n" for a standalone DDL that is the next event), an
// Xid or a COMMIT query ends it.
func expectedTrx(name string, events []binlogEventRow) []Trx {
	var out []Trx
	var cur *Trx
	standalone := false
	for _, e := range events {
		if cur != nil {
			cur.Events++
			if standalone || e.typ == "Xid" || (e.typ == "Query" && strings.EqualFold(strings.TrimSpace(e.info), "COMMIT")) {
				cur.End = e.end
				out = append(out, *cur)
				cur = nil
			}
			continue
		}
		if e.typ == "Gtid" {
			f := strings.Fields(e.info)
			standalone = f[0] != "BEGIN"
			cur = &Trx{GTID: f[len(f)-1], File: name, Start: e.pos, Events: 1}
		}
	}
	return out
}

// TestScanBinlog_RealMariaDB parses binlogs written by a real mariadbd and
// checks them against the server: the GTIDs against @@gtid_binlog_pos and
// what the test committed, and every Start/End against SHOW BINLOG EVENTS.
// Then it damages copies of the last file, and feeds mariadb-binlog a file
// spliced from the header and chosen transactions, as the controller does.
func TestScanBinlog_RealMariaDB(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts MariaDB servers")
	}
	live := runLiveWorkload(t)
	if len(live.files) != 3 {
		t.Fatalf("binlog files %v, want 3 (two FLUSH BINARY LOGS)", live.files)
	}
	scans := map[string]FileScan{}
	var gtids []string
	lastPerDomain := map[string]string{}
	for _, name := range live.files {
		res := scanFileT(t, filepath.Join(live.dir, name), 0)
		scans[name] = res
		if want := expectedTrx(name, live.events[name]); !reflect.DeepEqual(res.Transactions, want) {
			t.Errorf("%s transactions:\n got %+v\nwant %+v (SHOW BINLOG EVENTS)", name, res.Transactions, want)
		}
		if fde := live.events[name][0]; fde.typ != "Format_desc" || res.HeaderEnd != fde.end {
			t.Errorf("%s: header_end %d, want the Format_desc End_log_pos %d", name, res.HeaderEnd, fde.end)
		}
		if res.IncompleteBytes != 0 {
			t.Errorf("%s: incomplete_bytes %d in a clean file", name, res.IncompleteBytes)
		}
		for _, trx := range res.Transactions {
			gtids = append(gtids, trx.GTID)
			lastPerDomain[strings.SplitN(trx.GTID, "-", 2)[0]] = trx.GTID
		}
	}
	if !reflect.DeepEqual(gtids, live.written) {
		t.Errorf("GTIDs in the binlogs %v, want what the test committed %v", gtids, live.written)
	}
	var last []string
	for _, g := range lastPerDomain {
		last = append(last, g)
	}
	sort.Strings(last)
	if got := strings.Join(last, ","); got != live.gtidBinlogPos {
		t.Errorf("last GTID per domain %s, want @@gtid_binlog_pos %s", got, live.gtidBinlogPos)
	}
	if got := sortedList(scans[live.files[2]].GTIDList); got != live.gtidListAt(t, 2) {
		t.Errorf("%s gtid_list %q, want %q", live.files[2], got, live.gtidListAt(t, 2))
	}
	if got := scans[live.files[0]].GTIDList; got != "" {
		t.Errorf("first file gtid_list %q, want empty", got)
	}

	// From the second transaction of the first file on.
	first := scans[live.files[0]]
	res := scanFileT(t, filepath.Join(live.dir, live.files[0]), first.Transactions[1].Start)
	if !reflect.DeepEqual(res.Transactions, first.Transactions[1:]) {
		t.Errorf("scan from %d: %+v", first.Transactions[1].Start, res.Transactions)
	}

	lastName := live.files[2]
	lastScan := scans[lastName]
	t.Run("damaged copies", func(t *testing.T) {
		testDamagedCopies(t, filepath.Join(live.dir, lastName), lastScan)
	})
	t.Run("mariadb-binlog reads a spliced file", func(t *testing.T) {
		testSplicedFile(t, filepath.Join(live.dir, live.files[0]), first)
	})
	t.Run("agent serves the running server's datadir", func(t *testing.T) {
		testLiveServer(t, live, scans)
	})
}

// testLiveServer serves the running server's own datadir (the newest file
// still open, the real pid file) and reads it through the client.
func testLiveServer(t *testing.T, live liveBinlogs, scans map[string]FileScan) {
	s, err := New(Config{BinlogDir: live.datadir, BinlogIndex: filepath.Join(live.datadir, "mysql-bin.index"),
		Token: testToken, PIDFile: filepath.Join(live.datadir, "mariadbd.pid")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	c := newTestClient(t, ts.URL)
	ctx := context.Background()
	files, err := c.Files(ctx)
	if err != nil || len(files) != len(live.files) {
		t.Fatalf("files %+v, %v; want %v", files, err, live.files)
	}
	tail, err := c.Tail(ctx)
	if err != nil {
		t.Fatal(err)
	}
	newest := scans[live.files[2]]
	if tail.File != live.files[2] || tail.GTID != live.written[len(live.written)-1] || tail.Pos != newest.CompleteEnd ||
		tail.IncompleteBytes != 0 || tail.ServerRunning == nil || !*tail.ServerRunning {
		t.Errorf("tail = %+v (running %v), want %s at %d with GTID %s, server running", tail, tail.ServerRunning,
			live.files[2], newest.CompleteEnd, live.written[len(live.written)-1])
	}
	trx := newest.Transactions[len(newest.Transactions)-1]
	var buf bytes.Buffer
	if _, err := c.Raw(ctx, trx.File, trx.Start, trx.End, &buf); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(live.dir, trx.File))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want[trx.Start:trx.End]) {
		t.Error("raw bytes of the last transaction differ from the file's")
	}
}

// gtidListAt is the Gtid_list event's text in SHOW BINLOG EVENTS of file i,
// as a sorted list: SHOW BINLOG EVENTS may print the domains in another
// order than the event stores them (and the scanner keeps).
func (l liveBinlogs) gtidListAt(t *testing.T, i int) string {
	t.Helper()
	for _, e := range l.events[l.files[i]] {
		if e.typ == "Gtid_list" {
			return sortedList(strings.Trim(e.info, "[]"))
		}
	}
	t.Fatalf("%s has no Gtid_list event", l.files[i])
	return ""
}

func sortedList(s string) string {
	parts := strings.Split(s, ",")
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func testDamagedCopies(t *testing.T, path string, clean FileScan) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := len(clean.Transactions)
	lastTrx := clean.Transactions[n-1]
	prevEnd := clean.Transactions[n-2].End
	// The GTID event of a MariaDB transaction is 42 bytes with CRC32
	// (SHOW BINLOG EVENTS: Gtid at Pos, End_log_pos Pos+42).
	afterGTID := lastTrx.Start + 42
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"truncated in the last event", data[:lastTrx.End-7]},
		{"truncated after the GTID event", data[:afterGTID]},
		{"flipped byte in the last event", flip(data, lastTrx.End-9)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), filepath.Base(path))
			if err := os.WriteFile(p, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			res := scanFileT(t, p, 0)
			if !reflect.DeepEqual(res.Transactions, clean.Transactions[:n-1]) {
				t.Errorf("transactions %+v, want all but the last", res.Transactions)
			}
			// Complete events outside a transaction (Binlog_checkpoint) may
			// sit between the two; the incomplete bytes start at the
			// damaged transaction.
			if res.CompleteEnd != prevEnd || res.IncompleteBytes <= 0 || res.IncompleteBytes != int64(len(tc.data))-lastTrx.Start {
				t.Errorf("complete_end %d incomplete_bytes %d (size %d), want %d and %d",
					res.CompleteEnd, res.IncompleteBytes, len(tc.data), prevEnd, int64(len(tc.data))-lastTrx.Start)
			}
		})
	}
}

// testSplicedFile builds header + two row transactions (skipping the DDL
// between) and checks mariadb-binlog prints them.
func testSplicedFile(t *testing.T, path string, scan FileScan) {
	bin := mariadbBinlog(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	spliced := append([]byte(nil), data[:scan.HeaderEnd]...)
	picked := []Trx{scan.Transactions[1], scan.Transactions[2]} // INSERT 1, BEGIN INSERT 2, 3 COMMIT
	for _, trx := range picked {
		spliced = append(spliced, data[trx.Start:trx.End]...)
	}
	p := filepath.Join(t.TempDir(), "salvage.bin")
	if err := os.WriteFile(p, spliced, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--verify-binlog-checksum", "-vv", p).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, out)
	}
	text := string(out)
	for _, want := range []string{
		"GTID " + picked[0].GTID, "GTID " + picked[1].GTID, "BINLOG '",
		"### INSERT INTO `qha_test`.`t`", "'one'", "'two'", "'three'", "COMMIT",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("mariadb-binlog output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "CREATE TABLE") {
		t.Errorf("the DDL that was not picked is in the output:\n%s", text)
	}
}

// mariadbBinlog finds mariadb-binlog (or mysqlbinlog); under CI=true its
// absence fails the test.
func mariadbBinlog(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"mariadb-binlog", "mysqlbinlog"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("mariadb-binlog not installed")
	}
	t.Skip("mariadb-binlog not installed")
	return ""
}

func scanFileT(t *testing.T, path string, from int64) FileScan {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	res, err := ScanBinlog(f, filepath.Base(path), st.Size(), from)
	if err != nil {
		t.Fatalf("%s from %d: %v", path, from, err)
	}
	return res
}
