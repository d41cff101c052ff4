package detector

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
)

// BenchmarkProbe is the cost of one master probe on a kept connection to a
// real MariaDB (CPU time and allocations per probe, as `make bench` prints).
func BenchmarkProbe(b *testing.B) {
	sb := sandbox.New(b, sandbox.Options{Replicas: -1})
	p := NewProber(ProberConfig{Timeout: time.Second})
	defer p.Close()
	target := Target{Addr: sb.Instance(0).Addr(), User: sandbox.AdminUser, Password: sandbox.AdminPassword}
	ctx := context.Background()
	if r := p.Probe(ctx, target); !r.OK {
		b.Fatalf("probe: %+v", r)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if r := p.Probe(ctx, target); !r.OK {
			b.Fatalf("probe: %+v", r)
		}
	}
}

// BenchmarkAssess is the pure quorum rule over five controllers' votes and
// two replicas, run once per cluster per probe tick.
func BenchmarkAssess(b *testing.B) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var votes []Verdict
	zones := map[string]string{}
	for i := range 5 {
		c := fmt.Sprintf("c%d", i)
		zones[c] = fmt.Sprintf("z%d", i%3)
		votes = append(votes, Verdict{Controller: c, Zone: zones[c], Instance: "m:1", State: StateDown, ObservedAt: now, ReceivedAt: now})
	}
	replicas := []ReplicaObservation{{Replica: "r1:1", Reachable: true, MasterHost: "m", MasterPort: 1, IORunning: "Connecting", ObservedAt: now},
		{Replica: "r2:1", Reachable: true, MasterHost: "m", MasterPort: 1, IORunning: "Connecting", ObservedAt: now}}
	rules := Rules{ReplicaCheck: true, Freshness: 6 * time.Second, MultiZone: true}
	b.ReportAllocs()
	for b.Loop() {
		if a := Assess("app1", "m:1", votes, replicas, 5, zones, now, rules); a.State != AssessDeadConfirmed {
			b.Fatalf("state = %s (%s)", a.State, a.Reason)
		}
	}
}
