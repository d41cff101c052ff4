package recovery

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/sandbox"
	"github.com/quorumha/quorumha/tests/harness"
	"github.com/quorumha/quorumha/topology"
)

// liveDial opens real connections, as the controller does.
func liveDial(ctx context.Context, addr string, cred topology.Credentials) (Instance, error) {
	c, err := topology.Open(ctx, addr, cred, topology.Timeouts{Connect: time.Second, Read: 10 * time.Second, Write: 5 * time.Second}, nil)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// liveCase is one real-MariaDB failover scenario.
type liveCase struct {
	name string
	// candidateBehind stops the candidate_master replica's IO thread during
	// the load, so it must catch up from the other replica first.
	candidateBehind bool
	// masterAlive leaves the master running, as when only the leader lost
	// it: fence must make it read-only and kill its client connections.
	masterAlive bool
	// file replicates by binlog file and position instead of GTID.
	file bool
}

// TestExecutor_LiveKillMaster drives the executor on real MariaDB servers
// (semi-sync) under a write load, then runs one failover record: a replica
// is promoted, the other follows it, and every write acknowledged before the
// master died (or was fenced) is on the new master.
func TestExecutor_LiveKillMaster(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts MariaDB servers")
	}
	if err := sandbox.Available(); err != nil {
		// CI must run this test, not pass by skipping it.
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and MariaDB is missing: %v", err)
		}
		t.Skip(err)
	}
	for _, c := range []liveCase{
		{name: "gtid"},
		{name: "gtid candidate behind", candidateBehind: true},
		{name: "gtid master alive fenced", masterAlive: true},
		{name: "file position", file: true},
	} {
		t.Run(c.name, func(t *testing.T) { liveKillMaster(t, c) })
	}
}

func liveKillMaster(t *testing.T, lc liveCase) {
	candidateBehind := lc.candidateBehind
	sb := sandbox.New(t, sandbox.Options{Replicas: 2, GTID: !lc.file, SemiSync: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mode := "gtid"
	if lc.file {
		mode = "file"
	}
	cc := ClusterConfig{Name: "live", User: sandbox.AdminUser, Password: sandbox.AdminPassword,
		ReplUser: sandbox.ReplUser, ReplPassword: sandbox.ReplPassword, ReplicationMode: mode}
	for i, in := range sb.Instances() {
		cc.Instances = append(cc.Instances, ClusterInstance{Address: in.Addr(), CandidateMaster: i == 1})
	}
	if candidateBehind {
		// Semi-sync still gets its acknowledgement from replica 2.
		db, err := sb.AdminDB(1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, "STOP SLAVE IO_THREAD"); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	load := harness.StartWriteLoad(t, func() string { return sb.DSN(0, sandbox.AppUser, sandbox.AppPassword) }, 20*time.Millisecond)
	waitFor(ctx, t, func() error {
		if n := len(load.Snapshot().Acked); n < 20 {
			return fmt.Errorf("%d writes acknowledged", n)
		}
		return nil
	})
	if !lc.masterAlive {
		if err := sb.Kill(0); err != nil {
			t.Fatal(err)
		}
	}
	// With a live master the load keeps writing through the fence: writes
	// refused by read_only or cut by the kill are not acknowledged, and
	// every acknowledged one must survive.
	var st harness.Stats
	if !lc.masterAlive {
		st = load.Stop()
	}

	g := &fsmGroup{f: fsm.New(nil)}
	cmd, _ := fsm.Encode(fsm.RecordOpenType, fsm.RecordOpen{Cluster: "live", Kind: fsm.KindFailover, Trigger: "automatic",
		OldMaster: sb.Instance(0).Addr(), OpenedBy: "test", At: time.Now()})
	idAny, err := g.Apply(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	id := idAny.(uint64)
	start := time.Now()
	ex := NewExecutor(ExecutorConfig{NodeID: "test", ApplyTimeout: 30 * time.Second, FenceMode: FenceBestEffort}, g, g.f, liveDial, HookRunner{}.Run)
	res, err := ex.Execute(ctx, cc, id)
	took := time.Since(start)
	rec, _ := g.f.Record(id)
	for _, s := range rec.Steps {
		t.Logf("step %-10s %-8s %6s  %s", s.Name, s.Outcome, s.End.Sub(s.Start).Round(time.Millisecond), s.Detail)
	}
	if err != nil || res != fsm.ResultSuccess {
		t.Fatalf("Execute = %q, %v; detail %s", res, err, rec.Detail)
	}
	if lc.masterAlive {
		st = load.Stop()
		old, err := liveDial(ctx, sb.Instance(0).Addr(), topology.Credentials{User: sandbox.AdminUser, Password: sandbox.AdminPassword})
		if err != nil {
			t.Fatal(err)
		}
		oin, err := old.Read(ctx)
		old.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !oin.ReadOnly {
			t.Fatal("fenced old master is writable")
		}
		if rec.Fence == nil || rec.Fence.State != fsm.FenceProven || rec.Fence.Proof != fsm.ProofSQL {
			t.Fatalf("fence %+v, want proven over SQL", rec.Fence)
		}
	}
	t.Logf("failover took %s; %d writes acknowledged (%d failed)", took.Round(time.Millisecond), len(st.Acked), st.Failed)
	if candidateBehind {
		if rec.NewMaster != sb.Instance(1).Addr() {
			t.Fatalf("new master %s, want the candidate_master %s", rec.NewMaster, sb.Instance(1).Addr())
		}
		for _, s := range rec.Steps {
			if s.Name == StepCatchUp && s.Outcome != fsm.OutcomeOK {
				t.Fatalf("catch_up %s: %s", s.Outcome, s.Detail)
			}
		}
	}

	newIdx, otherIdx := -1, -1
	for i := 1; i <= 2; i++ {
		if sb.Instance(i).Addr() == rec.NewMaster {
			newIdx = i
		} else {
			otherIdx = i
		}
	}
	if newIdx < 0 {
		t.Fatalf("new master %s is not a replica of the sandbox", rec.NewMaster)
	}
	nm, err := liveDial(ctx, rec.NewMaster, topology.Credentials{User: sandbox.AdminUser, Password: sandbox.AdminPassword})
	if err != nil {
		t.Fatal(err)
	}
	defer nm.Close()
	in, err := nm.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if in.ReadOnly || in.Replica != nil {
		t.Fatalf("new master: read_only=%t replica=%+v", in.ReadOnly, in.Replica)
	}
	db, err := sb.AdminDB(newIdx)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	missing, err := harness.MissingAcked(ctx, db, st.Acked)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		t.Fatalf("new master lacks %d of %d acknowledged writes: %v", len(missing), len(st.Acked), missing)
	}

	// The other replica follows the new master: a write there reaches it.
	other, err := liveDial(ctx, sb.Instance(otherIdx).Addr(), topology.Credentials{User: sandbox.AdminUser, Password: sandbox.AdminPassword})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	oin, err := other.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if oin.Replica == nil || oin.MasterKey() != rec.NewMaster || !oin.Replica.Running() || oin.Replica.UsesGTID() == lc.file {
		t.Fatalf("other replica: master %s status %+v", oin.MasterKey(), oin.Replica)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO "+sandbox.TestDB+".load (id, at, src) VALUES (999999999, NOW(6), 'after')"); err != nil {
		t.Fatalf("write on the new master: %v", err)
	}
	in, err = nm.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	target, err := in.BinlogPosition()
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if err := other.WaitForPosition(wctx, target); err != nil {
		t.Fatalf("other replica did not replicate from the new master: %v", err)
	}
}

// waitFor polls f every 20 ms until it succeeds or ctx ends.
func waitFor(ctx context.Context, t *testing.T, f func() error) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal(errors.Join(err, ctx.Err()))
		case <-tick.C:
		}
	}
}
