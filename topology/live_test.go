package topology_test

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
	"github.com/quorumha/quorumha/topology"
)

// liveTimeouts keep waits short so a broken test fails fast; Read 3s makes
// WaitForPosition chunk its server-side waits at 2s.
var liveTimeouts = topology.Timeouts{Connect: 2 * time.Second, Read: 3 * time.Second, Write: 3 * time.Second}

func liveCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func adminDial(ctx context.Context, addr string) (*topology.Conn, error) {
	return topology.Open(ctx, addr, topology.Credentials{User: sandbox.AdminUser, Password: sandbox.AdminPassword}, liveTimeouts, nil)
}

func liveConns(t *testing.T, sb *sandbox.Sandbox) []*topology.Conn {
	t.Helper()
	var out []*topology.Conn
	for _, inst := range sb.Instances() {
		c, err := adminDial(liveCtx(t, 5*time.Second), inst.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		out = append(out, c)
	}
	return out
}

func mustRead(t *testing.T, c *topology.Conn) *topology.Instance {
	t.Helper()
	i, err := c.Read(liveCtx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// write inserts a row on the master and returns the master's binlog position.
func write(t *testing.T, master *topology.Conn) topology.Position {
	t.Helper()
	ctx := liveCtx(t, 5*time.Second)
	for _, q := range []string{
		"CREATE TABLE IF NOT EXISTS " + sandbox.TestDB + ".topo (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))",
		"INSERT INTO " + sandbox.TestDB + ".topo (v) VALUES ('x')",
	} {
		if _, err := master.DB().ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	p, err := mustRead(t, master).BinlogPosition()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func waitPos(t *testing.T, c *topology.Conn, p topology.Position) {
	t.Helper()
	if err := c.WaitForPosition(liveCtx(t, 10*time.Second), p); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond until it holds or 10s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func discover(t *testing.T, seeds ...string) *topology.Topology {
	t.Helper()
	topo, err := topology.Discover(liveCtx(t, 15*time.Second), seeds, adminDial, nil)
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func TestLive_GTIDSandbox(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts MariaDB servers")
	}
	sb := sandbox.New(t, sandbox.Options{Replicas: 2, GTID: true})
	insts := sb.Instances()
	conns := liveConns(t, sb)
	master, r1, r2 := conns[0], conns[1], conns[2]
	if err := sb.WaitReplicating(liveCtx(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}

	t.Run("Read", func(t *testing.T) {
		m := mustRead(t, master)
		if m.Version.Flavor != topology.MariaDB || m.IsReplica() || m.ReadOnly || !m.LogBin || m.ServerID != uint32(insts[0].ServerID) {
			t.Errorf("master = %+v", m)
		}
		if m.MasterStatus == nil || m.ReportHost != sandbox.Host || !m.GTIDStrictMode {
			t.Errorf("master status/report_host/strict: %v %q %v", m.MasterStatus, m.ReportHost, m.GTIDStrictMode)
		}
		for n, c := range []*topology.Conn{r1, r2} {
			r := mustRead(t, c)
			if !r.IsReplica() || !r.ReadOnly || r.MasterKey() != insts[0].Addr() || r.ServerID != uint32(insts[n+1].ServerID) {
				t.Errorf("replica %d = %+v", n+1, r)
			}
			if r.Replica.UsingGTID != "Slave_Pos" || !r.Replica.Running() {
				t.Errorf("replica %d status = %+v", n+1, r.Replica)
			}
		}
	})

	t.Run("RecordedColumnsMatchServer", func(t *testing.T) {
		cols, _, err := topology.QueryTable(liveCtx(t, 5*time.Second), r1.DB(), "SHOW SLAVE STATUS")
		if err != nil {
			t.Fatal(err)
		}
		recorded, _ := topology.ReadVertical(t, "mariadb-10.11-slave-status.txt")
		if !slices.Equal(cols, recorded) {
			t.Errorf("recorded columns differ from the server's:\nserver   %v\nrecorded %v", cols, recorded)
		}
	})

	t.Run("WaitForPosition", func(t *testing.T) {
		p := write(t, master)
		waitPos(t, r1, p)
		waitPos(t, r2, p)
		ahead := topology.MariaDBPos{{Domain: 0, Server: 1, Seq: p.MariaDB[0].Seq + 1000}}
		start := time.Now()
		err := r1.WaitForPosition(liveCtx(t, 1500*time.Millisecond), topology.MariaDBGTIDPosition(ahead))
		if !errors.Is(err, topology.ErrWaitTimeout) || time.Since(start) > 3*time.Second {
			t.Errorf("unreachable target: err = %v after %v", err, time.Since(start))
		}
		if err := r1.WaitRelayLogApplied(liveCtx(t, 10*time.Second)); err != nil {
			t.Error(err)
		}
	})

	t.Run("SetReadOnly", func(t *testing.T) {
		for _, on := range []bool{false, false, true, true} {
			if err := r2.SetReadOnly(liveCtx(t, 5*time.Second), on); err != nil {
				t.Fatal(err)
			}
			if got := mustRead(t, r2).ReadOnly; got != on {
				t.Errorf("ReadOnly = %v, want %v", got, on)
			}
		}
	})

	t.Run("StopStartThreads", func(t *testing.T) {
		ctx := liveCtx(t, 20*time.Second)
		if err := r1.StopReplica(ctx, topology.IOThread); err != nil {
			t.Fatal(err)
		}
		if rs := mustRead(t, r1).Replica; rs.IORunning != topology.IONo || !rs.SQLRunning {
			t.Errorf("after stop io: io=%v sql=%v", rs.IORunning, rs.SQLRunning)
		}
		if err := r1.StopReplica(ctx, topology.IOThread); err != nil {
			t.Errorf("second stop not idempotent: %v", err)
		}
		if err := r1.StartReplica(ctx, topology.IOThread); err != nil {
			t.Fatal(err)
		}
		eventually(t, "io thread running", func() bool { return mustRead(t, r1).Replica.IORunning == topology.IOYes })
		if err := r1.StopReplica(ctx, topology.SQLThread); err != nil {
			t.Fatal(err)
		}
		if rs := mustRead(t, r1).Replica; rs.SQLRunning || rs.IORunning != topology.IOYes {
			t.Errorf("after stop sql: io=%v sql=%v", rs.IORunning, rs.SQLRunning)
		}
		p := write(t, master)
		if err := r1.WaitForPosition(ctx, p); !errors.Is(err, topology.ErrReplicationStopped) {
			t.Errorf("wait with SQL stopped: err = %v, want ErrReplicationStopped", err)
		}
		if err := r1.StartReplica(ctx, topology.BothThreads); err != nil {
			t.Fatal(err)
		}
		waitPos(t, r1, p)
	})

	t.Run("ProcessListAndKill", func(t *testing.T) {
		ctx := liveCtx(t, 10*time.Second)
		app, err := sql.Open("mysql", sb.DSN(0, sandbox.AppUser, sandbox.AppPassword))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = app.Close() }()
		write(t, master) // the table exists
		tx, err := app.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+sandbox.TestDB+".topo (v) VALUES ('open')"); err != nil {
			t.Fatal(err)
		}
		procs, err := master.ProcessList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var appID uint64
		for _, p := range procs {
			if p.User == sandbox.AppUser && p.InTransaction {
				appID = p.ID
			}
		}
		if appID == 0 {
			t.Fatalf("no open app transaction in %+v", procs)
		}
		killed, err := master.KillClientSessions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, p := range killed {
			found = found || p.ID == appID
			if p.User == sandbox.ReplUser {
				t.Errorf("killed %+v", p)
			}
		}
		if !found {
			t.Errorf("app connection %d not killed: %+v", appID, killed)
		}
		if err := tx.Commit(); err == nil {
			t.Error("commit on a killed connection succeeded")
		}
		p := write(t, master)
		waitPos(t, r1, p)
		waitPos(t, r2, p)
	})

	repl := topology.ChangeMasterOptions{Host: sandbox.Host, User: sandbox.ReplUser, Password: sandbox.ReplPassword, ConnectRetry: 1}
	pointAt := func(t *testing.T, c *topology.Conn, target sandbox.Instance, gtid bool, coord topology.BinlogCoord) {
		t.Helper()
		o := repl
		o.Port, o.UseGTID, o.File, o.Pos = target.Port, gtid, coord.File, coord.Pos
		ctx := liveCtx(t, 10*time.Second)
		if err := c.ChangeMaster(ctx, o); err != nil {
			t.Fatal(err)
		}
		if err := c.StartReplica(ctx, topology.BothThreads); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("ChangeMasterChainGTID", func(t *testing.T) {
		pointAt(t, r2, insts[1], true, topology.BinlogCoord{})
		p := write(t, master)
		waitPos(t, r2, p)
		if got := mustRead(t, r2).MasterKey(); got != insts[1].Addr() {
			t.Errorf("r2 master = %s, want %s", got, insts[1].Addr())
		}
		topo := discover(t, insts[0].Addr())
		if len(topo.Instances) != 3 || len(topo.Anomalies) != 0 || topo.MasterOf(topo.Lookup(insts[2].Addr())).Key != insts[1].Addr() {
			t.Errorf("chain topology: %d instances, anomalies %v", len(topo.Instances), topo.Anomalies)
		}
		pointAt(t, r2, insts[0], true, topology.BinlogCoord{})
		waitPos(t, r2, write(t, master))
	})

	t.Run("ChangeMasterFilePos", func(t *testing.T) {
		ctx := liveCtx(t, 10*time.Second)
		waitPos(t, r2, write(t, master))
		if err := r2.StopReplica(ctx, topology.BothThreads); err != nil {
			t.Fatal(err)
		}
		coord, err := master.MasterStatus(ctx)
		if err != nil || coord == nil {
			t.Fatalf("master status: %v %v", coord, err)
		}
		pointAt(t, r2, insts[0], false, *coord)
		write(t, master)
		after, err := master.MasterStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		waitPos(t, r2, topology.FilePosition(*after))
		r := mustRead(t, r2)
		if r.Replica.UsingGTID != "No" || r.Replica.UsesGTID() {
			t.Errorf("Using_Gtid = %q", r.Replica.UsingGTID)
		}
		if ep, err := r.ExecutedPosition(); err != nil || ep.Kind != topology.PosFile || ep.Coord != *after {
			t.Errorf("ExecutedPosition = %v, %v; want %v", ep, err, after)
		}
		pointAt(t, r2, insts[0], true, topology.BinlogCoord{})
		waitPos(t, r2, write(t, master))
	})

	t.Run("DiscoverAnomalies", func(t *testing.T) {
		topo := discover(t, insts[0].Addr())
		if len(topo.Instances) != 3 || topo.Master == nil || topo.Master.Key != insts[0].Addr() ||
			len(topo.Anomalies) != 0 || len(topo.Unreachable) != 0 {
			t.Fatalf("healthy: %d instances, master %v, anomalies %v, unreachable %v",
				len(topo.Instances), topo.Master, topo.Anomalies, topo.Unreachable)
		}
		ctx := liveCtx(t, 20*time.Second)
		if err := r1.SetReadOnly(ctx, false); err != nil {
			t.Fatal(err)
		}
		if topo := discover(t, insts[2].Addr()); !topo.HasAnomaly(topology.ReplicaNotReadOnly, insts[1].Addr()) || len(topo.Anomalies) != 1 {
			t.Errorf("writable replica: %v", topo.Anomalies)
		}
		if err := r1.SetReadOnly(ctx, true); err != nil {
			t.Fatal(err)
		}
		if err := r2.StopReplica(ctx, topology.IOThread); err != nil {
			t.Fatal(err)
		}
		if topo := discover(t, insts[0].Addr(), insts[2].Addr()); !topo.HasAnomaly(topology.ReplicationStopped, insts[2].Addr()) || len(topo.Anomalies) != 1 {
			t.Errorf("stopped IO: %v", topo.Anomalies)
		}
		if err := r2.StartReplica(ctx, topology.IOThread); err != nil {
			t.Fatal(err)
		}
	})

	// Breaks the topology, so it runs last.
	t.Run("ResetReplicaAll", func(t *testing.T) {
		ctx := liveCtx(t, 10*time.Second)
		for range 2 {
			if err := r2.ResetReplicaAll(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if r := mustRead(t, r2); r.IsReplica() {
			t.Errorf("still a replica: %+v", r.Replica)
		}
		topo := discover(t, insts[0].Addr(), insts[2].Addr())
		if topo.Master == nil || topo.Master.Key != insts[0].Addr() || len(topo.Replicas) != 1 {
			t.Errorf("after reset: master %v, %d replicas, anomalies %v", topo.Master, len(topo.Replicas), topo.Anomalies)
		}
	})
}

func TestLive_FilePosSandbox(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts MariaDB servers")
	}
	sb := sandbox.New(t, sandbox.Options{Replicas: 1, GTID: false, SemiSync: true})
	insts := sb.Instances()
	conns := liveConns(t, sb)
	master, r1 := conns[0], conns[1]
	if err := sb.WaitReplicating(liveCtx(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}

	t.Run("ReadAndWait", func(t *testing.T) {
		write(t, master)
		coord, err := master.MasterStatus(liveCtx(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		waitPos(t, r1, topology.FilePosition(*coord))
		r := mustRead(t, r1)
		if r.Replica.UsesGTID() || r.MasterKey() != insts[0].Addr() {
			t.Errorf("replica: %+v", r.Replica)
		}
		rp, err := r.ReadPosition()
		if err != nil || rp.Kind != topology.PosFile || rp.Coord != *coord {
			t.Errorf("ReadPosition = %v, %v; want %v", rp, err, coord)
		}
		if topo := discover(t, insts[1].Addr()); len(topo.Instances) != 2 || len(topo.Anomalies) != 0 {
			t.Errorf("discover: %d instances, %v", len(topo.Instances), topo.Anomalies)
		}
	})

	t.Run("SemiSync", func(t *testing.T) {
		eventually(t, "semi-sync active on both ends", func() bool {
			m, r := mustRead(t, master).SemiSync, mustRead(t, r1).SemiSync
			return m.MasterEnabled && m.MasterActive && m.MasterClients == 1 && r.ReplicaEnabled && r.ReplicaActive
		})
	})

	// Kills the master, so it runs last.
	t.Run("MasterDown", func(t *testing.T) {
		if err := sb.Kill(0); err != nil {
			t.Fatal(err)
		}
		topo := discover(t, insts[0].Addr(), insts[1].Addr())
		if !topo.HasAnomaly(topology.BrokenChain, insts[1].Addr()) || !topo.HasAnomaly(topology.NoMaster, "") || len(topo.Unreachable) != 1 {
			t.Errorf("master down: anomalies %v, unreachable %v", topo.Anomalies, topo.Unreachable)
		}
	})
}
