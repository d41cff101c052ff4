package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/tests/harness"
)

// isoBenchFenceWait bounds how long a run waits, after the cut, for the old
// master to be seen read-only; a run that never sees it counts as "never".
const isoBenchFenceWait = 30 * time.Second

// TestBenchIsolatedMaster runs scenario 24 on fresh environments (master
// and agents in their own zones, fencing on, lease TTL 2 s, writers on
// both sides) and prints cut → new master writable (first writable answer
// to any sampler) and cut → old master fenced (first read_only=1 answer to
// the sampler inside the master's zone), with the samplers' 50 ms
// resolution. It asserts only that each failover happens.
func TestBenchIsolatedMaster(t *testing.T) {
	skipUnlessBench(t)
	var writable, fenced []time.Duration
	never := 0
	phases := &benchPhases{}
	for i := 0; i < benchRuns(); i++ {
		t.Run(fmt.Sprintf("run%d", i+1), func(t *testing.T) {
			w, f, ok := benchOneIsolation(t, phases)
			writable = append(writable, w)
			if ok {
				fenced = append(fenced, f)
			} else {
				never++
			}
		})
	}
	if len(writable) > 0 {
		fmt.Println(summarize(fmt.Sprintf("isolated master: cut -> new master writable (probe 500ms, slave_net_timeout %ds)", isoBenchSlaveNetTimeout), writable))
	}
	phases.print("isolated master")
	if len(fenced) > 0 {
		fmt.Println(summarize(fmt.Sprintf("isolated master: cut -> old master read-only, seen from its zone (lease ttl %s)", isoLeaseTTL), fenced))
	}
	fmt.Printf("BENCH isolated master: runs in which the old master was never seen read-only within %s of the cut: %d of %d\n",
		isoBenchFenceWait, never, len(writable))
}

// isoBenchSlaveNetTimeout is the servers' slave_net_timeout in the
// benchmark: MariaDB's default, so the replicas' IO threads do not help
// detection and stop_io meets them still waiting for the silent master.
const isoBenchSlaveNetTimeout = 60

func benchOneIsolation(t *testing.T, phases *benchPhases) (writable, fenced time.Duration, wasFenced bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e := startIsolatedEnvWith(ctx, t, "info", isoOptions{SlaveNetTimeout: isoBenchSlaveNetTimeout})
	if e.fencing {
		if err := e.waitLeaseHeld(ctx); err != nil {
			t.Logf("the master's lease is never held: %v", err)
		}
	}
	zoneSampler, samplers := e.samplers(t)
	e.zoneWriter(ctx, t, 20*time.Millisecond)
	e.groupWriter(ctx, t, 20*time.Millisecond)
	old := e.sb.Instance(0).Addr()
	after := e.fo.lastRecordID(ctx, t)

	cut := time.Now()
	e.cutMaster()
	e.waitDecision(ctx, t, after, 2*time.Minute)
	rec := e.fo.waitFailoverClosed(ctx, t, e.g.Running(), after)
	if rec.Result != "success" {
		t.Fatalf("no failover: %s", rec.summary())
	}
	var newFirst harness.Sample
	err := harness.Poll(ctx, 20*time.Millisecond, func() error {
		for _, s := range samplers {
			if smp, ok := harness.FirstObserved(s.Samples(), rec.NewMaster, harness.Writable, cut); ok &&
				(newFirst.Answered.IsZero() || smp.Answered.Before(newFirst.Answered)) {
				newFirst = smp
			}
		}
		if newFirst.Answered.IsZero() {
			return fmt.Errorf("new master %s not yet seen writable", rec.NewMaster)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithDeadline(ctx, cut.Add(isoBenchFenceWait))
	ro, err := zoneSampler.WaitSample(wctx, old, cut, harness.ReadOnly)
	wcancel()
	writable = newFirst.Answered.Sub(cut)
	phases.add(t, rec, cut, newFirst.Answered)
	if rec.Opened.Sub(cut) > isoBenchSlowDecision {
		logAssessmentChanges(t, e.g, cut)
	}
	if err == nil {
		fenced, wasFenced = ro.Answered.Sub(cut), true
	}
	t.Logf("run: cut -> new master %s writable %s, old master fenced %s", rec.NewMaster,
		writable.Round(time.Millisecond), fmtTook(fenced, wasFenced))
	return writable, fenced, wasFenced
}

// isoBenchSlowDecision is the cut -> decision time above which a run logs
// every controller's assessment changes, to show what held the decision.
const isoBenchSlowDecision = 4 * time.Second

// logAssessmentChanges logs each controller's "assessment changed" and
// decision lines since since.
func logAssessmentChanges(t *testing.T, g *harness.Group, since time.Time) {
	t.Helper()
	for _, c := range g.Nodes {
		b, err := os.ReadFile(c.LogPath)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.Contains(line, "assessment changed") && !strings.Contains(line, "decision") &&
				!strings.Contains(line, "recheck") {
				continue
			}
			if at, ok := logTime(line); ok && at.Before(since) {
				continue
			}
			t.Logf("%s: %s", c.ID, line)
		}
	}
}

// logTime reads the time=... field of a slog text line.
func logTime(line string) (time.Time, bool) {
	i := strings.Index(line, "time=")
	if i < 0 {
		return time.Time{}, false
	}
	f := strings.Fields(line[i+len("time="):])
	if len(f) == 0 {
		return time.Time{}, false
	}
	at, err := time.Parse(time.RFC3339Nano, f[0])
	return at, err == nil
}
