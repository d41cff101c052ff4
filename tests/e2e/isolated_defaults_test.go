package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/quorumha/quorumha/tests/harness"
)

// isoDefaultsFailoverLimit is how soon after the cut the new master must
// be writable with slave_net_timeout=60: generous (the figure belongs to
// TestBenchIsolatedMaster), but well below the 60 s the replicas' IO
// threads would take to notice, which is what detection waited for before
// the replica hosts' agents and heartbeats were asked.
const isoDefaultsFailoverLimit = 30 * time.Second

// TestIsolatedMaster_DefaultSlaveNetTimeout is scenario 24 at MariaDB's
// default slave_net_timeout (60 s, heartbeat 30 s) on every server (issue
// 14): the master's host vanishes (every packet dropped both ways, no
// RST). The replicas' IO threads still say "Yes" for a minute, so "the
// replicas lost the master" must come from the replica hosts' agents. The
// group must fail over well before 60 s, with a proven fence, lose no
// acknowledged write of the writer following /v1/clusters/{c}/master, and
// never have two writable servers; the old master acknowledges nothing
// after the new one is writable.
func TestIsolatedMaster_DefaultSlaveNetTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MariaDB servers, agents and controllers in network namespaces")
	}
	lane(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	e := startIsolatedEnvWith(ctx, t, "info", isoOptions{SlaveNetTimeout: 60})
	if e.fencing {
		if err := e.waitLeaseHeld(ctx); err != nil {
			t.Errorf("the master's lease is never held, so its agent will not fence it: %v", err)
		}
	}
	_, samplers := e.samplers(t)
	zoneLoad := e.zoneWriter(ctx, t, 20*time.Millisecond)
	groupLoad := e.groupWriter(ctx, t, 20*time.Millisecond)
	old := e.sb.Instance(0).Addr()
	after := e.fo.lastRecordID(ctx, t)

	cut := time.Now()
	e.cutMaster()
	e.waitDecision(ctx, t, after, 2*time.Minute)
	rec := e.fo.waitFailoverClosed(ctx, t, e.g.Running(), after)
	requireSuccessRecord(t, rec, old, "", "automatic")
	if f, _, err := isoRecordFence(ctx, e.g.Running()[0], rec.ID); err != nil {
		t.Fatal(err)
	} else if f == nil || f.State != "proven" {
		t.Errorf("record %d promoted without a proven fence: %s", rec.ID, f)
	}
	newIdx := e.fo.index(rec.NewMaster)
	if newIdx < 1 {
		t.Fatalf("new master %s is not a replica of the sandbox", rec.NewMaster)
	}
	waitAckedAfter(ctx, t, groupLoad, len(groupLoad.Snapshot().Acked))
	zoneStats := zoneLoad.Stop()
	groupStats := groupLoad.Stop()
	samples := allSamples(samplers)

	firstNew, ok := harness.FirstObserved(samples, rec.NewMaster, harness.Writable, cut)
	if !ok {
		t.Fatalf("new master %s never observed writable", rec.NewMaster)
	}
	took := firstNew.Answered.Sub(cut)
	t.Logf("FIGURES isolated master, slave_net_timeout=60: cut -> decision %s, cut -> new master %s writable %s",
		rec.Opened.Sub(cut).Round(time.Millisecond), rec.NewMaster, took.Round(time.Millisecond))
	if took > isoDefaultsFailoverLimit {
		t.Errorf("new master writable %s after the cut, want well before slave_net_timeout (limit %s)", took, isoDefaultsFailoverLimit)
	}
	var v []harness.Violation
	v = append(v, harness.CheckNeverTwoWritable(samples, harness.DefaultMaxGap)...)
	v = append(v, harness.CheckNoAckAfter(zoneStats.Acks, firstNew.Answered)...)
	have, err := e.loadIDs(ctx, newIdx)
	if err != nil {
		t.Fatal(err)
	}
	v = append(v, harness.CheckNothingLost(groupStats.Acked, have)...)
	if len(v) > 0 {
		t.Errorf("%d violations:%s", len(v), harness.Violations(v))
	}
}
