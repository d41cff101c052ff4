package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestBenchSalvage prints what the binlog salvage adds to a failover: for
// N transactions that only the dead master had (async replication, both
// replicas' IO threads stopped), the salvage step's duration as journalled,
// and kill -9 → failover record closed. It asserts only that the N
// transactions arrive on the new master.
func TestBenchSalvage(t *testing.T) {
	skipUnlessBench(t)
	for _, n := range []int{0, 25, 1000, 10000} {
		var step, total []time.Duration
		for i := 0; i < max(benchRuns()/2, 2); i++ {
			s, tot := benchOneSalvage(t, n)
			step, total = append(step, s), append(total, tot)
		}
		fmt.Println(summarize(fmt.Sprintf("salvage: %d transactions only on the dead master -> salvage step", n), step))
		fmt.Println(summarize(fmt.Sprintf("salvage: %d transactions only on the dead master -> kill -9 to failover closed", n), total))
	}
}

func benchOneSalvage(t *testing.T, n int) (step, total time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	e, _ := salvageEnv(ctx, t)
	defer func() {
		for _, c := range e.g.Running() {
			e.g.Kill(c)
		}
		_ = e.sb.Stop()
	}()
	ids := writeOnlyOnMaster(ctx, t, e, n)
	before := e.lastRecordID(ctx, t)
	start := time.Now()
	if err := e.sb.Kill(0); err != nil {
		t.Fatal(err)
	}
	rec := e.waitFailoverClosed(ctx, t, e.g.Running()[:1], before)
	total = time.Since(start)
	if rec.Result != "success" || rec.Salvage == nil || rec.Salvage.Applied != n {
		t.Fatalf("salvage of %d: %s salvage %+v", n, rec.summary(), rec.Salvage)
	}
	e.requireRows(ctx, t, e.index(rec.NewMaster), ids)
	st, _ := rec.step("salvage")
	return st.End.Sub(st.Start), total
}
