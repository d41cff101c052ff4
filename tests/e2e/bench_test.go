package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
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

// sandboxClusterYAML is the clusters: entry for a sandbox, for GroupOptions.
func sandboxClusterYAML(sb *sandbox.Sandbox, host string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: sandbox\n    user: %s\n    password: %s\n    repl_user: %s\n    repl_password: %s\n    instances:\n",
		sandbox.AdminUser, sandbox.AdminPassword, sandbox.ReplUser, sandbox.ReplPassword)
	for _, in := range sb.Instances() {
		fmt.Fprintf(&b, "      - address: %s:%d\n", host, in.Port)
	}
	return b.String()
}

// assessmentState reads the live assessment of cluster sandbox on c.
func assessmentState(ctx context.Context, c *harness.Controller) (string, error) {
	var resp struct {
		Cluster struct {
			Topology struct {
				Assessment struct {
					State string `json:"state"`
				} `json:"assessment"`
			} `json:"topology"`
		} `json:"cluster"`
	}
	if _, err := harness.Do(ctx, http.MethodGet, c.URL("/v1/clusters/sandbox"), nil, &resp); err != nil {
		return "", err
	}
	return resp.Cluster.Topology.Assessment.State, nil
}

// recordCount is the number of history records c serves.
func recordCount(ctx context.Context, c *harness.Controller) (int, error) {
	var h struct {
		Records []json.RawMessage `json:"records"`
	}
	if _, err := harness.Do(ctx, http.MethodGet, c.URL("/v1/history"), nil, &h); err != nil {
		return 0, err
	}
	return len(h.Records), nil
}

// TestBenchDetection measures kill -9 of the master → a committed decision
// record on the leader, at default detector settings (1 s probes, threshold
// 3). A maintenance window keeps the master where it is (the decision is
// committed and refused), so between runs it is restarted and seen healthy
// again, and each kill is a new incident.
func TestBenchDetection(t *testing.T) {
	skipUnlessBench(t)
	sb := sandbox.New(t, sandbox.Options{Replicas: 2, GTID: true})
	g := harness.StartGroup(t, bin.Path(t), harness.GroupOptions{N: 3, ClustersYAML: sandboxClusterYAML(sb, "127.0.0.1"), LogLevel: "info"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := g.WaitLeader(ctx, g.Nodes); err != nil {
		t.Fatal(err)
	}
	if _, err := harness.Do(ctx, http.MethodPost, g.Nodes[0].URL("/v1/clusters/sandbox/maintenance"),
		map[string]string{"duration": "1h", "reason": "benchmark: decide, do not fail over"}, nil); err != nil {
		t.Fatal(err)
	}
	var took []time.Duration
	for i := 0; i < benchRuns(); i++ {
		leader, err := g.WaitLeader(ctx, g.Nodes)
		if err != nil {
			t.Fatal(err)
		}
		lc := g.Node(leader.ID)
		if err := harness.Poll(ctx, 100*time.Millisecond, func() error {
			st, err := assessmentState(ctx, lc)
			if err == nil && st != "healthy" {
				err = fmt.Errorf("assessment %s", st)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		before, err := recordCount(ctx, lc)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := sb.Kill(0); err != nil {
			t.Fatal(err)
		}
		if err := harness.Poll(ctx, 20*time.Millisecond, func() error {
			n, err := recordCount(ctx, lc)
			if err == nil && n == before {
				err = fmt.Errorf("no new record")
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		took = append(took, time.Since(start))
		if err := sb.StartInstance(ctx, 0); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Println(summarize("detection (kill -9 master -> decision committed, defaults: probe 500ms x3)", took))
}

// benchPhases collects, over the runs of a failover benchmark, how long
// each part took: cut -> record opened (detection and decision), each
// step of the record (its journalled start to end, so the raft round trips
// of the journal between steps show as "between steps"), and the last
// step's end -> first writable answer to a client.
type benchPhases struct {
	order []string
	d     map[string][]time.Duration
}

func (b *benchPhases) put(name string, d time.Duration) {
	if b.d == nil {
		b.d = map[string][]time.Duration{}
	}
	if _, ok := b.d[name]; !ok {
		b.order = append(b.order, name)
	}
	b.d[name] = append(b.d[name], d)
}

// add records one run and logs its phases.
func (b *benchPhases) add(t *testing.T, rec foRecord, cut, writable time.Time) {
	t.Helper()
	var parts []string
	note := func(name string, d time.Duration) {
		b.put(name, d)
		parts = append(parts, fmt.Sprintf("%s %s", name, d.Round(time.Millisecond)))
	}
	note("cut->decision", rec.Opened.Sub(cut))
	var inSteps time.Duration
	for _, s := range rec.Steps {
		if s.End.IsZero() {
			continue
		}
		d := s.End.Sub(s.Start)
		inSteps += d
		note(s.Name, d)
	}
	if len(rec.Steps) > 0 {
		first, last := rec.Steps[0].Start, rec.Steps[len(rec.Steps)-1].End
		note("decision->first step", first.Sub(rec.Opened))
		note("between steps", last.Sub(first)-inSteps)
		if !writable.IsZero() {
			note("decision->writable", writable.Sub(rec.Opened))
		}
	}
	t.Logf("record %d phases: %s", rec.ID, strings.Join(parts, ", "))
	for _, s := range rec.Steps {
		if s.End.Sub(s.Start) >= 100*time.Millisecond {
			t.Logf("  step %s (+%s after the cut, %s): %s: %s", s.Name, s.Start.Sub(cut).Round(time.Millisecond),
				s.End.Sub(s.Start).Round(time.Millisecond), s.Outcome, s.Detail)
		}
	}
}

func (b *benchPhases) print(what string) {
	for _, name := range b.order {
		fmt.Println(summarize(what+": "+name, b.d[name]))
	}
}
