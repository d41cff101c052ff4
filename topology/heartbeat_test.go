package topology

import (
	"database/sql"
	"strings"
	"testing"
	"time"
)

func TestParseReplicaHeartbeat_MySQL(t *testing.T) {
	tests := []struct {
		file string
		want ReplicaHeartbeat
	}{
		{"mysql-8.0.36-heartbeat.txt", ReplicaHeartbeat{Received: 1834, Period: 30 * time.Second,
			Last: time.Date(2026, 11, 23, 2, 0, 41, 518392000, time.UTC)}},
		{"mysql-8.0.36-heartbeat-never.txt", ReplicaHeartbeat{Received: 0, Period: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			cols, vals := readVertical(t, tt.file)
			hb, ok, err := ParseReplicaHeartbeat(false, cols, [][]sql.NullString{vals})
			if err != nil || !ok || hb != tt.want {
				t.Errorf("got %+v ok=%t err=%v, want %+v", hb, ok, err, tt.want)
			}
		})
	}
	if _, ok, err := ParseReplicaHeartbeat(false, []string{"a", "b", "c"}, nil); ok || err != nil {
		t.Errorf("no default channel: ok=%t err=%v, want not ok, no error", ok, err)
	}
	bad := [][]sql.NullString{{{String: "many", Valid: true}, {}, {String: "1", Valid: true}}}
	if _, _, err := ParseReplicaHeartbeat(false, []string{"a", "b", "c"}, bad); err == nil {
		t.Error("a count that is no number parsed")
	}
}

func TestParseReplicaHeartbeat_MariaDB(t *testing.T) {
	row := func(k, v string) []sql.NullString {
		return []sql.NullString{{String: k, Valid: true}, {String: v, Valid: true}}
	}
	cols := []string{"Variable_name", "Value"}
	hb, ok, err := ParseReplicaHeartbeat(true, cols, [][]sql.NullString{
		row("Slave_heartbeat_period", "1.000"), row("Slave_received_heartbeats", "57")})
	if want := (ReplicaHeartbeat{Received: 57, Period: time.Second}); err != nil || !ok || hb != want {
		t.Errorf("got %+v ok=%t err=%v, want %+v", hb, ok, err, want)
	}
	if _, ok, err := ParseReplicaHeartbeat(true, cols, [][]sql.NullString{row("Slave_heartbeat_period", "0.000")}); ok || err != nil {
		t.Errorf("no count: ok=%t err=%v", ok, err)
	}
	if _, _, err := ParseReplicaHeartbeat(true, cols, [][]sql.NullString{row("Slave_heartbeat_period", "soon")}); err == nil {
		t.Error("a period that is no number parsed")
	}
}

func TestCheckDetectionSettings(t *testing.T) {
	tests := []struct {
		name        string
		period, net time.Duration
		mariadb     bool
		want        int
		containsAll []string
	}{
		{"set by quorumha", time.Second, 30 * time.Second, true, 0, nil},
		{"exactly twice is fine", 2 * time.Second, 30 * time.Second, true, 0, nil},
		{"MariaDB defaults", 30 * time.Second, 60 * time.Second, true, 2,
			[]string{"STOP SLAVE; CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD = 1; START SLAVE", "SET GLOBAL slave_net_timeout = 30"}},
		{"MySQL heartbeat off", 0, 10 * time.Second, false, 1,
			[]string{"CHANGE REPLICATION SOURCE TO SOURCE_HEARTBEAT_PERIOD = 1", "off", "slave_net_timeout (10s)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckDetectionSettings(tt.period, tt.net, time.Second, 30*time.Second, tt.mariadb)
			if len(got) != tt.want {
				t.Fatalf("%d problems %q, want %d", len(got), got, tt.want)
			}
			all := strings.Join(got, "\n")
			for _, s := range tt.containsAll {
				if !strings.Contains(all, s) {
					t.Errorf("%q lacks %q", all, s)
				}
			}
		})
	}
	if got := CheckDetectionSettings(time.Hour, time.Hour, 0, 0, true); len(got) != 0 {
		t.Errorf("checks off: %q", got)
	}
}

func TestChangeMasterSQL_HeartbeatPeriod(t *testing.T) {
	o := ChangeMasterOptions{Host: "10.0.0.1", Port: 3306, User: "repl", Password: "pw", UseGTID: true, HeartbeatPeriod: 1}
	for _, tt := range []struct {
		version, want string
		period        float64
	}{
		{"10.11.6-MariaDB", "MASTER_HEARTBEAT_PERIOD = 1,", 1},
		{"8.0.36", "SOURCE_HEARTBEAT_PERIOD = 0.25,", 0.25},
		{"5.7.44", "MASTER_HEARTBEAT_PERIOD = 2,", 2},
	} {
		o.HeartbeatPeriod = tt.period
		got, err := mustVersion(t, tt.version).ChangeMasterSQL(o)
		if err != nil || !strings.Contains(got, tt.want) {
			t.Errorf("%s: %q, %v; want it to contain %q", tt.version, got, err, tt.want)
		}
	}
}
