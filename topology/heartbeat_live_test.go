package topology_test

import (
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
	"github.com/quorumha/quorumha/topology"
)

// TestLive_ReplicaHeartbeat reads a real MariaDB replica's heartbeats: the
// period set by CHANGE MASTER, and a count that grows while the master is
// idle.
func TestLive_ReplicaHeartbeat(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts MariaDB servers")
	}
	sb := sandbox.New(t, sandbox.Options{Replicas: 1, GTID: true})
	if err := sb.WaitReplicating(liveCtx(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	r := liveConns(t, sb)[1]
	ctx := liveCtx(t, 10*time.Second)
	for _, q := range []string{"STOP SLAVE", "CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD = 0.2", "START SLAVE"} {
		if _, err := r.DB().ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	first, ok, err := topology.ReadReplicaHeartbeat(ctx, r.DB(), true)
	if err != nil || !ok || first.Period != 200*time.Millisecond {
		t.Fatalf("heartbeats = %+v ok=%t err=%v, want period 200ms", first, ok, err)
	}
	eventually(t, "heartbeats to arrive", func() bool {
		hb, ok, err := topology.ReadReplicaHeartbeat(ctx, r.DB(), true)
		return err == nil && ok && hb.Received > first.Received+2
	})
	// The monitor's view: no heartbeat setting of ours is older than 2s.
	if p := topology.CheckDetectionSettings(first.Period, 30*time.Second, time.Second, 30*time.Second, true); len(p) != 0 {
		t.Errorf("problems for a replica set up as quorumha does: %q", p)
	}
}
