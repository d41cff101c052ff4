package topology

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

func nullRow(vals ...any) []sql.NullString {
	out := make([]sql.NullString, len(vals))
	for i, v := range vals {
		if v != nil {
			out[i] = sql.NullString{String: v.(string), Valid: true}
		}
	}
	return out
}

var processCols = []string{"ID", "USER", "HOST", "DB", "COMMAND", "TIME", "STATE", "INFO", "trx_id", "age", "rows"}

func TestParseProcessList_Recorded(t *testing.T) {
	rows := [][]sql.NullString{
		nullRow("1", "system user", "", nil, "Daemon", "0", "InnoDB purge coordinator", nil, nil, nil, nil),
		nullRow("5", "repl", "127.0.0.1:51234", nil, "Binlog Dump", "812", "Master has sent all binlog to slave; waiting for more updates", nil, nil, nil, nil),
		nullRow("9", "app", "10.0.0.9:40000", "shop", "Sleep", "130", "", nil, "421", "131", "3"),
		nullRow("10", "quorumha", "10.0.0.2:50000", nil, "Query", "0", "executing", "SELECT ...", nil, nil, nil),
	}
	ps, err := parseProcessList(processCols, rows)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 4 {
		t.Fatalf("len = %d", len(ps))
	}
	app := ps[2]
	if !app.InTransaction || app.TrxAge != 131*time.Second || app.TrxRowsModified != 3 || app.Time != 130*time.Second || app.DB != "shop" {
		t.Errorf("app process = %+v", app)
	}
	if ps[1].InTransaction {
		t.Error("dump thread has no transaction")
	}
	if _, err := parseProcessList(processCols[:3], nil); err == nil {
		t.Error("want error for wrong column count")
	}
}

func TestKillable_Filters(t *testing.T) {
	spare := map[uint64]bool{10: true}
	tests := []struct {
		name string
		p    Process
		want bool
	}{
		{"app", Process{ID: 9, User: "app", Command: "Sleep"}, true},
		{"app query", Process{ID: 11, User: "root", Command: "Query"}, true},
		{"self", Process{ID: 7, User: "app", Command: "Query"}, false},
		{"spared session", Process{ID: 10, User: "quorumha", Command: "Query"}, false},
		{"admin account", Process{ID: 13, User: "quorumha", Command: "Sleep"}, true},
		{"binlog dump", Process{ID: 5, User: "repl", Command: "Binlog Dump"}, false},
		{"binlog dump gtid", Process{ID: 6, User: "repl", Command: "Binlog Dump GTID"}, false},
		{"system user", Process{ID: 1, User: "system user", Command: "Connect"}, false},
		{"event scheduler", Process{ID: 2, User: "event_scheduler", Command: "Daemon"}, false},
		{"replica sql", Process{ID: 3, User: "system user", Command: "Slave_SQL"}, false},
		{"already killed", Process{ID: 12, User: "app", Command: "Killed"}, false},
	}
	for _, tt := range tests {
		if got := killable(tt.p, 7, spare); got != tt.want {
			t.Errorf("%s: killable = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestParseReplicaHosts_MergesDumpThreads(t *testing.T) {
	cols := []string{"Server_id", "Host", "Port", "Master_id"}
	rows := [][]sql.NullString{nullRow("2", "127.0.0.1", "3307", "1"), nullRow("3", "", "3308", "1")}
	procs := []Process{
		{User: "repl", Host: "127.0.0.1:40001", Command: "Binlog Dump"},
		{User: "repl", Host: "10.0.0.7:40002", Command: "Binlog Dump GTID"},
		{User: "app", Host: "10.0.0.8:40003", Command: "Sleep"},
	}
	got, err := parseReplicaHosts(cols, rows, procs, 3306)
	if err != nil {
		t.Fatal(err)
	}
	want := []ReplicaHost{{Host: "127.0.0.1", Port: 3307, ServerID: 2}, {Host: "10.0.0.7", Port: 3306, Guessed: true}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestRelayApplied_Cases(t *testing.T) {
	tests := []struct {
		name string
		rs   ReplicaStatus
		want bool
	}{
		{"coords equal", ReplicaStatus{MasterLogFile: "b.000002", ReadMasterLogPos: 9, RelayMasterLogFile: "b.000002", ExecMasterLogPos: 9}, true},
		{"exec behind", ReplicaStatus{MasterLogFile: "b.000002", ReadMasterLogPos: 9, RelayMasterLogFile: "b.000002", ExecMasterLogPos: 5}, false},
		{"exec behind file", ReplicaStatus{MasterLogFile: "b.000003", ReadMasterLogPos: 4, RelayMasterLogFile: "b.000002", ExecMasterLogPos: 9}, false},
		{"gtid covered", ReplicaStatus{MasterLogFile: "b.000002", ReadMasterLogPos: 9, ExecMasterLogPos: 5, AutoPosition: true,
			RetrievedGTIDSet: uuidA + ":5-9", ExecutedGTIDSet: uuidA + ":1-9"}, true},
		{"gtid missing", ReplicaStatus{MasterLogFile: "b.000002", ReadMasterLogPos: 9, ExecMasterLogPos: 5, AutoPosition: true,
			RetrievedGTIDSet: uuidA + ":5-9", ExecutedGTIDSet: uuidA + ":1-8"}, false},
	}
	for _, tt := range tests {
		if got := relayApplied(&tt.rs); got != tt.want {
			t.Errorf("%s: relayApplied = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestRetryServerError: a statement the server failed is tried again (the
// CI failure was one "Error on delete of '#sql-temptable'"), up to the
// bound; errors that are not the server's, and a done context, end it.
func TestRetryServerError(t *testing.T) {
	serverErr := &mysql.MySQLError{Number: 6, Message: "Error on delete of '/tmp/#sql-temptable-668a-39-1c.MAD' (Errcode: 2)"}
	netErr := errors.New("read tcp: connection reset by peer")
	cases := []struct {
		name      string
		errs      []error // what the op returns, call by call; nil past the end
		wantCalls int
		wantErr   error
	}{
		{"ok at once", nil, 1, nil},
		{"one server error then ok", []error{serverErr}, 2, nil},
		{"two server errors then ok", []error{serverErr, serverErr}, 3, nil},
		{"server errors to the bound", []error{serverErr, serverErr, serverErr, serverErr}, 3, serverErr},
		{"network error not retried", []error{netErr}, 1, netErr},
		{"server then network error", []error{serverErr, netErr}, 2, netErr},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := retryServerError(context.Background(), 3, time.Millisecond, func() error {
				calls++
				if calls <= len(tc.errs) {
					return tc.errs[calls-1]
				}
				return nil
			})
			if calls != tc.wantCalls || !errors.Is(err, tc.wantErr) {
				t.Fatalf("calls %d err %v, want calls %d err %v", calls, err, tc.wantCalls, tc.wantErr)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := 0
	err := retryServerError(ctx, 3, time.Hour, func() error { calls++; return serverErr })
	if calls != 1 || !errors.Is(err, serverErr) {
		t.Fatalf("done context: calls %d err %v, want 1 call and the server's error", calls, err)
	}
}

// TestIsBrokenConn: Read reads again only for a connection that died
// under it, never for a statement the server refused or a cancelled ctx.
func TestIsBrokenConn(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("x: read variables: %w", mysql.ErrInvalidConn), true},
		{fmt.Errorf("x: read: %w", driver.ErrBadConn), true},
		{&mysql.MySQLError{Number: 1227, Message: "Access denied"}, false},
		{context.DeadlineExceeded, false},
		{errors.New("other"), false},
	}
	for _, c := range cases {
		if got := isBrokenConn(c.err); got != c.want {
			t.Errorf("isBrokenConn(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestProcess_StoppingReplica(t *testing.T) {
	tests := []struct {
		info, state string
		want        bool
	}{
		{"STOP SLAVE", "Killing slave", true},
		{"  stop slave io_thread", "Killing slave", true},
		{"STOP REPLICA", "Killing replica", true},
		{"STOP SLAVE", "starting", false},       // not yet in its killing stage
		{"START SLAVE", "Killing slave", false}, // another statement
		{"SELECT 'STOP SLAVE'", "Killing slave", false},
		{"", "Killing slave", false},
	}
	for _, tt := range tests {
		if got := (Process{Info: tt.info, State: tt.state}).StoppingReplica(); got != tt.want {
			t.Errorf("Info %q State %q: StoppingReplica %v, want %v", tt.info, tt.state, got, tt.want)
		}
	}
}

func TestReadAgainIfBroken(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name      string
		ctx       context.Context
		errs      []error // what each call returns
		wantCalls int
		wantErr   bool
	}{
		{"ok at once", context.Background(), []error{nil}, 1, false},
		{"killed session read again", context.Background(), []error{mysql.ErrInvalidConn, nil}, 2, false},
		{"bad conn read again", context.Background(), []error{driver.ErrBadConn, nil}, 2, false},
		{"only once more", context.Background(), []error{mysql.ErrInvalidConn, mysql.ErrInvalidConn, nil}, 2, true},
		{"a server error is not read again", context.Background(), []error{errors.New("Access denied"), nil}, 1, true},
		{"a cancelled read is not read again", cancelled, []error{mysql.ErrInvalidConn, nil}, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := readAgainIfBroken(tt.ctx, func() error {
				calls++
				return tt.errs[calls-1]
			})
			if calls != tt.wantCalls || (err != nil) != tt.wantErr {
				t.Fatalf("%d calls, err %v; want %d calls, error %v", calls, err, tt.wantCalls, tt.wantErr)
			}
		})
	}
}
