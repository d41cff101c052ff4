package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
	"github.com/quorumha/quorumha/tests/harness"
)

// TestBenchFailover runs kill -9 failovers on fresh sandboxes (GTID,
// semi-sync, a 20 ms insert loop as in MHA's measurement) with three
// controllers at default settings, and prints crash → new master writable,
// crash → every surviving replica replicating from it, and acknowledged
// writes lost. It asserts only that each failover happens.
func TestBenchFailover(t *testing.T) {
	skipUnlessBench(t)
	var writable, repointed []time.Duration
	lost := 0
	for i := 0; i < benchRuns(); i++ {
		w, r, l := benchOneFailover(t, false)
		writable, repointed, lost = append(writable, w), append(repointed, r), lost+l
	}
	fmt.Println(summarize("failover: kill -9 master -> new master writable (defaults: probe 500ms x3)", writable))
	fmt.Println(summarize("failover: kill -9 master -> all replicas replicating from it", repointed))
	fmt.Printf("BENCH failover: acknowledged writes lost over %d runs: %d\n", len(writable), lost)
}

// benchOneFailover runs one kill -9 failover; withAgents puts a host agent
// (watching the server's pid file) beside every instance.
func benchOneFailover(t *testing.T, withAgents bool) (writable, repointed time.Duration, lost int) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sb := sandbox.New(t, sandbox.Options{Replicas: 2, GTID: true, SemiSync: true})
	// recovery.fence is required: after the kill -9 the master's agent saying
	// its server is not running is the proof. Without agents there is no
	// proof at all, so that series runs best_effort (and says so).
	clusters := sandboxClusterYAML(sb, "127.0.0.1")
	extra := "recovery:\n  fence: best_effort\n"
	if withAgents {
		clusters, extra = sandboxClusterYAMLWithAgents(sb, startInProcessAgents(ctx, t, sb)), ""
	}
	g := harness.StartGroup(t, bin.Path(t), harness.GroupOptions{N: 3, ClustersYAML: clusters, ExtraYAML: extra, LogLevel: "info"})
	defer func() {
		for _, c := range g.Running() {
			g.Kill(c)
		}
		_ = sb.Stop()
	}()
	e := &detEnv{sb: sb, g: g, master: sb.Instance(0).Addr()}
	if _, err := g.WaitLeader(ctx, g.Nodes); err != nil {
		t.Fatal(err)
	}
	e.waitHealthy(ctx, t)
	f := &masterFollower{sb: sb, g: g}
	load := harness.StartWriteLoad(t, f.dsn, 20*time.Millisecond)
	f.setFailed(func() int { return load.Snapshot().Failed })
	waitAckedAfter(ctx, t, load, 0)

	start := time.Now()
	if err := sb.Kill(0); err != nil {
		t.Fatal(err)
	}
	newMaster := -1
	err := harness.Poll(ctx, 10*time.Millisecond, func() error {
		for i := 1; i < 3; i++ {
			if ro, err := instanceReadOnly(ctx, sb, i); err == nil && !ro {
				newMaster = i
				return nil
			}
		}
		return fmt.Errorf("no replica writable yet")
	})
	if err != nil {
		t.Fatal(err)
	}
	writable = time.Since(start)
	if withAgents {
		logFailoverSteps(ctx, t, g, start)
		if os.Getenv("QUORUMHA_BENCH_LOGS") != "" {
			for _, c := range g.Nodes {
				b, _ := os.ReadFile(c.LogPath)
				t.Logf("---- %s (kill at %s) ----\n%s", c.ID, start.UTC().Format("15:04:05.000"), b)
			}
		}
	}
	other := 3 - newMaster
	err = harness.Poll(ctx, 10*time.Millisecond, func() error {
		st, err := sb.ReplicaStatus(ctx, other)
		if err != nil {
			return err
		}
		if st == nil || st.MasterPort != sb.Instance(newMaster).Port || st.IORunning != "Yes" || st.SQLRunning != "Yes" {
			return fmt.Errorf("replica %d not yet replicating from %d: %+v", other, newMaster, st)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	repointed = time.Since(start)
	waitAckedAfter(ctx, t, load, len(load.Snapshot().Acked))
	st := load.Stop()
	db, err := sb.AdminDB(newMaster)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	missing, err := harness.MissingAcked(ctx, db, st.Acked)
	if err != nil {
		t.Fatal(err)
	}
	return writable, repointed, len(missing)
}

// instanceReadOnly reads @@global.read_only of sandbox instance i.
func instanceReadOnly(ctx context.Context, sb *sandbox.Sandbox, i int) (bool, error) {
	db, err := sb.AdminDB(i)
	if err != nil {
		return false, err
	}
	defer db.Close()
	qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	var ro int
	err = db.QueryRowContext(qctx, "SELECT @@global.read_only").Scan(&ro)
	return ro != 0, err
}
