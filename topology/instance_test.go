package topology

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// readTSV loads a recorded SHOW GLOBAL VARIABLES/STATUS result: "name<TAB>value"
// lines, lines without a tab continuing the previous value.
func readTSV(t *testing.T, name string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	last := ""
	for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if k, v, ok := strings.Cut(line, "\t"); ok {
			out[k] = v
			last = k
			continue
		}
		out[last] += "\n" + line
	}
	return out
}

func recordedReplica(t *testing.T, file string) *ReplicaStatus {
	t.Helper()
	cols, vals := readVertical(t, file)
	rs, err := ParseReplicaStatus(cols, vals)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func recordedMaster(t *testing.T, file string) *BinlogCoord {
	t.Helper()
	cols, vals := readVertical(t, file)
	mc, err := parseMasterStatus(cols, [][]sql.NullString{vals})
	if err != nil {
		t.Fatal(err)
	}
	return mc
}

func TestBuildInstance_Recorded(t *testing.T) {
	now := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	t.Run("mariadb 10.11 replica", func(t *testing.T) {
		i, err := buildInstance("10.0.1.21:3306", readTSV(t, "mariadb-10.11-variables.tsv"), readTSV(t, "mariadb-10.11-status.tsv"),
			recordedReplica(t, "mariadb-10.11-slave-status.txt"), recordedMaster(t, "mariadb-10.11-master-status.txt"), now)
		if err != nil {
			t.Fatal(err)
		}
		if i.Version.Flavor != MariaDB || i.ServerID != 2 || !i.ReadOnly || i.SuperReadOnly || !i.LogBin || !i.LogSlaveUpdates {
			t.Errorf("identity/flags wrong: %+v", i)
		}
		if !i.GTIDStrictMode || i.GTIDBinlogState != "0-2-12,0-1-4711" || i.GTIDSlavePos != "0-1-4711" {
			t.Errorf("gtid fields wrong: strict=%v state=%q slave=%q", i.GTIDStrictMode, i.GTIDBinlogState, i.GTIDSlavePos)
		}
		if !i.SemiSync.ReplicaEnabled || !i.SemiSync.ReplicaActive || i.SemiSync.MasterEnabled {
			t.Errorf("SemiSync = %+v", i.SemiSync)
		}
		if i.Uptime != 86461*time.Second || i.ParallelWorkers != 4 || i.ReportHost != "db2.example.net" || !i.ReadAt.Equal(now) {
			t.Errorf("Uptime=%v ParallelWorkers=%d ReportHost=%q", i.Uptime, i.ParallelWorkers, i.ReportHost)
		}
		if !i.ReplicationFilters.Equal(i.Replica.Filters) {
			t.Errorf("filters from variables %+v differ from status %+v", i.ReplicationFilters, i.Replica.Filters)
		}
		if i.MasterKey() != "10.0.1.20:3306" || i.MasterStatus.String() != "mariadb-bin.000012:104857" {
			t.Errorf("MasterKey=%q MasterStatus=%v", i.MasterKey(), i.MasterStatus)
		}
		checkPos(t, i.BinlogPosition, "0-1-4711")
		checkPos(t, i.ExecutedPosition, "0-1-4711")
		checkPos(t, i.ReadPosition, "0-1-4711")
	})
	t.Run("mysql 8.0.36 primary", func(t *testing.T) {
		i, err := buildInstance("10.0.2.20:3306", readTSV(t, "mysql-8.0.36-variables.tsv"), readTSV(t, "mysql-8.0.36-status.tsv"),
			nil, &BinlogCoord{File: "binlog.000042", Pos: 1532786}, now)
		if err != nil {
			t.Fatal(err)
		}
		if i.Version.Flavor != MySQL || i.ReadOnly || i.SuperReadOnly || i.IsReplica() || !i.GTIDEnabled() {
			t.Errorf("flags wrong: %+v", i)
		}
		if !i.SemiSync.MasterEnabled || !i.SemiSync.MasterActive || i.SemiSync.MasterClients != 2 {
			t.Errorf("SemiSync = %+v", i.SemiSync)
		}
		want := "8f1c0a6e-1d2b-11ef-a6a3-0242ac120002:1-5120,b7a1f2c4-1d2b-11ef-9e2d-0242ac120003:1-12"
		if i.GTIDExecuted != want {
			t.Errorf("GTIDExecuted = %q", i.GTIDExecuted)
		}
		checkPos(t, i.BinlogPosition, want)
		if _, err := i.ReadPosition(); err == nil {
			t.Error("ReadPosition on a primary should fail with ErrNotReplica")
		}
	})
	t.Run("mysql 8.4 replica", func(t *testing.T) {
		i, err := buildInstance("10.0.3.21:3307", readTSV(t, "mysql-8.4.0-variables.tsv"), map[string]string{"Uptime": "5"},
			recordedReplica(t, "mysql-8.4.0-replica-status.txt"), recordedMaster(t, "mysql-8.4.0-binary-log-status.txt"), now)
		if err != nil {
			t.Fatal(err)
		}
		if !i.ReadOnly || !i.SuperReadOnly || i.InnoDBFlushLogAtTrxCommit != 2 || i.MasterKey() != "10.0.3.20:3307" {
			t.Errorf("flags wrong: %+v", i)
		}
		checkPos(t, i.ExecutedPosition, "1b6bd3a2-0f7e-11ef-bb3c-0242ac120004:1-88:audit:1-4")
		checkPos(t, i.ReadPosition, "1b6bd3a2-0f7e-11ef-bb3c-0242ac120004:1-88:audit:1-4")
		if i.MasterStatus.String() != "binlog.000003:31337" {
			t.Errorf("MasterStatus = %v", i.MasterStatus)
		}
	})
	t.Run("file/pos replica", func(t *testing.T) {
		vars := map[string]string{"version": "5.7.44-log", "gtid_mode": "OFF", "read_only": "ON", "server_id": "7"}
		i, err := buildInstance("db2:3306", vars, nil, recordedReplica(t, "mysql-5.7-slave-status.txt"), nil, now)
		if err != nil {
			t.Fatal(err)
		}
		checkPos(t, i.ExecutedPosition, "mysql-bin.000009:98877")
		checkPos(t, i.ReadPosition, "mysql-bin.000010:73204")
		if _, err := i.BinlogPosition(); err == nil {
			t.Error("BinlogPosition without log_bin should fail")
		}
	})
}

func checkPos(t *testing.T, f func() (Position, error), want string) {
	t.Helper()
	p, err := f()
	if err != nil {
		t.Fatalf("position: %v", err)
	}
	if p.String() != want {
		t.Errorf("position = %q, want %q", p, want)
	}
}

func TestBuildInstance_Invalid(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
	}{
		{"no version", map[string]string{"server_id": "1"}},
		{"bad server_id", map[string]string{"version": "8.0.36", "server_id": "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := buildInstance("h:1", tt.vars, nil, nil, nil, time.Time{}); err == nil {
				t.Error("want error")
			}
		})
	}
}

func TestMariaDBSuperReadOnly_Ignored(t *testing.T) {
	// Should a MariaDB fork ever report super_read_only, it is not trusted.
	i, err := buildInstance("h:1", map[string]string{"version": "10.11.2-MariaDB", "super_read_only": "ON"}, nil, nil, nil, time.Time{})
	if err != nil || i.SuperReadOnly {
		t.Errorf("SuperReadOnly = %v, err %v", i.SuperReadOnly, err)
	}
}
