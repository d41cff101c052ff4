package recovery

import (
	"testing"
	"time"

	"github.com/quorumha/quorumha/fsm"
)

func TestAutoFailoverAllowed_Rules(t *testing.T) {
	failedAt := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
	failed := fsm.ClusterState{Name: "app1", LastFailover: failedAt, LastFailoverID: 12}
	acked := failed
	acked.AckedAt, acked.AckedBy = failedAt.Add(5*time.Minute), "alice"
	staleAck := failed
	staleAck.AckedAt = failedAt.Add(-time.Hour) // acknowledged an earlier failover
	maint := fsm.ClusterState{Name: "app1", MaintenanceUntil: failedAt.Add(2 * time.Hour),
		MaintenanceBy: "bob", MaintenanceReason: "kernel upgrade"}
	both := failed
	both.MaintenanceUntil = maint.MaintenanceUntil
	bare := fsm.ClusterState{Name: "app1", MaintenanceUntil: maint.MaintenanceUntil}

	antiFlap := "last failover #12 at 2026-11-23T01:00:00Z is within anti_flap 1h (until 2026-11-23T02:00:00Z); " +
		"acknowledge with `quorumha ack --cluster app1`"
	tests := []struct {
		name   string
		state  fsm.ClusterState
		now    time.Time
		window time.Duration
		ok     bool
		reason string
	}{
		{"never failed over", fsm.ClusterState{Name: "app1"}, failedAt, time.Hour, true, "no previous failover"},
		{"inside anti_flap", failed, failedAt.Add(30 * time.Minute), time.Hour, false, antiFlap},
		{"clock behind the failover counts as inside", failed, failedAt.Add(-time.Minute), time.Hour, false, antiFlap},
		{"window over", failed, failedAt.Add(time.Hour), time.Hour, true,
			"last failover #12 at 2026-11-23T01:00:00Z is older than anti_flap 1h"},
		{"acknowledged", acked, failedAt.Add(10 * time.Minute), time.Hour, true,
			"last failover #12 acknowledged by alice at 2026-11-23T01:05:00Z"},
		{"ack of an earlier failover does not count", staleAck, failedAt.Add(10 * time.Minute), 8 * time.Minute, true,
			"last failover #12 at 2026-11-23T01:00:00Z is older than anti_flap 8m"},
		{"ack of an earlier failover, inside window", staleAck, failedAt.Add(10 * time.Minute), 90 * time.Minute, false,
			"last failover #12 at 2026-11-23T01:00:00Z is within anti_flap 1h30m (until 2026-11-23T02:30:00Z); " +
				"acknowledge with `quorumha ack --cluster app1`"},
		{"anti_flap disabled", failed, failedAt.Add(time.Minute), 0, true, "anti_flap disabled"},
		{"maintenance", maint, failedAt, time.Hour, false,
			"maintenance until 2026-11-23T03:00:00Z by bob: kernel upgrade"},
		{"maintenance without who or why", bare, failedAt, time.Hour, false,
			"maintenance until 2026-11-23T03:00:00Z"},
		{"maintenance ended", maint, maint.MaintenanceUntil, time.Hour, true, "no previous failover"},
		{"maintenance and anti_flap", both, failedAt.Add(time.Minute), time.Hour, false,
			"maintenance until 2026-11-23T03:00:00Z; " + antiFlap},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, reason := AutoFailoverAllowed(tt.state, tt.now, tt.window)
			if ok != tt.ok || reason != tt.reason {
				t.Errorf("got (%v, %q)\nwant (%v, %q)", ok, reason, tt.ok, tt.reason)
			}
		})
	}
}
