package topology

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readVertical loads a recorded `\G` output: "Column: value" lines, with
// continuation lines (multi-line GTID sets) appended and "NULL" as SQL NULL.
func readVertical(t *testing.T, name string) ([]string, []sql.NullString) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	verticalField := regexp.MustCompile(`^\s*([A-Za-z_0-9]+): ?(.*)$`)
	var cols []string
	var vals []sql.NullString
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "***") {
			continue
		}
		if m := verticalField.FindStringSubmatch(line); m != nil {
			cols = append(cols, m[1])
			vals = append(vals, sql.NullString{String: m[2], Valid: m[2] != "NULL"})
			continue
		}
		if len(vals) == 0 {
			t.Fatalf("%s: continuation line before any field: %q", name, line)
		}
		vals[len(vals)-1].String += "\n" + line
	}
	return cols, vals
}

func TestParseReplicaStatus_Recorded(t *testing.T) {
	tests := []struct {
		file  string
		check func(t *testing.T, r *ReplicaStatus)
	}{
		{"mariadb-10.11-slave-status.txt", func(t *testing.T, r *ReplicaStatus) {
			want := ReplicaStatus{MasterHost: "10.0.1.20", MasterPort: 3306, MasterUser: "repl", IORunning: IOYes, SQLRunning: true,
				MasterLogFile: "mariadb-bin.000012", ReadMasterLogPos: 104857, RelayMasterLogFile: "mariadb-bin.000012",
				ExecMasterLogPos: 104857, RelayLogFile: "mariadb-relay-bin.000004", RelayLogPos: 2231, UsingGTID: "Slave_Pos",
				GTIDIOPos: "0-1-4711", MasterServerID: 1, ParallelMode: "optimistic"}
			checkCommon(t, r, want)
			if r.SecondsBehind == nil || *r.SecondsBehind != 0 {
				t.Errorf("SecondsBehind = %v", r.SecondsBehind)
			}
			if r.SQLRemainingDelay != nil {
				t.Errorf("SQLRemainingDelay = %v, want nil", *r.SQLRemainingDelay)
			}
			wantF := ReplicationFilters{IgnoreDB: []string{"scratch", "mysql_audit"}, WildIgnoreTable: []string{"tmp%.%"}}
			if !r.Filters.Equal(wantF) {
				t.Errorf("Filters = %+v", r.Filters)
			}
			if !r.UsesGTID() || !r.Running() || !r.RelayLogApplied() {
				t.Errorf("UsesGTID/Running/RelayLogApplied = %v/%v/%v", r.UsesGTID(), r.Running(), r.RelayLogApplied())
			}
		}},
		{"mariadb-10.11-slave-status-io-error.txt", func(t *testing.T, r *ReplicaStatus) {
			if r.IORunning != IOConnecting || !r.SQLRunning || r.Running() {
				t.Errorf("IORunning = %v SQLRunning = %v", r.IORunning, r.SQLRunning)
			}
			if r.LastIOErrno != 2003 || !strings.Contains(r.LastIOError, "Connection refused") {
				t.Errorf("LastIO = %d %q", r.LastIOErrno, r.LastIOError)
			}
			if r.SecondsBehind != nil || r.UsingGTID != "Current_Pos" || r.GTIDIOPos != "0-1-88,1-1-3" {
				t.Errorf("SecondsBehind=%v UsingGTID=%q GTIDIOPos=%q", r.SecondsBehind, r.UsingGTID, r.GTIDIOPos)
			}
			if r.RelayLogApplied() {
				t.Error("RelayLogApplied = true with Exec 7800 < Read 9120")
			}
		}},
		{"mysql-5.7-slave-status.txt", func(t *testing.T, r *ReplicaStatus) {
			want := ReplicaStatus{MasterHost: "db1.example.net", MasterPort: 3306, MasterUser: "repl", IORunning: IOYes,
				MasterLogFile: "mysql-bin.000010", ReadMasterLogPos: 73204, RelayMasterLogFile: "mysql-bin.000009",
				ExecMasterLogPos: 98877, RelayLogFile: "db2-relay-bin.000031", RelayLogPos: 5210, MasterServerID: 101,
				MasterUUID: "3E11FA47-71CA-11E1-9E33-C80AA9429562", AutoPosition: true,
				RetrievedGTIDSet: uuidA + ":1000-1290", ExecutedGTIDSet: uuidA + ":1-1203," + uuidB + ":1-3"}
			checkCommon(t, r, want)
			if r.LastSQLErrno != 1062 || !strings.Contains(r.LastSQLError, "Duplicate entry") {
				t.Errorf("LastSQL = %d %q", r.LastSQLErrno, r.LastSQLError)
			}
			if r.SecondsBehind != nil || r.SQLRunning {
				t.Errorf("SecondsBehind = %v SQLRunning = %v", r.SecondsBehind, r.SQLRunning)
			}
			c, err := r.ExecCoord().Compare(r.ReadCoord())
			if err != nil || c != -1 {
				t.Errorf("ExecCoord vs ReadCoord = %d, %v; want -1", c, err)
			}
		}},
		{"mysql-8.0.36-replica-status.txt", func(t *testing.T, r *ReplicaStatus) {
			want := ReplicaStatus{MasterHost: "10.0.2.20", MasterPort: 3306, MasterUser: "repl", IORunning: IOYes, SQLRunning: true,
				MasterLogFile: "binlog.000042", ReadMasterLogPos: 1532786, RelayMasterLogFile: "binlog.000042",
				ExecMasterLogPos: 1531000, RelayLogFile: "db3-relay-bin.000007", RelayLogPos: 1530011, MasterServerID: 2,
				MasterUUID: "8f1c0a6e-1d2b-11ef-a6a3-0242ac120002", AutoPosition: true,
				RetrievedGTIDSet: "8f1c0a6e-1d2b-11ef-a6a3-0242ac120002:1-5120",
				ExecutedGTIDSet:  "8f1c0a6e-1d2b-11ef-a6a3-0242ac120002:1-5117,b7a1f2c4-1d2b-11ef-9e2d-0242ac120003:1-12"}
			checkCommon(t, r, want)
			if r.SecondsBehind == nil || *r.SecondsBehind != 3 {
				t.Errorf("SecondsBehind = %v", r.SecondsBehind)
			}
			if !r.Filters.Equal(ReplicationFilters{DoDB: []string{"app"}}) {
				t.Errorf("Filters = %+v", r.Filters)
			}
			if r.SlaveSQLRunningState != "Waiting for dependent transaction to commit" {
				t.Errorf("SlaveSQLRunningState = %q", r.SlaveSQLRunningState)
			}
		}},
		{"mysql-8.4.0-replica-status.txt", func(t *testing.T, r *ReplicaStatus) {
			if r.MasterHost != "10.0.3.20" || r.MasterPort != 3307 || r.ConnectRetry != 10 {
				t.Errorf("master = %s:%d retry %d", r.MasterHost, r.MasterPort, r.ConnectRetry)
			}
			if r.SQLDelay != 3600 || r.SQLRemainingDelay == nil || *r.SQLRemainingDelay != 1187 {
				t.Errorf("SQLDelay = %d SQLRemainingDelay = %v", r.SQLDelay, r.SQLRemainingDelay)
			}
			if r.RetrievedGTIDSet != r.ExecutedGTIDSet || !strings.HasSuffix(r.ExecutedGTIDSet, ":1-88:audit:1-4") {
				t.Errorf("tagged sets not normalised: %q vs %q", r.RetrievedGTIDSet, r.ExecutedGTIDSet)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			cols, vals := readVertical(t, tt.file)
			r, err := ParseReplicaStatus(cols, vals)
			if err != nil {
				t.Fatalf("ParseReplicaStatus: %v", err)
			}
			tt.check(t, r)
		})
	}
}

func checkCommon(t *testing.T, got *ReplicaStatus, want ReplicaStatus) {
	t.Helper()
	type pair struct {
		name      string
		got, want any
	}
	for _, p := range []pair{
		{"MasterHost", got.MasterHost, want.MasterHost}, {"MasterPort", got.MasterPort, want.MasterPort},
		{"MasterUser", got.MasterUser, want.MasterUser}, {"IORunning", got.IORunning, want.IORunning},
		{"SQLRunning", got.SQLRunning, want.SQLRunning}, {"MasterLogFile", got.MasterLogFile, want.MasterLogFile},
		{"ReadMasterLogPos", got.ReadMasterLogPos, want.ReadMasterLogPos},
		{"RelayMasterLogFile", got.RelayMasterLogFile, want.RelayMasterLogFile},
		{"ExecMasterLogPos", got.ExecMasterLogPos, want.ExecMasterLogPos}, {"RelayLogFile", got.RelayLogFile, want.RelayLogFile},
		{"RelayLogPos", got.RelayLogPos, want.RelayLogPos}, {"UsingGTID", got.UsingGTID, want.UsingGTID},
		{"GTIDIOPos", got.GTIDIOPos, want.GTIDIOPos}, {"MasterServerID", got.MasterServerID, want.MasterServerID},
		{"MasterUUID", got.MasterUUID, want.MasterUUID}, {"AutoPosition", got.AutoPosition, want.AutoPosition},
		{"RetrievedGTIDSet", got.RetrievedGTIDSet, want.RetrievedGTIDSet},
		{"ExecutedGTIDSet", got.ExecutedGTIDSet, want.ExecutedGTIDSet}, {"ParallelMode", got.ParallelMode, want.ParallelMode},
	} {
		if p.got != p.want {
			t.Errorf("%s = %v, want %v", p.name, p.got, p.want)
		}
	}
}

func TestParseReplicaStatus_Malformed(t *testing.T) {
	ns := func(s string) sql.NullString { return sql.NullString{String: s, Valid: true} }
	tests := []struct {
		name string
		cols []string
		vals []sql.NullString
	}{
		{"length mismatch", []string{"Master_Host"}, nil},
		{"no host column", []string{"Foo"}, []sql.NullString{ns("x")}},
		{"bad port", []string{"Master_Host", "Master_Port"}, []sql.NullString{ns("h"), ns("x")}},
		{"bad seconds behind", []string{"Source_Host", "Seconds_Behind_Source"}, []sql.NullString{ns("h"), ns("soon")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseReplicaStatus(tt.cols, tt.vals); !errors.Is(err, ErrBadStatus) {
				t.Errorf("err = %v, want ErrBadStatus", err)
			}
		})
	}
}

func TestParseReplicaStatus_IOStates(t *testing.T) {
	tests := map[string]IOState{"Yes": IOYes, "No": IONo, "": IONo, "Connecting": IOConnecting, "Preparing": IOConnecting}
	for in, want := range tests {
		rs, err := ParseReplicaStatus([]string{"Master_Host", "Slave_IO_Running"},
			[]sql.NullString{{String: "h", Valid: true}, {String: in, Valid: true}})
		if err != nil || rs.IORunning != want {
			t.Errorf("%q: IORunning = %v, %v; want %v", in, rs.IORunning, err, want)
		}
	}
}

func TestNormalizeColumn_Generations(t *testing.T) {
	tests := map[string]string{
		"Read_Source_Log_Pos":       "read_master_log_pos",
		"Replica_SQL_Running_State": "slave_sql_running_state",
		"Seconds_Behind_Source":     "seconds_behind_master",
		"Replicate_Wild_Do_Table":   "replicate_wild_do_table",
		"Slave_IO_Running":          "slave_io_running",
	}
	for in, want := range tests {
		if got := normalizeColumn(in); got != want {
			t.Errorf("normalizeColumn(%q) = %q, want %q", in, got, want)
		}
	}
}
