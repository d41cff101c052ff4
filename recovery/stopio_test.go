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

func TestWaitingIOThread(t *testing.T) {
	io := func(id uint64, state string) topology.Process {
		return topology.Process{ID: id, User: "system user", Command: "Slave_IO", State: state}
	}
	sqlT := topology.Process{ID: 7, User: "system user", Command: "Slave_SQL", State: "Slave has read all relay log; waiting for more updates"}
	for _, tc := range []struct {
		name  string
		procs []topology.Process
		id    uint64
		ok    bool
	}{
		{"waiting for events", []topology.Process{sqlT, io(6, "Waiting for master to send event")}, 6, true},
		{"no IO thread", []topology.Process{sqlT}, 0, false},
		{"reconnecting: the STOP handles it", []topology.Process{io(6, "Reconnecting after a failed master event read")}, 0, false},
		{"queueing an event", []topology.Process{io(6, "Queueing master event to the relay log")}, 0, false},
		{"two sources: not ours to kill", []topology.Process{io(6, "Waiting for master to send event"), io(9, "Waiting for master to send event")}, 0, false},
		{"a client thread", []topology.Process{{ID: 3, User: "app", Command: "Query", State: "Waiting for master to send event"}}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, ok := waitingIOThread(tc.procs)
			if id != tc.id || ok != tc.ok {
				t.Fatalf("waitingIOThread = %d, %v; want %d, %v", id, ok, tc.id, tc.ok)
			}
		})
	}
}
