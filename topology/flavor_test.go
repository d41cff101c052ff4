package topology

import (
	"errors"
	"strings"
	"testing"
)

func TestParseVersion_Flavors(t *testing.T) {
	tests := []struct {
		raw, comment string
		want         Version
	}{
		{"10.11.19-MariaDB-0+deb12u1", "Debian 12", Version{Major: 10, Minor: 11, Patch: 19, Flavor: MariaDB}},
		{"11.4.2-MariaDB-log", "MariaDB Server", Version{Major: 11, Minor: 4, Patch: 2, Flavor: MariaDB}},
		{"5.5.5-10.3.39-MariaDB", "", Version{Major: 10, Minor: 3, Patch: 39, Flavor: MariaDB}},
		{"8.0.36", "MySQL Community Server - GPL", Version{Major: 8, Minor: 0, Patch: 36, Flavor: MySQL}},
		{"8.4.0", "MySQL Community Server - GPL", Version{Major: 8, Minor: 4, Patch: 0, Flavor: MySQL}},
		{"5.7.44-log", "MySQL Community Server (GPL)", Version{Major: 5, Minor: 7, Patch: 44, Flavor: MySQL}},
		{"8.0.36-28", "Percona Server (GPL), Release 28, Revision 47601f19", Version{Major: 8, Minor: 0, Patch: 36, Flavor: MySQL}},
		{"10.6.16", "mariadb.org binary distribution", Version{Major: 10, Minor: 6, Patch: 16, Flavor: MariaDB}},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := ParseVersion(tt.raw, tt.comment)
			if err != nil {
				t.Fatalf("ParseVersion: %v", err)
			}
			tt.want.Raw = tt.raw
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseVersion_Invalid(t *testing.T) {
	for _, raw := range []string{"", "MariaDB", "x.y.z", "8", "1.2.3.4"} {
		if _, err := ParseVersion(raw, ""); !errors.Is(err, ErrBadVersion) {
			t.Errorf("ParseVersion(%q) err = %v, want ErrBadVersion", raw, err)
		}
	}
}

func mustVersion(t *testing.T, raw string) Version {
	t.Helper()
	v, err := ParseVersion(raw, "")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVersion_Dialect(t *testing.T) {
	tests := []struct {
		raw                                  string
		showStatus, showMaster, showReplicas string
		stopIO, startSQL, reset              string
		readOnlyOn                           string
	}{
		{"10.11.19-MariaDB-0+deb12u1", "SHOW SLAVE STATUS", "SHOW MASTER STATUS", "SHOW SLAVE HOSTS",
			"STOP SLAVE IO_THREAD", "START SLAVE SQL_THREAD", "RESET SLAVE ALL", "SET GLOBAL read_only = 1"},
		{"5.7.44-log", "SHOW SLAVE STATUS", "SHOW MASTER STATUS", "SHOW SLAVE HOSTS",
			"STOP SLAVE IO_THREAD", "START SLAVE SQL_THREAD", "RESET SLAVE ALL", "SET GLOBAL read_only = 1;SET GLOBAL super_read_only = 1"},
		{"8.0.21", "SHOW SLAVE STATUS", "SHOW MASTER STATUS", "SHOW SLAVE HOSTS",
			"STOP SLAVE IO_THREAD", "START SLAVE SQL_THREAD", "RESET SLAVE ALL", "SET GLOBAL read_only = 1;SET GLOBAL super_read_only = 1"},
		{"8.0.36", "SHOW REPLICA STATUS", "SHOW MASTER STATUS", "SHOW REPLICAS",
			"STOP REPLICA IO_THREAD", "START REPLICA SQL_THREAD", "RESET REPLICA ALL", "SET GLOBAL read_only = 1;SET GLOBAL super_read_only = 1"},
		{"8.4.0", "SHOW REPLICA STATUS", "SHOW BINARY LOG STATUS", "SHOW REPLICAS",
			"STOP REPLICA IO_THREAD", "START REPLICA SQL_THREAD", "RESET REPLICA ALL", "SET GLOBAL read_only = 1;SET GLOBAL super_read_only = 1"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			v := mustVersion(t, tt.raw)
			checks := []struct{ name, got, want string }{
				{"ShowReplicaStatusSQL", v.ShowReplicaStatusSQL(), tt.showStatus},
				{"ShowMasterStatusSQL", v.ShowMasterStatusSQL(), tt.showMaster},
				{"ShowReplicasSQL", v.ShowReplicasSQL(), tt.showReplicas},
				{"StopReplicaSQL", v.StopReplicaSQL(IOThread), tt.stopIO},
				{"StartReplicaSQL", v.StartReplicaSQL(SQLThread), tt.startSQL},
				{"ResetReplicaAllSQL", v.ResetReplicaAllSQL(), tt.reset},
				{"ReadOnlySQL", strings.Join(v.ReadOnlySQL(true), ";"), tt.readOnlyOn},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
				}
			}
		})
	}
}

func TestVersion_ReadOnlyOffOrder(t *testing.T) {
	// super_read_only must go off before read_only is turned off, or MySQL
	// refuses nothing but leaves super_read_only on.
	got := mustVersion(t, "8.0.36").ReadOnlySQL(false)
	if len(got) != 2 || !strings.Contains(got[0], "super_read_only = 0") {
		t.Errorf("ReadOnlySQL(false) = %q", got)
	}
	if got := mustVersion(t, "10.11.19-MariaDB").ReadOnlySQL(false); len(got) != 1 || strings.Contains(got[0], "super") {
		t.Errorf("MariaDB ReadOnlySQL(false) = %q, must not mention super_read_only", got)
	}
}

func TestVersion_GTIDVariables(t *testing.T) {
	if got := mustVersion(t, "10.11.19-MariaDB").GTIDVariables(); got[0] != "gtid_binlog_pos" {
		t.Errorf("MariaDB GTIDVariables = %q", got)
	}
	if got := mustVersion(t, "8.0.36").GTIDVariables(); got[0] != "gtid_executed" {
		t.Errorf("MySQL GTIDVariables = %q", got)
	}
}

func TestVersion_SemiSyncMasterSQL(t *testing.T) {
	for _, tt := range []struct{ raw, want string }{
		{"10.11.19-MariaDB-0+deb12u1", "SET GLOBAL rpl_semi_sync_master_enabled = 1"},
		{"8.0.25", "SET GLOBAL rpl_semi_sync_master_enabled = 1"},
		{"8.0.36", "SET GLOBAL rpl_semi_sync_source_enabled = 1"},
		{"8.4.0", "SET GLOBAL rpl_semi_sync_source_enabled = 1"},
	} {
		if got := mustVersion(t, tt.raw).SemiSyncMasterSQL(true); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.raw, got, tt.want)
		}
	}
}
