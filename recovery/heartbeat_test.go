package recovery

import (
	"testing"
	"time"
)

// TestChangeMasterOptions_Heartbeat: every CHANGE MASTER quorumha runs
// (catch-up, repoint, switchover) carries detector.replica_heartbeat, so the
// detector's replica view can tell a silent master within two periods.
func TestChangeMasterOptions_Heartbeat(t *testing.T) {
	for _, tt := range []struct {
		period time.Duration
		want   float64
	}{{time.Second, 1}, {250 * time.Millisecond, 0.25}, {0, 0}} {
		r := &failoverRun{cc: ClusterConfig{ReplUser: "repl", ReplPassword: "pw", HeartbeatPeriod: tt.period}}
		o, _ := r.changeMasterOptions(nil, "10.0.0.2", 3306)
		if o.HeartbeatPeriod != tt.want {
			t.Errorf("replica_heartbeat %s: MASTER_HEARTBEAT_PERIOD %v, want %v", tt.period, o.HeartbeatPeriod, tt.want)
		}
	}
}
