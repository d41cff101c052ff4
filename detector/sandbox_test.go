package detector

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/quorumha/quorumha/sandbox"
)

// These tests run against real mariadbd processes (package sandbox); they are
// skipped with -short or when MariaDB is not installed.

func newSandbox(t *testing.T, opts sandbox.Options) *sandbox.Sandbox {
	t.Helper()
	if testing.Short() {
		t.Skip("sandbox test skipped with -short")
	}
	return sandbox.New(t, opts)
}

func newTestProber(t *testing.T, timeout time.Duration) *Prober {
	t.Helper()
	p := NewProber(ProberConfig{Timeout: timeout, Logger: testLogger(t)})
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("prober close: %v", err)
		}
	})
	return p
}

func adminTarget(sb *sandbox.Sandbox, i int) Target {
	return Target{Addr: sb.Instance(i).Addr(), User: sandbox.AdminUser, Password: sandbox.AdminPassword}
}

func adminDB(t *testing.T, sb *sandbox.Sandbox, i int) *sql.DB {
	t.Helper()
	db, err := sb.AdminDB(i)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func exec(t *testing.T, db *sql.DB, stmt string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

// waitReplica probes the replica until cond holds, threading prev through so
// Advancing is computed as in the detector.
func waitReplica(t *testing.T, p *Prober, tg Target, prev *ReplicaObservation, what string, cond func(ReplicaObservation) bool) {
	t.Helper()
	waitFor(t, 20*time.Second, what, func() (bool, string) {
		o := p.ProbeReplica(context.Background(), tg, *prev)
		*prev = o
		return cond(o), fmt.Sprintf("%+v", o)
	})
}

func TestProber_SandboxMasterAndReplica(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t, sandbox.Options{Replicas: 2, GTID: true})
	p := newTestProber(t, time.Second)
	ctx := context.Background()
	master := adminTarget(sb, 0)

	r := p.Probe(ctx, master)
	if !r.OK || r.Reason != ReasonOK || r.ReadOnly || r.Latency <= 0 || r.Instance != master.Addr {
		t.Fatalf("live master: %+v", r)
	}
	if r := p.Probe(ctx, adminTarget(sb, 1)); !r.OK || !r.ReadOnly {
		t.Fatalf("replica probed as master should answer read_only=1: %+v", r)
	}
	// The first probe learns the flavor, the next ones read the position.
	admin := adminDB(t, sb, 0)
	exec(t, admin, "CREATE DATABASE IF NOT EXISTS probe_position")
	var want string
	if err := admin.QueryRowContext(ctx, "SELECT @@global.gtid_binlog_pos").Scan(&want); err != nil {
		t.Fatal(err)
	}
	if r := p.Probe(ctx, master); !r.OK || r.Position != want || want == "" {
		t.Fatalf("second probe: position %q, want gtid_binlog_pos %q", r.Position, want)
	}

	t.Run("wrong password is alive", func(t *testing.T) {
		r := p.Probe(ctx, Target{Addr: master.Addr, User: sandbox.AppUser, Password: "wrong"})
		if r.OK || r.Reason != ReasonAuthError || !r.Reason.Alive() {
			t.Fatalf("wrong password: %+v", r)
		}
	})

	t.Run("too many connections is alive", func(t *testing.T) {
		admin := adminDB(t, sb, 0)
		exec(t, admin, "SET GLOBAL max_connections = 6")
		t.Cleanup(func() { exec(t, admin, "SET GLOBAL max_connections = 200") })
		app, err := sql.Open("mysql", sb.DSN(0, sandbox.AppUser, sandbox.AppPassword))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = app.Close() }()
		var held []*sql.Conn
		defer func() {
			for _, c := range held {
				_ = c.Close()
			}
		}()
		for len(held) < 20 {
			c, err := app.Conn(ctx)
			if err == nil {
				err = c.PingContext(ctx)
			}
			var me *mysql.MySQLError
			if errors.As(err, &me) && me.Number == 1040 {
				break
			}
			if err != nil {
				t.Fatalf("holding connection %d: %v", len(held), err)
			}
			held = append(held, c)
		}
		if len(held) == 20 {
			t.Fatal("max_connections never reached")
		}
		r := p.Probe(ctx, Target{Addr: master.Addr, User: sandbox.AppUser, Password: sandbox.AppPassword})
		if r.OK || r.Reason != ReasonTooManyConnections || !r.Reason.Alive() {
			t.Fatalf("too many connections: %+v", r)
		}
		if v := NextVerdict(Verdict{}, r, 1); v.State != StateDegraded {
			t.Fatalf("verdict %s, want degraded", v.State)
		}
	})

	replica := adminTarget(sb, 1)
	var obs ReplicaObservation
	t.Run("replica follows and advances", func(t *testing.T) {
		waitReplica(t, p, replica, &obs, "replica IO Yes", func(o ReplicaObservation) bool {
			return o.Reachable && o.IORunning == "Yes" && o.SQLRunning
		})
		if !obs.Follows(master.Addr) || !obs.StillConnected(master.Addr) || obs.ReadPos == "" || obs.SecondsBehind == nil {
			t.Fatalf("live replica: %+v", obs)
		}
		admin := adminDB(t, sb, 0)
		exec(t, admin, "CREATE TABLE IF NOT EXISTS "+sandbox.TestDB+".probe_t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
		for i := range 3 {
			exec(t, admin, fmt.Sprintf("INSERT INTO %s.probe_t (v) VALUES (%d)", sandbox.TestDB, i))
		}
		waitReplica(t, p, replica, &obs, "replica advancing", func(o ReplicaObservation) bool { return o.Advancing })
	})

	t.Run("killed master", func(t *testing.T) {
		if err := sb.Kill(0); err != nil {
			t.Fatal(err)
		}
		r := p.Probe(ctx, master)
		if r.OK || r.Reason != ReasonRefused || r.Reason.Alive() {
			t.Fatalf("killed master: %+v", r)
		}
		waitReplica(t, p, replica, &obs, "replica lost the master", func(o ReplicaObservation) bool {
			return o.Reachable && o.IORunning != "Yes" && !o.Advancing
		})
		o := p.ProbeReplica(ctx, replica, obs)
		if o.StillConnected(master.Addr) || o.Advancing {
			t.Fatalf("replica still vouches for a dead master: %+v", o)
		}
		a := Assess("app1", master.Addr, []Verdict{{Controller: "c1", Instance: master.Addr, State: StateDown, ObservedAt: o.ObservedAt}},
			[]ReplicaObservation{o}, 1, nil, o.ObservedAt, Rules{ReplicaCheck: true})
		if a.State != AssessDeadConfirmed {
			t.Fatalf("assess: %s %s", a.State, a.Reason)
		}
	})
}

func TestProber_SandboxStoppedMaster(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t, sandbox.Options{Replicas: -1})
	p := newTestProber(t, time.Second)
	ctx := context.Background()
	if r := p.Probe(ctx, adminTarget(sb, 0)); !r.OK {
		t.Fatalf("live: %+v", r)
	}
	stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := sb.StopInstance(stopCtx, 0); err != nil {
		t.Fatal(err)
	}
	r := p.Probe(ctx, adminTarget(sb, 0))
	if r.OK || (r.Reason != ReasonRefused && r.Reason != ReasonReadOnlyOrShutdown) {
		t.Fatalf("stopped master: %+v", r)
	}
	// The pool recovers when the server is back.
	if err := sb.StartInstance(stopCtx, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "probe OK after restart", func() (bool, string) {
		r := p.Probe(ctx, adminTarget(sb, 0))
		return r.OK, fmt.Sprintf("%+v", r)
	})
}

func TestDetector_SandboxKillConfirmsDeath(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t, sandbox.Options{Replicas: 2, GTID: true})
	p := newTestProber(t, 500*time.Millisecond)
	cfg := Config{Controller: "c1", Zone: "a", ProbeInterval: 200 * time.Millisecond, ProbeTimeout: 500 * time.Millisecond,
		FailureThreshold: 3, Rules: Rules{ReplicaCheck: true, MultiZone: true},
		Clusters: []ClusterSpec{{Name: "app1", Master: sb.Instance(0).Addr(),
			Replicas: []string{sb.Instance(1).Addr(), sb.Instance(2).Addr()},
			User:     sandbox.AdminUser, Password: sandbox.AdminPassword}},
		Logger: testLogger(t)}
	d, err := New(cfg, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	waitFor(t, 10*time.Second, "healthy", func() (bool, string) {
		a, ok := d.Assessment("app1")
		return ok && a.State == AssessHealthy && len(a.ReplicaView) == 2, fmt.Sprintf("%+v", a)
	})
	// Replicas connected to a live master: a (fake) quorum of down votes
	// would still be held back.
	a, _ := d.Assessment("app1")
	held := Assess("app1", a.Master, []Verdict{{Controller: "c1", Instance: a.Master, State: StateDown, ObservedAt: a.At}},
		a.ReplicaView, 1, nil, a.At, cfg.Rules)
	if held.State != AssessReplicasStillConnected {
		t.Fatalf("live replicas should vouch: %s %s", held.State, held.Reason)
	}

	killed := time.Now()
	if err := sb.Kill(0); err != nil {
		t.Fatal(err)
	}
	var final Assessment
	waitFor(t, 15*time.Second, "dead confirmed", func() (bool, string) {
		select {
		case u := <-d.Updates():
			if u.State == AssessDeadConfirmed {
				final = u
				return true, ""
			}
			return false, fmt.Sprintf("%s: %s", u.State, u.Reason)
		default:
			return false, "no update"
		}
	})
	t.Logf("dead confirmed %s after kill -9: %s", time.Since(killed).Round(time.Millisecond), final.Reason)
	if final.DownCount != 1 || len(final.ReplicaView) != 2 {
		t.Fatalf("evidence: %+v", final)
	}
	for _, o := range final.ReplicaView {
		if !o.Reachable || o.StillConnected(final.Master) {
			t.Errorf("replica view: %+v", o)
		}
	}
	r, err := d.Recheck(context.Background(), "app1")
	if err != nil || r.OK {
		t.Fatalf("recheck of a dead master: %+v %v", r, err)
	}
}
