package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/quorumha/quorumha/tests/harness"
)

// benchRuns is how many rounds a printed benchmark does; QUORUMHA_BENCH_RUNS
// overrides it.
func benchRuns() int {
	if n, err := strconv.Atoi(os.Getenv("QUORUMHA_BENCH_RUNS")); err == nil && n > 0 {
		return n
	}
	return 7
}

func skipUnlessBench(t *testing.T) {
	t.Helper()
	if os.Getenv("QUORUMHA_BENCH") == "" {
		t.Skip("benchmark: run with `make bench` (QUORUMHA_BENCH=1)")
	}
}

// TestBenchLeaderFailover measures kill -9 of the leader controller → the
// survivors agree on a new leader whose HTTP address they know. It prints
// figures; it asserts only that a new leader appears at all.
func TestBenchLeaderFailover(t *testing.T) {
	skipUnlessBench(t)
	var took []time.Duration
	for i := 0; i < benchRuns(); i++ {
		g := harness.StartGroup(t, bin.Path(t), harness.GroupOptions{N: 3, ClustersYAML: clustersYAML})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		leader, err := g.WaitLeader(ctx, g.Nodes)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		old := g.Node(leader.ID)
		start := time.Now()
		g.Kill(old)
		if _, err := g.WaitLeaderEvery(ctx, otherThan(g.Nodes, old.ID), 10*time.Millisecond); err != nil {
			cancel()
			t.Fatal(err)
		}
		took = append(took, time.Since(start))
		cancel()
		for _, c := range g.Running() {
			g.Kill(c)
		}
	}
	fmt.Println(summarize("leader failover (kill -9 leader -> survivors agree on new leader)", took))
}

// summarize formats median, p95 and max of a set of durations.
func summarize(what string, d []time.Duration) string {
	s := slices.Clone(d)
	slices.Sort(s)
	p := func(q float64) time.Duration { return s[int(q*float64(len(s)-1)+0.5)] }
	return fmt.Sprintf("BENCH %s: runs=%d median=%v p95=%v max=%v min=%v",
		what, len(s), p(0.5).Round(time.Millisecond), p(0.95).Round(time.Millisecond),
		s[len(s)-1].Round(time.Millisecond), s[0].Round(time.Millisecond))
}
