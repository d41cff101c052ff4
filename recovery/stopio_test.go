package recovery

import (
	"testing"

	"github.com/quorumha/quorumha/topology"
)

func TestIOStopHeld(t *testing.T) {
	killing := []topology.Process{{ID: 7, Info: "STOP SLAVE IO_THREAD", State: "Killing slave"}}
	killingMySQL := []topology.Process{{ID: 7, Info: "STOP REPLICA IO_THREAD", State: "Killing replica"}}
	parsing := []topology.Process{{ID: 7, Info: "STOP SLAVE IO_THREAD", State: "starting"}}
	other := []topology.Process{{ID: 8, Info: "SELECT 1", State: "Killing slave"}}
	connecting := &topology.ReplicaStatus{IORunning: topology.IOConnecting, IOThreadState: "Reconnecting after a failed master event read"}
	connected := &topology.ReplicaStatus{IORunning: topology.IOYes}
	stopped := &topology.ReplicaStatus{IORunning: topology.IONo}
	for _, tc := range []struct {
		name  string
		procs []topology.Process
		st    *topology.ReplicaStatus
		want  bool
	}{
		{"killing, reconnecting", killing, connecting, true},
		{"killing, MySQL wording", killingMySQL, connecting, true},
		{"killing, already stopped", killing, stopped, true},
		{"killing, still connected: may still receive", killing, connected, false},
		{"STOP not yet in its killing stage: abort flag maybe unset", parsing, connecting, false},
		{"no STOP statement", other, connecting, false},
		{"no processlist", nil, connecting, false},
		{"killing, no replication", killing, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := ioStopHeld(tc.procs, tc.st)
			if got != tc.want {
				t.Fatalf("ioStopHeld = %v (%q), want %v", got, why, tc.want)
			}
			if got && why == "" {
				t.Fatal("held without a reason for the journal")
			}
		})
	}
}
