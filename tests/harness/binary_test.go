package harness

import "testing"

// Ports handed to one parallel test must never go to another, and must
// come from below the ephemeral range, where bind(:0) and connect() do not
// pick.
func TestFreePorts_DistinctAndBelowEphemeral(t *testing.T) {
	low := ephemeralLow()
	seen := map[int]bool{}
	for range 20 {
		for _, p := range FreePorts(t, 5) {
			if seen[p] {
				t.Fatalf("port %d handed out twice", p)
			}
			seen[p] = true
			if high := low; high-portLow >= 1000 && (p < portLow || p >= high) {
				t.Fatalf("port %d outside %d-%d", p, portLow, high-1)
			}
		}
	}
}
