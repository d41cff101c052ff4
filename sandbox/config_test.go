package sandbox

import (
	"strings"
	"testing"
)

func TestMyCnf_Roles(t *testing.T) {
	inst := Instance{Name: "node1", Host: Host, Port: 3307, ServerID: 2, DataDir: "/d/node1", Socket: "/d/node1/s.sock"}
	tests := []struct {
		name    string
		master  bool
		opts    Options
		want    []string
		notWant []string
	}{
		{"replica gtid", false, Options{GTID: true}, []string{"read_only=ON", "server_id=2", "port=3307", "report_port=3307", "gtid_strict_mode=ON", "sync_binlog=1"}, []string{"rpl_semi_sync", "sync_relay_log_info"}},
		{"master semisync", true, Options{GTID: true, SemiSync: true}, []string{"rpl_semi_sync_master_enabled=ON", "rpl_semi_sync_slave_enabled=ON"}, []string{"read_only"}},
		{"replica semisync", false, Options{SemiSync: true}, []string{"rpl_semi_sync_slave_enabled=ON", "sync_relay_log_info=1", "rpl_semi_sync_master_timeout=5000", "rpl_semi_sync_master_wait_point=AFTER_SYNC"}, []string{"rpl_semi_sync_master_enabled"}},
		{"extra last", false, Options{ExtraConfig: []string{" max_connections=50 "}}, []string{"max_connections=50"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cnf := myCnf(inst, tt.master, tt.opts)
			lines := strings.Split(cnf, "\n")
			for _, w := range tt.want {
				if !containsLine(lines, w) {
					t.Errorf("missing %q in:\n%s", w, cnf)
				}
			}
			for _, nw := range tt.notWant {
				if strings.Contains(cnf, nw) {
					t.Errorf("unexpected %q in:\n%s", nw, cnf)
				}
			}
		})
	}
	cnf := myCnf(inst, false, Options{ExtraConfig: []string{"max_connections=50"}})
	if strings.LastIndex(cnf, "max_connections=50") < strings.LastIndex(cnf, "max_connections=200") {
		t.Errorf("ExtraConfig does not come last:\n%s", cnf)
	}
}

func containsLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

func TestBinlogPos_Less(t *testing.T) {
	tests := []struct {
		a, b BinlogPos
		want bool
	}{
		{BinlogPos{"mysql-bin.000001", 100}, BinlogPos{"mysql-bin.000001", 200}, true},
		{BinlogPos{"mysql-bin.000001", 200}, BinlogPos{"mysql-bin.000001", 200}, false},
		{BinlogPos{"mysql-bin.000001", 900}, BinlogPos{"mysql-bin.000002", 4}, true},
		{BinlogPos{"mysql-bin.000002", 4}, BinlogPos{"mysql-bin.000001", 900}, false},
	}
	for _, tt := range tests {
		if got := tt.a.less(tt.b); got != tt.want {
			t.Errorf("%s < %s = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestMyCnf_PlacedInstanceBindsAndReportsItsAddress(t *testing.T) {
	inst := Instance{Name: "node0", Host: "198.18.7.14", NetNS: "qha7-z3", Port: 3307, ServerID: 1, DataDir: "/d/node0"}
	lines := strings.Split(myCnf(inst, true, Options{}), "\n")
	for _, w := range []string{"bind-address=198.18.7.14", "report_host=198.18.7.14"} {
		if !containsLine(lines, w) {
			t.Errorf("missing %q", w)
		}
	}
	if got := inst.Addr(); got != "198.18.7.14:3307" {
		t.Errorf("Addr() = %s", got)
	}
	if got := (Instance{Port: 3306}).Addr(); got != Host+":3306" {
		t.Errorf("Addr() without a host (old state file) = %s", got)
	}
}
