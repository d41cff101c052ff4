package detector

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/go-sql-driver/mysql"
)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func myErr(n uint16) error { return &mysql.MySQLError{Number: n, Message: "x"} }

func TestClassifyError_Classes(t *testing.T) {
	refusedDial := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name string
		err  error
		want Reason
	}{
		{"nil", nil, ReasonOK},
		{"connection refused", refusedDial, ReasonRefused},
		{"wrapped refused", fmt.Errorf("probe: %w", refusedDial), ReasonRefused},
		{"reset", &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, ReasonRefused},
		{"host unreachable", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}, ReasonRefused},
		{"eof", io.EOF, ReasonRefused},
		{"invalid conn", mysql.ErrInvalidConn, ReasonRefused},
		{"bad conn", driver.ErrBadConn, ReasonRefused},
		{"ctx deadline", context.DeadlineExceeded, ReasonTimeout},
		{"wrapped deadline", fmt.Errorf("probe: %w", context.DeadlineExceeded), ReasonTimeout},
		{"os deadline", os.ErrDeadlineExceeded, ReasonTimeout},
		{"net timeout", &net.OpError{Op: "dial", Err: timeoutErr{}}, ReasonTimeout},
		{"in flight", errInFlight, ReasonTimeout},
		{"canceled", context.Canceled, ReasonUnknown},
		{"other", errors.New("boom"), ReasonUnknown},
		{"no rows", sql.ErrNoRows, ReasonUnknown},
		{"1040 too many connections", myErr(1040), ReasonTooManyConnections},
		{"1203 user connections", myErr(1203), ReasonTooManyConnections},
		{"1226 user limit", myErr(1226), ReasonTooManyConnections},
		{"1042 bad host", myErr(1042), ReasonAuthError},
		{"1043 handshake", myErr(1043), ReasonAuthError},
		{"1044 db access", myErr(1044), ReasonAuthError},
		{"1045 access denied", myErr(1045), ReasonAuthError},
		{"1129 host blocked", myErr(1129), ReasonAuthError},
		{"1130 host not privileged", myErr(1130), ReasonAuthError},
		{"1251 auth mode", myErr(1251), ReasonAuthError},
		{"1275 secure auth", myErr(1275), ReasonAuthError},
		{"wrapped 1045", fmt.Errorf("probe: %w", myErr(1045)), ReasonAuthError},
		{"1053 shutdown", myErr(1053), ReasonReadOnlyOrShutdown},
		{"1927 connection killed", myErr(1927), ReasonReadOnlyOrShutdown},
		{"1290 read only", myErr(1290), ReasonReadOnlyOrShutdown},
		{"1064 parse error", myErr(1064), ReasonQueryError},
		{"1146 no table", myErr(1146), ReasonQueryError},
	}
	for _, tt := range tests {
		if got := ClassifyError(tt.err); got != tt.want {
			t.Errorf("%s: ClassifyError(%v) = %s, want %s", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestFillReplicaObservation_ColumnNames(t *testing.T) {
	ns := func(s string) sql.NullString { return sql.NullString{String: s, Valid: true} }
	tests := []struct {
		name   string
		st     map[string]sql.NullString
		master string
		io     string
		pos    string
		behind *int64
	}{
		{"mariadb", map[string]sql.NullString{"Master_Host": ns("127.0.0.1"), "Master_Port": ns("3306"),
			"Slave_IO_Running": ns("Yes"), "Slave_SQL_Running": ns("Yes"), "Master_Log_File": ns("bin.000001"),
			"Read_Master_Log_Pos": ns("1234"), "Gtid_IO_Pos": ns("0-1-5"), "Seconds_Behind_Master": ns("0")},
			"127.0.0.1:3306", "Yes", "bin.000001:1234 gtid=0-1-5", new(int64)},
		{"mysql8", map[string]sql.NullString{"Source_Host": ns("db1"), "Source_Port": ns("3307"),
			"Replica_IO_Running": ns("Connecting"), "Replica_SQL_Running": ns("Yes"), "Source_Log_File": ns("b.2"),
			"Read_Source_Log_Pos": ns("9"), "Retrieved_Gtid_Set": ns(""), "Seconds_Behind_Source": {}},
			"db1:3307", "Connecting", "b.2:9", nil},
		{"not a replica", nil, "", "", "", nil},
	}
	for _, tt := range tests {
		var o ReplicaObservation
		fillReplicaObservation(&o, tt.st)
		if o.MasterAddr() != tt.master || o.IORunning != tt.io || o.ReadPos != tt.pos || (o.SecondsBehind == nil) != (tt.behind == nil) {
			t.Errorf("%s: got %+v", tt.name, o)
		}
	}
}
