package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/quorumha/quorumha/sandbox"
)

// Rejoin in file/position mode: the failover's journal (catch_up
// old_master_exec=, promote binlog=) says where the new master stopped
// applying the old master's binlog and where its own binlog started; the
// old master rejoins only when its binlog holds no transaction after the
// first, and replicates from the second.

// The clean case: a semi-sync file/position cluster, the master killed,
// failover, the old master restarted (its binlog rotates: bookkeeping
// events only); it rejoins from the journalled coordinate and then has
// exactly the new master's rows.
func TestRejoinFile_CleanAfterKill(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), foTimeout)
	defer cancel()
	e := startFilePositionEnv(ctx, t, foOptions{Instances: map[int][]string{1: {"candidate_master: true"}}})
	e.writeRows(ctx, t, 0, "before_kill", 1, 2, 3)
	e.waitTableEverywhere(ctx, t, "before_kill")
	e.requireSameRows(ctx, t, "before_kill", 1, 0)

	rec := e.killMasterAndWaitFailover(ctx, t, 0)
	requireSuccessRecord(t, rec, e.addr(0), e.addr(1), "automatic")
	e.requireNewMaster(ctx, t, 1)
	e.writeRows(ctx, t, 1, "before_kill", 4, 5) // the new master moves on
	e.restartReadOnly(ctx, t, 0)

	addr := e.g.Running()[0].HTTPAddr
	out, code := cli(ctx, t, "rejoin", "--cluster", detCluster, "--instance", e.addr(0), "--dry-run", "--addr", addr)
	coord := regexp.MustCompile(`from (\S+:\d+), where`).FindStringSubmatch(out)
	if code != 0 || !strings.Contains(out, "would rejoin") || coord == nil {
		t.Fatalf("dry run: exit %d, want a rejoin from a binlog coordinate\n%s", code, out)
	}
	if st, ok := rec.step("promote"); !ok || !strings.Contains(st.Detail, "binlog="+coord[1]) {
		t.Fatalf("dry run starts from %s, not the promote step's coordinate: %+v", coord[1], st)
	}
	out, code = cli(ctx, t, "rejoin", "--cluster", detCluster, "--instance", e.addr(0), "--addr", addr)
	if code != 0 {
		t.Fatalf("rejoin: exit %d\n%s", code, out)
	}
	r := e.rejoinRecord(ctx, t)
	if r.Result != "success" || r.OldMaster != e.addr(0) {
		t.Fatalf("rejoin record: %s", r.summary())
	}
	for _, s := range []string{"check", "clear_fence", "change_master", "start_replica"} {
		if st, ok := r.step(s); !ok || st.Outcome != "ok" {
			t.Errorf("step %s: %+v", s, st)
		}
	}
	if st, _ := r.step("change_master"); !strings.Contains(st.Detail, coord[1][:strings.LastIndexByte(coord[1], ':')]) {
		t.Errorf("change_master does not name the binlog file of %s: %s", coord[1], st.Detail)
	}
	e.requireRejoined(ctx, t, 0, 1)
	e.requireSameRows(ctx, t, "before_kill", 0, 1)
	e.sampler.require(t)
}

// The errant case: asynchronous replication with the replicas' IO threads
// stopped, writes acknowledged by the master alone, no agent (no salvage),
// the master killed: the old master's binlog holds transactions the new
// master never received. Rejoin refuses, naming the file and positions,
// and changes nothing.
func TestRejoinFile_ErrantRefused(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), foTimeout)
	defer cancel()
	sb := sandbox.New(t, sandbox.Options{Replicas: 2, GTID: false})
	e := startFailoverEnvOn(ctx, t, sb, foOptions{Async: true, Fence: "best_effort", NoAgents: true,
		ClusterYAML: []string{"replication_mode: file"}, Instances: map[int][]string{1: {"candidate_master: true"}}})
	ids := writeOnlyOnMaster(ctx, t, e, errantRows)
	if got, err := e.salvageIDs(ctx, 1, "salvage"); err != nil || len(got) != 0 || len(ids) != errantRows {
		t.Fatalf("replica has %v (%v), master wrote %v", got, err, ids)
	}
	rec := e.killMasterAndWaitFailover(ctx, t, 0)
	requireSuccessRecord(t, rec, e.addr(0), e.addr(1), "automatic")
	e.requireNewMaster(ctx, t, 1)
	e.restartReadOnly(ctx, t, 0)

	addr := e.g.Running()[0].HTTPAddr
	before := e.lastRecordID(ctx, t)
	out, code := cli(ctx, t, "rejoin", "--cluster", detCluster, "--instance", e.addr(0), "--addr", addr)
	want := regexp.MustCompile(fmt.Sprintf(`event\(s\) \(%d transaction\(s\)\) that %s never received: from \S+:\d+ to \S+:\d+, after \S+:\d+`,
		errantRows, regexp.QuoteMeta(e.addr(1))))
	if code != 2 || !want.MatchString(out) {
		t.Fatalf("rejoin: exit %d, want 2 naming the errant file/positions\n%s", code, out)
	}
	if after := e.lastRecordID(ctx, t); after != before {
		t.Errorf("a refused rejoin opened record %d", after)
	}
	// Nothing changed: the old master is still alone, with its rows.
	if got, err := e.salvageIDs(ctx, 0, "salvage"); err != nil || len(got) != errantRows {
		t.Errorf("old master rows %v (%v), want %d", got, err, errantRows)
	}
	if ro, err := e.readOnly(ctx, 0); err != nil || !ro {
		t.Errorf("old master read_only=%v err=%v", ro, err)
	}
	e.sampler.require(t)
}
