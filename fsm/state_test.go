package fsm

import (
	"testing"
	"time"
)

func TestClusterState_AntiFlapActive(t *testing.T) {
	failedAt := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
	window := 8 * time.Minute
	tests := []struct {
		name   string
		c      ClusterState
		now    time.Time
		window time.Duration
		want   bool
	}{
		{"never failed over", ClusterState{}, failedAt, window, false},
		{"just after failover", ClusterState{LastFailover: failedAt, LastFailoverID: 7}, failedAt.Add(time.Second), window, true},
		{"at failover instant", ClusterState{LastFailover: failedAt}, failedAt, window, true},
		{"just inside window", ClusterState{LastFailover: failedAt}, failedAt.Add(window - time.Nanosecond), window, true},
		{"window elapsed exactly", ClusterState{LastFailover: failedAt}, failedAt.Add(window), window, false},
		{"long after", ClusterState{LastFailover: failedAt}, failedAt.Add(time.Hour), window, false},
		{"now before failover (skew)", ClusterState{LastFailover: failedAt}, failedAt.Add(-time.Minute), window, true},
		{"acked after failover", ClusterState{LastFailover: failedAt, AckedAt: failedAt.Add(time.Minute)}, failedAt.Add(2 * time.Minute), window, false},
		{"acked at failover instant", ClusterState{LastFailover: failedAt, AckedAt: failedAt}, failedAt.Add(time.Minute), window, false},
		{"ack older than failover", ClusterState{LastFailover: failedAt, AckedAt: failedAt.Add(-time.Hour)}, failedAt.Add(time.Minute), window, true},
		{"zero window disables", ClusterState{LastFailover: failedAt}, failedAt.Add(time.Second), 0, false},
		{"negative window disables", ClusterState{LastFailover: failedAt}, failedAt.Add(time.Second), -time.Minute, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.AntiFlapActive(tt.now, tt.window); got != tt.want {
				t.Errorf("AntiFlapActive(%v, %v) = %v, want %v", tt.now, tt.window, got, tt.want)
			}
		})
	}
}

func TestClusterState_InMaintenance(t *testing.T) {
	until := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		c    ClusterState
		now  time.Time
		want bool
	}{
		{"no window", ClusterState{}, until, false},
		{"before end", ClusterState{MaintenanceUntil: until}, until.Add(-time.Minute), true},
		{"at end", ClusterState{MaintenanceUntil: until}, until, false},
		{"after end", ClusterState{MaintenanceUntil: until}, until.Add(time.Second), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.InMaintenance(tt.now); got != tt.want {
				t.Errorf("InMaintenance(%v) = %v, want %v", tt.now, got, tt.want)
			}
		})
	}
}

func TestRecord_CloneSharesNothing(t *testing.T) {
	r := Record{
		ID:         1,
		Evidence:   []byte(`{"a":1}`),
		Candidates: []Candidate{{Address: "a"}},
		Steps:      []Step{{Seq: 1, Name: "fence"}},
	}
	c := r.Clone()
	c.Evidence[2] = 'b'
	c.Candidates[0].Address = "x"
	c.Steps[0].Name = "x"
	if string(r.Evidence) != `{"a":1}` || r.Candidates[0].Address != "a" || r.Steps[0].Name != "fence" {
		t.Fatalf("modifying the clone changed the original: %+v", r)
	}
}
