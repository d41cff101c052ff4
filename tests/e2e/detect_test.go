package e2e

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/quorumha/quorumha/sandbox"
	"github.com/quorumha/quorumha/tests/harness"
)

// detectYAML names the probe interval (the default, 500ms): detection of a
// refused master takes ~1.5 s, of a silent one ~1.8 s with the default
// 500ms probe timeout, and a single slow answer never counts: three
// consecutive failures are still needed.
const detectYAML = "detector:\n  probe_interval: 500ms\n"

// TestDetect_RealFaults runs the detection scenarios (issue 4) against a real
// MariaDB master with two replicas and three controllers in three network
// zones, each scenario with a write load running. The subtests share the
// sandbox and the group and run in order; each leaves the master healthy
// for the next, except the last.
func TestDetect_RealFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MariaDB servers and controller processes")
	}
	parallel(t)
	path := bin.Path(t)
	nw := harness.NewNet(t, 3)
	sb := sandbox.New(t, sandbox.Options{Replicas: 2, GTID: true, SemiSync: true,
		ExtraConfig: []string{"bind-address=0.0.0.0"}})
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	// The controllers reach the servers at the bridge address; the replicas
	// must name their master the same way for the replica check to
	// recognise it. They still replicate inside the root namespace, so
	// cutting a zone from the master never cuts replication.
	for i := 1; i <= 2; i++ {
		db, err := sb.AdminDB(i)
		if err != nil {
			t.Fatal(err)
		}
		detExec(ctx, t, db, "STOP SLAVE", "CHANGE MASTER TO MASTER_HOST='"+nw.HostIP+"'", "START SLAVE")
		db.Close()
	}
	if err := sb.WaitReplicating(ctx); err != nil {
		t.Fatal(err)
	}

	e := &detEnv{sb: sb, master: fmt.Sprintf("%s:%d", nw.HostIP, sb.Instance(0).Port)}
	e.g = harness.StartGroup(t, path, harness.GroupOptions{N: 3, Net: nw,
		ClustersYAML: detClustersYAML(sb, nw.HostIP), ExtraYAML: detectYAML})
	if _, err := e.g.WaitLeader(ctx, e.g.Nodes); err != nil {
		t.Fatal(err)
	}
	e.waitHealthy(ctx, t)
	e.holdFailovers(ctx, t)
	masterPort := sb.Instance(0).Port

	run := func(name string, f func(t *testing.T)) bool {
		start := time.Now()
		ok := t.Run(name, f)
		t.Logf("%s took %s", name, time.Since(start).Round(100*time.Millisecond))
		return ok
	}

	// Scenario 3: kill -9 of the master.
	if !run("KillMaster_Detected", func(t *testing.T) {
		load := startLoad(ctx, t, sb)
		before := e.lastRecordID(ctx, t)
		if err := sb.Kill(0); err != nil {
			t.Fatal(err)
		}
		rec := e.waitDetection(ctx, t, e.g.Nodes, before)
		requireVoters(t, rec, "c1", "c2", "c3")
		t.Logf("record %d by %s: %s", rec.ID, rec.OpenedBy, rec.Evidence.Rule)
		st := load.Stop()
		if st.Failed == 0 {
			t.Fatalf("no write failed while the master was dead: %+v", st)
		}
		e.restartMaster(ctx, t)
		requireNothingLost(ctx, t, sb, 0, st)
	}) {
		return
	}

	// Scenario 4: clean shutdown of the master: a new incident, a new record.
	if !run("StopMasterCleanly_Detected", func(t *testing.T) {
		load := startLoad(ctx, t, sb)
		before := e.lastRecordID(ctx, t)
		if before == 0 {
			t.Fatal("no record from the previous incident")
		}
		if err := sb.StopInstance(ctx, 0); err != nil {
			t.Fatal(err)
		}
		rec := e.waitDetection(ctx, t, e.g.Nodes, before)
		requireVoters(t, rec, "c1", "c2", "c3")
		t.Logf("record %d by %s: %s", rec.ID, rec.OpenedBy, rec.Evidence.Rule)
		st := load.Stop()
		e.restartMaster(ctx, t)
		requireNothingLost(ctx, t, sb, 0, st)
	}) {
		return
	}

	// Scenario 15 with one vantage point: one controller (a follower, then
	// the leader) cut from the master only. Its vote alone is no quorum.
	if !run("OneControllerCut_NoDecision", func(t *testing.T) {
		load := startLoad(ctx, t, sb)
		before := e.lastRecordID(ctx, t)
		for _, which := range []string{"follower", "leader"} {
			li, err := e.g.WaitLeader(ctx, e.g.Nodes)
			if err != nil {
				t.Fatal(err)
			}
			leader := e.g.Node(li.ID)
			cut := leader
			if which == "follower" {
				cut = otherThan(e.g.Nodes, li.ID)[0]
			}
			nw.CutTCP(cut.NetZone(), nw.HostIP, masterPort)
			waitVote(ctx, t, leader, cut.ID, "down")
			// Observe for longer than a detection takes: no decision, and
			// the leader calls the lone down vote isolated.
			seen := e.observeNoRecord(ctx, t, e.g.Nodes, before, 6*time.Second, func(c *harness.Controller, a detAssessment) error {
				if c == leader && !oneOf(a.State, "isolated", "healthy") {
					return fmt.Errorf("%s cut: leader assesses %s: %s", which, a.State, a.Reason)
				}
				if a.State == "dead_confirmed" {
					return fmt.Errorf("%s cut: %s: %s", which, a.State, a.Reason)
				}
				return nil
			})
			t.Logf("%s %s cut from the master: states seen %v", which, cut.ID, seen)
			if seen["isolated"] == 0 {
				t.Fatalf("%s cut: never assessed isolated: %v", which, seen)
			}
			nw.Heal(cut.NetZone())
			e.waitHealthy(ctx, t)
		}
		if st := load.Stop(); st.Failed > 0 {
			t.Fatalf("writes failed while only controllers were cut: %+v", st)
		}
	}) {
		return
	}

	// Scenario 15: every controller cut from the master, which still feeds
	// its replicas and takes writes.
	if !run("AllControllersCut_ReplicasStillConnected", func(t *testing.T) {
		load := startLoad(ctx, t, sb)
		before := e.lastRecordID(ctx, t)
		for _, c := range e.g.Nodes {
			nw.CutTCP(c.NetZone(), nw.HostIP, masterPort)
		}
		defer func() {
			for _, c := range e.g.Nodes {
				nw.Heal(c.NetZone())
			}
		}()
		li, err := e.g.WaitLeader(ctx, e.g.Nodes)
		if err != nil {
			t.Fatal(err)
		}
		err = harness.Poll(ctx, 200*time.Millisecond, func() error {
			a, _, err := detAssess(ctx, e.g.Node(li.ID))
			if err != nil {
				return err
			}
			if a.State != "replicas_still_connected" || a.DownCount < 3 {
				return fmt.Errorf("leader assesses %s with %d down: %s", a.State, a.DownCount, a.Reason)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		mid := load.Snapshot()
		seen := e.observeNoRecord(ctx, t, e.g.Nodes, before, 6*time.Second, func(c *harness.Controller, a detAssessment) error {
			if a.State != "replicas_still_connected" {
				return fmt.Errorf("assesses %s: %s", a.State, a.Reason)
			}
			return nil
		})
		st := load.Snapshot()
		t.Logf("states seen %v; %d writes acknowledged during the window", seen, len(st.Acked)-len(mid.Acked))
		if st.Failed > 0 || len(st.Acked)-len(mid.Acked) < 20 {
			t.Fatalf("the master stopped taking writes: %d acknowledged in the window, %d failed (%s)",
				len(st.Acked)-len(mid.Acked), st.Failed, st.LastErr)
		}
		for _, c := range e.g.Nodes {
			nw.Heal(c.NetZone())
		}
		e.waitHealthy(ctx, t)
		requireNothingLost(ctx, t, sb, 0, load.Stop())
	}) {
		return
	}

	// Scenario 5: the master refuses connections (too many connections)
	// while it keeps feeding its replicas: alive, degraded, no decision.
	if !run("TooManyConnections_NoDecision", func(t *testing.T) {
		load := startLoad(ctx, t, sb)
		before := e.lastRecordID(ctx, t)
		refuseConnections(ctx, t, sb)
		li, err := e.g.WaitLeader(ctx, e.g.Nodes)
		if err != nil {
			t.Fatal(err)
		}
		leader := e.g.Node(li.ID)
		for _, c := range e.g.Nodes {
			waitVote(ctx, t, leader, c.ID, "degraded")
		}
		seen := e.observeNoRecord(ctx, t, e.g.Nodes, before, 5*time.Second, func(c *harness.Controller, a detAssessment) error {
			if a.State == "dead_confirmed" {
				return fmt.Errorf("assesses %s: %s", a.State, a.Reason)
			}
			if c == leader && (a.State != "healthy" || !strings.Contains(a.Reason, "too_many_connections")) {
				return fmt.Errorf("leader assesses %s, want healthy with a too_many_connections note: %s", a.State, a.Reason)
			}
			return nil
		})
		a, _, _ := detAssess(ctx, leader)
		t.Logf("states seen %v; leader: %s: %s", seen, a.State, a.Reason)
		st := load.Snapshot()
		if st.Failed > 0 {
			t.Fatalf("writes on the load's open connection failed: %+v", st)
		}
	}) {
		return
	}
	e.waitHealthy(ctx, t)

	// Scenario 20: a minority controller (the leader) partitioned from the
	// other two cannot commit; the majority decides; the minority learns
	// the decision only after healing.
	run("MinorityPartition_MajorityDecides", func(t *testing.T) {
		load := startLoad(ctx, t, sb)
		defer load.Stop()
		before := e.lastRecordID(ctx, t)
		li, err := e.g.WaitLeader(ctx, e.g.Nodes)
		if err != nil {
			t.Fatal(err)
		}
		lone := e.g.Node(li.ID)
		majority := otherThan(e.g.Nodes, lone.ID)
		committedBefore := countLogLines(t, lone.LogPath, "decision committed")
		nw.Isolate(lone.NetZone(), majority[0].NetZone().IP, majority[1].NetZone().IP)
		defer nw.Heal(lone.NetZone())
		li2, err := e.g.WaitLeader(ctx, majority)
		if err != nil {
			t.Fatal(err)
		}
		err = harness.Poll(ctx, 200*time.Millisecond, func() error {
			var l harness.LeaderInfo
			code, err := harness.Do(ctx, http.MethodGet, lone.URL("/v1/leader"), nil, &l)
			if code == http.StatusServiceUnavailable || (err == nil && l.ID != li2.ID) {
				return nil
			}
			return fmt.Errorf("isolated %s: code %d leader %+v err %v", lone.ID, code, l, err)
		})
		if err != nil {
			t.Fatal(err)
		}
		code, err := harness.Do(ctx, http.MethodPost, lone.URL("/v1/clusters/"+detCluster+"/ack"),
			map[string]string{"by": "isolated"}, nil)
		if err == nil {
			t.Fatalf("a write through isolated %s succeeded (%d)", lone.ID, code)
		}
		t.Logf("write through isolated %s refused: %d %v", lone.ID, code, err)

		if err := sb.Kill(0); err != nil {
			t.Fatal(err)
		}
		rec := e.waitDetection(ctx, t, majority, before)
		if rec.OpenedBy == lone.ID {
			t.Fatalf("record %d opened by the isolated %s", rec.ID, lone.ID)
		}
		requireVoters(t, rec, majority[0].ID, majority[1].ID)
		// The isolated controller sees the master dead too but must not
		// hold any new record while it is cut off (bounded observation).
		e.observeNoRecord(ctx, t, []*harness.Controller{lone}, before, 3*time.Second, nil)
		if n := countLogLines(t, lone.LogPath, "decision committed"); n != committedBefore {
			t.Fatalf("isolated %s logged %d new committed decisions", lone.ID, n-committedBefore)
		}
		if a, _, err := detAssess(ctx, lone); err == nil {
			t.Logf("isolated %s assesses %s: %s", lone.ID, a.State, a.Reason)
		}

		nw.Heal(lone.NetZone())
		after := e.waitDetection(ctx, t, []*harness.Controller{lone}, before)
		if after.ID != rec.ID || after.OpenedBy != rec.OpenedBy {
			t.Fatalf("healed %s holds record %d by %s, the majority %d by %s", lone.ID, after.ID, after.OpenedBy, rec.ID, rec.OpenedBy)
		}
		if _, err := e.g.WaitLeader(ctx, e.g.Nodes); err != nil {
			t.Fatal(err)
		}
	})
}

// countLogLines counts the lines of a controller log containing s.
func countLogLines(t *testing.T, path, s string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), s)
}

// refuseConnections makes the sandbox master refuse every new connection
// with "Too many connections" while existing ones (replication, the write
// load) keep working: it holds connections, lowers max_connections below
// the number in use (so even the one extra SUPER slot is taken), and kills
// the controllers' kept probe connections so their next probe must
// reconnect. It is undone in t.Cleanup.
func refuseConnections(ctx context.Context, t *testing.T, sb *sandbox.Sandbox) {
	t.Helper()
	admin, err := sb.AdminDB(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	adm, err := admin.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var orig int
	if err := adm.QueryRowContext(ctx, "SELECT @@global.max_connections").Scan(&orig); err != nil {
		t.Fatal(err)
	}
	app, err := sql.Open("mysql", sb.DSN(0, sandbox.AppUser, sandbox.AppPassword))
	if err != nil {
		t.Fatal(err)
	}
	var held []*sql.Conn
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := adm.ExecContext(cctx, fmt.Sprintf("SET GLOBAL max_connections=%d", orig)); err != nil {
			t.Errorf("restore max_connections: %v", err)
		}
		for _, c := range held {
			c.Close()
		}
		adm.Close()
		app.Close()
	})
	const hold = 30
	for range hold {
		c, err := app.Conn(ctx)
		if err == nil {
			err = c.PingContext(ctx)
		}
		if err != nil {
			t.Fatalf("hold connection %d: %v", len(held)+1, err)
		}
		held = append(held, c)
	}
	if _, err := adm.ExecContext(ctx, "SET GLOBAL max_connections=5"); err != nil {
		t.Fatal(err)
	}
	var limit, inUse int
	var name string
	if err := adm.QueryRowContext(ctx, "SELECT @@global.max_connections").Scan(&limit); err != nil {
		t.Fatal(err)
	}
	if err := adm.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Threads_connected'").Scan(&name, &inUse); err != nil {
		t.Fatal(err)
	}
	rows, err := adm.QueryContext(ctx, "SELECT id FROM information_schema.processlist WHERE user = ? AND id <> CONNECTION_ID()", sandbox.AdminUser)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if inUse-len(ids) <= limit+1 {
		t.Fatalf("max_connections %d, %d connections in use of which %d to kill: too few to refuse everyone", limit, inUse, len(ids))
	}
	for _, id := range ids {
		_, _ = adm.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", id)) // gone already is fine
	}
	t.Logf("max_connections %d (was %d), %d connections in use, killed %d controller connections", limit, orig, inUse, len(ids))
	// Evidence the fault is real: a new connection, even a SUPER one, is refused.
	for _, user := range [][2]string{{sandbox.AppUser, sandbox.AppPassword}, {sandbox.AdminUser, sandbox.AdminPassword}} {
		db, err := sql.Open("mysql", sb.DSN(0, user[0], user[1]))
		if err != nil {
			t.Fatal(err)
		}
		err = db.PingContext(ctx)
		db.Close()
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1040 {
			t.Fatalf("new connection as %s: %v, want error 1040", user[0], err)
		}
	}
}

// TestDetect_BlipBelowThreshold freezes the master (SIGSTOP) for less than
// the detection window, with the replica check off so only the failure
// threshold stands between a blip and a decision: no record. Then it kills
// the master to show this configuration does decide on a real death.
func TestDetect_BlipBelowThreshold(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MariaDB servers and controller processes")
	}
	lane(t)
	path := bin.Path(t)
	sb := sandbox.New(t, sandbox.Options{Replicas: 2, GTID: true, Nice: niceOf(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Automatic failover runs here: the positive control at the end is a
	// real failover by the controllers.
	e := &detEnv{sb: sb, master: sb.Instance(0).Addr(), failover: true}
	e.g = harness.StartGroup(t, path, harness.GroupOptions{N: 3, ClustersYAML: detClustersYAML(sb, sandbox.Host),
		// best_effort: no agent or hook proves the killed master fenced,
		// and this test is about detection, not fencing.
		ExtraYAML: "detector:\n  probe_interval: 1s\n  probe_timeout: 1s\n  failure_threshold: 3\n  replica_check: false\n" +
			"recovery:\n  fence: best_effort\n", Nice: niceOf(t)})
	if _, err := e.g.WaitLeader(ctx, e.g.Nodes); err != nil {
		t.Fatal(err)
	}
	e.waitHealthy(ctx, t)
	load := startLoad(ctx, t, sb)
	before := e.lastRecordID(ctx, t)

	// A 2 s freeze: with a 1 s timeout and 1 s interval a probe fails at
	// most every ~2.1 s, so at most two consecutive failures, below 3.
	const blip = 2 * time.Second
	pid := sb.Instance(0).PID
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
				t.Errorf("SIGCONT master: %v", err)
			}
		}
	}
	defer resume()
	during := e.observeNoRecord(ctx, t, e.g.Nodes, before, blip, func(*harness.Controller, detAssessment) error { return nil })
	resume()
	// After the resume only a probe still in flight (probe_timeout 1 s)
	// can fail, so a wrong decision would come within about a second and a
	// raft commit; watch five.
	after := e.observeNoRecord(ctx, t, e.g.Nodes, before, 5*time.Second, func(c *harness.Controller, a detAssessment) error {
		if a.State == "dead_confirmed" {
			return fmt.Errorf("assesses %s: %s", a.State, a.Reason)
		}
		return nil
	})
	t.Logf("states seen during the freeze %v, after it %v", during, after)
	e.waitHealthy(ctx, t)
	st := load.Stop()
	t.Logf("writes: %d acknowledged, %d failed", len(st.Acked), st.Failed)
	requireNothingLost(ctx, t, sb, 0, st)

	// Positive control: the same configuration decides a real death.
	if err := sb.Kill(0); err != nil {
		t.Fatal(err)
	}
	rec := e.waitDetection(ctx, t, e.g.Nodes, before)
	requireVoters(t, rec, "c1", "c2", "c3")
	if !strings.Contains(rec.Evidence.Rule, "replica check off") {
		t.Fatalf("record %d rule %q, want the replica check off", rec.ID, rec.Evidence.Rule)
	}
	t.Logf("record %d: failover of %s to %s", rec.ID, rec.OldMaster, rec.NewMaster)
}
