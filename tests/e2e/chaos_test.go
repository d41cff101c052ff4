package e2e

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
	"github.com/quorumha/quorumha/tests/chaos"
	"github.com/quorumha/quorumha/tests/harness"
)

// The short fixed schedule `make test` runs; `make chaos` sets
// QUORUMHA_CHAOS_SEED and QUORUMHA_CHAOS_ROUNDS.
const (
	chaosDefaultSeed   = 942 // isolate_master_zone, kill9_leader_ctrl, cut_controllers_master+replica_down (the self-fenced master the leader must unfence)
	chaosDefaultRounds = 3
)

// chaosDecisionWait bounds how long a round waits for a failover record
// to close once the master is gone.
const chaosDecisionWait = 2 * time.Minute

// TestChaos is issue 15: random fault schedules (seeded, replayable) on the
// isolated-master environment (3 controllers in 3 zones, 3 MariaDB servers
// in their own zones with fencing agents), with a group-side writer
// following the master endpoint, a writer inside the current master's zone
// writing straight to it, read_only samplers in every zone, and checkers
// that only look at what the writers, samplers and the HTTP API saw. Every
// violation names the seed and the round; the report goes to
// chaos-report/ (or QUORUMHA_CHAOS_REPORT).
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MariaDB servers, agents and controllers in network namespaces")
	}
	lane(t)
	seed, rounds := uint64(chaosDefaultSeed), chaosDefaultRounds
	if s := os.Getenv("QUORUMHA_CHAOS_SEED"); s != "" {
		v, err := chaos.ParseSeed(s)
		if err != nil {
			t.Fatal(err)
		}
		seed = v
	}
	if s := os.Getenv("QUORUMHA_CHAOS_ROUNDS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("QUORUMHA_CHAOS_ROUNDS %q: want a positive number", s)
		}
		rounds = v
	}
	dir := os.Getenv("QUORUMHA_CHAOS_REPORT")
	if dir == "" {
		dir = filepath.Join("..", "..", "chaos-report")
	}
	schedule := chaos.Schedule(seed, rounds)
	if s := os.Getenv("QUORUMHA_CHAOS_FAULTS"); s != "" {
		// A round given by hand (make chaos FAULTS=...): the seed still
		// draws the runner's own choices (which replica, which follower).
		v, err := chaos.ParseRounds(s)
		if err != nil {
			t.Fatal(err)
		}
		schedule, rounds = v, len(v)
	}
	replay := fmt.Sprintf("make chaos SEED=%d ROUNDS=%d", seed, rounds)
	if s := os.Getenv("QUORUMHA_CHAOS_FAULTS"); s != "" {
		replay = fmt.Sprintf("make chaos SEED=%d FAULTS=%s", seed, s)
	}
	if s := os.Getenv("QUORUMHA_CHAOS_SEMISYNC_TIMEOUT"); s != "" {
		replay += " SEMISYNC_TIMEOUT=" + s
	}
	t.Logf("chaos seed %d, %d rounds (replay: %s): %v", seed, rounds, replay, schedule)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute+time.Duration(rounds)*4*time.Minute)
	defer cancel()
	begin := time.Now()
	e := startIsolatedEnv(ctx, t, "info")
	// A crashed server must come back read-only (MHA asks the same of
	// every server); the runtime setting of the master is untouched.
	for i := range e.sb.Instances() {
		appendCnf(t, e.sb.Instance(i), "read_only=ON")
	}
	c := &chaosRun{t: t, e: e, seed: seed, rng: rand.New(rand.NewPCG(seed, 1))}
	// Semi-sync timeout: every server runs the sandbox's
	// rpl_semi_sync_master_timeout (5 s, the same on every server, so a
	// promoted replica waits as the old master did) unless
	// QUORUMHA_CHAOS_SEMISYNC_TIMEOUT (make chaos SEMISYNC_TIMEOUT=10s) sets
	// another. Its cost: a master left without a semi-sync replica (a new
	// master whose only other replica is down) holds its first commits that
	// long before it goes on asynchronously; the report attributes that wait
	// (AfterPromoted, SemiSyncFellBack). docs/agent.md asks for a timeout well
	// above the lease TTL (2 s here). With 10 s, seed 942's isolate_master_zone
	// round found the agent's self-fence held up behind commits waiting for a
	// semi-sync ACK; topology.FenceWrites now kills them while read_only
	// waits.
	if s := os.Getenv("QUORUMHA_CHAOS_SEMISYNC_TIMEOUT"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("QUORUMHA_CHAOS_SEMISYNC_TIMEOUT %q: want a duration such as 10s", s)
		}
		for i := range e.sb.Instances() {
			ms := d.Milliseconds()
			appendCnf(t, e.sb.Instance(i), fmt.Sprintf("rpl_semi_sync_master_timeout=%d", ms))
			if err := c.exec(ctx, i, fmt.Sprintf("SET GLOBAL rpl_semi_sync_master_timeout=%d", ms)); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("rpl_semi_sync_master_timeout %s on every server", d)
	}
	c.rep.Seed, c.rep.Replay = seed, replay
	defer func() {
		c.finish(ctx, time.Since(begin))
		if err := c.rep.Write(dir); err != nil {
			t.Error(err)
		} else {
			abs, _ := filepath.Abs(dir)
			t.Logf("chaos report: %s (summary.md, report.json, timeline.svg)", abs)
		}
		if len(c.rep.Violations) > 0 {
			t.Errorf("chaos seed %d: %d violations (replay: %s):\n  %s",
				seed, len(c.rep.Violations), replay, strings.Join(c.rep.Violations, "\n  "))
		}
	}()
	if err := e.waitLeaseHeld(ctx); err != nil {
		t.Fatalf("the master's lease is never held, so its agent will not fence it: %v", err)
	}
	_, c.samplers = e.samplers(t)
	c.group = e.groupWriter(ctx, t, 20*time.Millisecond)
	for n, r := range schedule {
		rr := c.round(ctx, n+1, r)
		c.rep.Rounds = append(c.rep.Rounds, rr.RoundResult)
		for _, v := range rr.Violations {
			c.rep.Violations = append(c.rep.Violations, fmt.Sprintf("seed %d round %d (%s): %s", seed, rr.N, r, v))
		}
		t.Logf("round %d %s: %s -> %s, records %v, promotions %d (want %s), unavailable %s (until/after promoted %s/%s), rebuilt %v, %d violations",
			rr.N, r, rr.OldMaster, rr.NewMaster, rr.Records, rr.Promotions, rr.Expect, rr.Unavailable.Round(time.Millisecond),
			rr.UntilPromoted.Round(time.Millisecond), rr.AfterPromoted.Round(time.Millisecond), rr.Rebuilt, len(rr.Violations))
		if rr.SemiSync != "" {
			t.Logf("round %d: %s", rr.N, rr.SemiSync)
		}
		if rr.MidFailover != "" {
			t.Logf("round %d: leader killed mid-failover: %s", rr.N, rr.MidFailover)
		}
		if len(rr.GapErrors) > 0 && rr.Unavailable >= time.Second {
			t.Logf("round %d: errors in the longest gap: %v", rr.N, rr.GapErrors)
		}
		if rr.aborted {
			t.Errorf("seed %d round %d: the cluster did not settle; the run stops here", seed, rr.N)
			return
		}
	}
}

// chaosRun is one run's state.
type chaosRun struct {
	t        *testing.T
	e        *isoEnv
	seed     uint64
	rng      *rand.Rand
	samplers []*harness.ReadOnlySampler
	group    *harness.WriteLoad
	master   int // sandbox index of the current master
	// zoneAcked are the in-zone writers' acks from before each round's
	// fault: acknowledged before anything failed, they must survive.
	// zoneAfter are their acks after the fault: a write a cut-off master
	// acknowledged had a semi-sync ACK (a replica has it, and the failover
	// takes the most advanced one) unless semi-sync fell back to async
	// before the agent's self-fence took hold. The sandbox's timeout (5 s)
	// is well above the lease (2 s + 0.5 s drift), and the agent kills
	// sessions waiting for an ACK as it fences, so a missing one is a
	// violation too (counted apart in ZoneLostAfterFault).
	zoneAfter []int64
	zoneAcked []int64
	zoneW     []chaos.Write
	rep       chaos.Report
}

// roundResult is chaos.RoundResult with the runner's own flag.
type roundResult struct {
	chaos.RoundResult
	aborted bool
}

// applied is a fault in place: how long to hold it at least, whether the
// master must be decided on before healing (a dead or cut master must not
// come back before the group acted), and how to heal it.
type applied struct {
	hold           time.Duration
	decisionFirst  bool
	heal           func(ctx context.Context) error
	afterFaultHook func(ctx context.Context, after uint64) error
	// midFO is filled by the hook of a mid-failover leader kill.
	midFO *midFailoverKill
}

// midFailoverKill is what the runner saw when it killed the leader in the
// middle of a failover.
type midFailoverKill struct {
	killed   string    // controller id
	at       time.Time // just before the kill
	observed foRecord  // the open record as the killed leader served it last
}

func (c *chaosRun) round(ctx context.Context, n int, faults chaos.Round) roundResult {
	t, e := c.t, c.e
	rr := roundResult{RoundResult: chaos.RoundResult{N: n, Faults: faults, Expect: faults.Expect().String(), Start: time.Now()}}
	m := c.master
	rr.OldMaster = e.sb.Instance(m).Addr()
	after := e.fo.lastRecordID(ctx, t)
	violate := func(format string, args ...any) {
		rr.Violations = append(rr.Violations, fmt.Sprintf(format, args...))
	}

	zdsn := e.sb.DSNVia(m, e.zoneOf(m).MySQLNet(), sandbox.AppUser, sandbox.AppPassword)
	zw := harness.StartWriteLoad(t, func() string { return zdsn }, 20*time.Millisecond)
	waitAcks(ctx, t, "writer in the master's zone", zw, 3)

	semiBefore := c.semiSyncFallbacks(ctx)
	if os.Getenv("QUORUMHA_CHAOS_TRACE") != "" {
		stop := c.trace(ctx, n)
		defer stop()
	}

	// Apply: the other fault first, so the master fault meets it.
	rr.FaultAt = time.Now()
	c.event(rr.FaultAt, "fault", fmt.Sprintf("round %d: %s", n, faults))
	var on []applied
	for _, k := range slices.Backward(faults) {
		a, err := c.apply(ctx, k, m)
		if err != nil {
			t.Fatalf("seed %d round %d: apply %s: %v", c.seed, n, k, err)
		}
		on = append(on, a)
	}
	decisionFirst := false
	for _, a := range on {
		decisionFirst = decisionFirst || a.decisionFirst
		if a.afterFaultHook != nil {
			if err := a.afterFaultHook(ctx, after); err != nil {
				violate("%v", err)
			}
		}
	}
	// Each fault lasts its own time (a 1 s SIGSTOP stays 1 s beside a
	// 10 s controller cut); a dead or cut master comes back only after
	// the group decided.
	slices.SortStableFunc(on, func(a, b applied) int { return cmp.Compare(a.hold, b.hold) })
	heal := func(a applied) {
		if err := a.heal(ctx); err != nil {
			// Not a finding about quorumha: settle below decides whether
			// the cluster came back.
			t.Logf("seed %d round %d: heal: %v", c.seed, n, err)
		}
	}
	for _, a := range on {
		if !a.decisionFirst {
			holdFor(ctx, a.hold-time.Since(rr.FaultAt))
			heal(a)
		}
	}
	if decisionFirst {
		if _, err := c.waitClosedFailover(ctx, after); err != nil {
			violate("the master stayed gone and no failover closed within %s: %v", chaosDecisionWait, err)
		}
		for _, a := range on {
			if a.decisionFirst {
				heal(a)
			}
		}
	}
	rr.HealAt = time.Now()
	c.event(rr.HealAt, "heal", fmt.Sprintf("round %d", n))
	switch faults.Expect() {
	case chaos.ExpectOne:
		if _, err := c.waitClosedFailover(ctx, after); err != nil && !decisionFirst {
			violate("the master was gone longer than the detection window and no failover closed: %v", err)
		}
	case chaos.ExpectAtMostOne:
		_ = c.waitNoOpenFailover(ctx, after)
	default:
		// Give a wrong decision the time to show: a few detection
		// rounds after the heal.
		holdFor(ctx, 6*time.Second)
		_ = c.waitNoOpenFailover(ctx, after)
	}

	// Settle: the master the API records, three servers replicating from
	// it, every controller seeing it healthy, its lease held, writes
	// flowing again.
	if err := c.settle(ctx, &rr); err != nil {
		violate("did not settle: %v", err)
		rr.aborted = true
	}
	zst := zw.Stop()
	for _, a := range zst.Acks {
		c.zoneW = append(c.zoneW, chaos.Write{At: a.At, OK: true})
		if a.At.Before(rr.FaultAt) {
			c.zoneAcked = append(c.zoneAcked, a.ID)
		} else {
			c.zoneAfter = append(c.zoneAfter, a.ID)
		}
	}
	for i, at := range zst.FailedAt {
		c.zoneW = append(c.zoneW, chaos.Write{At: at, OK: false, Err: zst.FailedErrs[i]})
	}
	rr.End = time.Now()
	gst := c.group.Snapshot()
	gw := groupWrites(gst)
	rr.Unavailable, rr.GapFrom, rr.GapTo = chaos.MaxGapAt(gw, rr.FaultAt, rr.End)
	rr.GapErrors = chaos.ErrorsBetween(gw, rr.GapFrom, rr.GapTo)
	if !rr.aborted {
		rr.SemiSync, rr.SemiSyncFellBack = c.semiSyncRound(ctx, semiBefore)
	}

	// Checkers.
	recs, err := c.agreedHistory(ctx)
	if err != nil {
		violate("%v", err)
	}
	promos := 0
	for _, r := range failoversAfter(recs, after) {
		rr.Records = append(rr.Records, r.ID)
		if b, err := json.Marshal(r); err == nil {
			rr.RecordsJSON = append(rr.RecordsJSON, b)
		}
		c.recordEvents(r)
		if r.Result == "success" {
			promos++
			if s, ok := r.step("promote"); ok && !s.End.IsZero() {
				rr.PromotedAt = s.End
			}
		}
		violate1 := checkRecordProof(r)
		for _, v := range violate1 {
			violate("%s", v)
		}
	}
	rr.Promotions = promos
	rr.Split()
	for _, a := range on {
		if a.midFO == nil {
			continue
		}
		var rec *foRecord
		for _, r := range failoversAfter(recs, after) {
			if r.ID == a.midFO.observed.ID {
				rec = &r
			}
		}
		var landed bool
		rr.MidFailover, landed = a.midFO.describe(rec)
		if !landed {
			// Not a finding about quorumha: the runner was too slow to
			// catch the record open; the summary says so.
			rr.Notes = append(rr.Notes, "the mid-failover leader kill did not land mid-failover: "+rr.MidFailover)
		}
	}
	for _, r := range failoversAfter(recs, after) {
		// Exactly one promotion also means one target: a resumed
		// promote re-runs, on the journalled choice only.
		targets := map[string]bool{}
		for _, s := range r.Steps {
			if s.Name == "promote" && s.Outcome == "ok" {
				targets[strings.Fields(s.Detail + " ?")[0]] = true
			}
		}
		if len(targets) > 1 {
			violate("record %d promoted more than one server: %v", r.ID, targets)
		}
	}
	switch faults.Expect() {
	case chaos.ExpectOne:
		if len(rr.Records) != 1 || promos != 1 {
			violate("a failure longer than the detection window must lead to exactly one promotion: %d failover records, %d promotions", len(rr.Records), promos)
		}
	case chaos.ExpectAtMostOne:
		if len(rr.Records) > 1 || promos > 1 {
			violate("at most one failover expected: %d records, %d promotions", len(rr.Records), promos)
		}
	default:
		if len(rr.Records) != 0 {
			violate("a fault shorter than the detection window (or not on the master) led to %d failover records (%d promotions)", len(rr.Records), promos)
		}
	}
	samples := c.samplesBetween(rr.Start, rr.End)
	for _, v := range harness.CheckNeverTwoWritable(samples, harness.DefaultMaxGap) {
		violate("%s", v)
	}
	// The same count without the API: the servers other than the old
	// master that any zone's sampler saw writable this round.
	promotedSeen := map[string]bool{}
	for _, x := range samples {
		if x.State == harness.Writable && x.Server != rr.OldMaster && !x.Sent.Before(rr.FaultAt) {
			promotedSeen[x.Server] = true
		}
	}
	if maxPromos := map[chaos.Expect]int{chaos.ExpectNone: 0, chaos.ExpectAtMostOne: 1, chaos.ExpectOne: 1}[faults.Expect()]; len(promotedSeen) > maxPromos {
		violate("servers other than the old master sampled writable: %v (at most %d expected)", slices.Sorted(maps.Keys(promotedSeen)), maxPromos)
	}
	if rr.NewMaster != rr.OldMaster && rr.NewMaster != "" {
		first, ok := harness.FirstObserved(samples, rr.NewMaster, harness.Writable, rr.FaultAt)
		if !ok {
			violate("new master %s never sampled writable", rr.NewMaster)
		} else {
			for _, v := range harness.CheckNoAckAfter(zst.Acks, first.Answered) {
				violate("in-zone writer on %s: %s", rr.OldMaster, v)
			}
		}
	}
	if !rr.aborted {
		lost := c.checkNothingLost(ctx)
		for _, v := range lost {
			violate("%s", v)
		}
		if len(lost) > 0 {
			c.t.Logf("round %d: lost writes; where they are: %s", n, c.whereAre(ctx, lost))
		}
		var after []int64
		for _, a := range zst.Acks {
			if !a.At.Before(rr.FaultAt) {
				after = append(after, a.ID)
			}
		}
		if have, err := c.e.loadIDs(ctx, c.master); err == nil {
			if missing := harness.MissingIDs(after, have); len(missing) > 0 {
				note := fmt.Sprintf("%d in-zone write(s) that %s acknowledged after the fault are missing on the master %s (acknowledged after semi-sync fell back to async, before the agent's fence): %v",
					len(missing), rr.OldMaster, rr.NewMaster, missing[:min(5, len(missing))])
				violate("%s", note)
				c.t.Logf("round %d: %s; where they are: %s", n, note, c.whereAre(ctx, harness.CheckNothingLost(after, have)))
			}
		}
	}
	for _, r := range failoversAfter(recs, after) {
		if r.Result != "success" || faults.Expect() == chaos.ExpectNone {
			c.t.Logf("round %d: %s", n, r.summary())
		}
	}
	if len(rr.Records) > 0 {
		// As an operator does after a failover: without it anti_flap
		// (1h) refuses the next round's automatic failover.
		if err := c.ack(ctx, n); err != nil {
			violate("acknowledge the failover: %v", err)
		}
	}
	return rr
}

// apply puts fault k in place on a cluster whose master is instance m.
func (c *chaosRun) apply(ctx context.Context, k chaos.Kind, m int) (applied, error) {
	e := c.e
	noop := func(context.Context) error { return nil }
	restart := func(i int) func(context.Context) error {
		return func(ctx context.Context) error {
			if e.sb.Alive(i) {
				return nil
			}
			return e.sb.StartInstance(ctx, i)
		}
	}
	switch k {
	case chaos.KillMaster:
		return applied{decisionFirst: true, heal: restart(m)}, e.sb.Kill(m)
	case chaos.ShutdownMaster:
		return applied{decisionFirst: true, heal: restart(m)}, e.sb.StopInstance(ctx, m)
	case chaos.StopShort, chaos.StopLong:
		d := time.Second
		if k == chaos.StopLong {
			d = 8 * time.Second
		}
		pid, err := serverPID(e.sb.Instance(m))
		if err != nil {
			return applied{}, err
		}
		return applied{hold: d, heal: func(context.Context) error { return syscall.Kill(pid, syscall.SIGCONT) }},
			syscall.Kill(pid, syscall.SIGSTOP)
	case chaos.IsolateMasterZone:
		var peers []string
		for _, z := range e.nw.Zones {
			if z != e.zoneOf(m) {
				peers = append(peers, z.IP)
			}
		}
		e.nw.Isolate(e.zoneOf(m), append(peers, e.nw.HostIP)...)
		return applied{decisionFirst: true, heal: func(context.Context) error { e.nw.Heal(e.zoneOf(m)); return nil }}, nil
	case chaos.CutCtrlFromMaster:
		var ips []string
		for _, ctl := range e.g.Nodes {
			ips = append(ips, ctl.NetZone().IP)
		}
		e.nw.Isolate(e.zoneOf(m), ips...)
		return applied{hold: 12 * time.Second, heal: func(context.Context) error { e.nw.Heal(e.zoneOf(m)); return nil }}, nil
	case chaos.IsolateLeader, chaos.IsolateFollower:
		leader, err := c.leader(ctx)
		if err != nil {
			return applied{}, err
		}
		target := leader
		if k == chaos.IsolateFollower {
			var fs []*harness.Controller
			for _, ctl := range e.g.Running() {
				if ctl != leader {
					fs = append(fs, ctl)
				}
			}
			target = fs[c.rng.IntN(len(fs))]
		}
		var ips []string
		for _, ctl := range e.g.Nodes {
			if ctl != target {
				ips = append(ips, ctl.NetZone().IP)
			}
		}
		e.nw.Isolate(target.NetZone(), ips...)
		c.event(time.Now(), "fault", "isolated controller "+target.ID)
		return applied{hold: 10 * time.Second, heal: func(context.Context) error { e.nw.Heal(target.NetZone()); return nil }}, nil
	case chaos.KillLeader:
		leader, err := c.leader(ctx)
		if err != nil {
			return applied{}, err
		}
		e.g.Kill(leader)
		c.event(time.Now(), "fault", "killed controller "+leader.ID)
		return applied{hold: 5 * time.Second, heal: func(context.Context) error { return e.g.Start(leader) }}, nil
	case chaos.KillLeaderMidFO:
		// QUORUMHA_TEST_STEP_DELAY is not used: the production path has
		// no test hooks. The runner watches the leader's own history at a
		// short period and kills the controller running the record as
		// soon as it is open; the fence step (a lease lapse, two TTLs
		// and more) keeps it open long enough. The round's report says
		// whether the record was still open at the kill, and in which
		// step.
		mk := &midFailoverKill{}
		hook := func(ctx context.Context, after uint64) error {
			leader, err := c.leader(ctx)
			if err != nil {
				return err
			}
			wctx, cancel := context.WithTimeout(ctx, chaosDecisionWait)
			defer cancel()
			var open foRecord
			err = harness.Poll(wctx, 10*time.Millisecond, func() error {
				ctls := append([]*harness.Controller{leader}, e.g.Running()...)
				for _, ctl := range ctls {
					rctx, rcancel := context.WithTimeout(wctx, time.Second)
					recs, err := foHistory(rctx, ctl)
					rcancel()
					if err != nil {
						continue
					}
					for _, r := range failoversAfter(recs, after) {
						// Open, or already closed (the runner was too
						// slow: the leader is killed anyway and the
						// report says the kill did not land).
						open = r
						return nil
					}
					if ctl == leader {
						// The leader's answer is the freshest; the
						// others only help when it stopped answering.
						return errors.New("no failover record yet")
					}
				}
				return errors.New("no failover record yet")
			})
			if err != nil {
				return fmt.Errorf("no failover record seen open after the master was killed: %w", err)
			}
			// The controller running the record: the leader of its last
			// step, or the one that opened it.
			runner := open.OpenedBy
			if len(open.Steps) > 0 && open.Steps[len(open.Steps)-1].Leader != "" {
				runner = open.Steps[len(open.Steps)-1].Leader
			}
			victim := e.g.Node(runner)
			if victim == nil || !victim.Running() {
				victim = leader
			}
			mk.killed, mk.at, mk.observed = victim.ID, time.Now(), open
			e.g.Kill(victim)
			c.event(mk.at, "fault", "killed leader controller "+victim.ID+" mid-failover (record "+strconv.FormatUint(open.ID, 10)+" open)")
			return nil
		}
		heal := func(ctx context.Context) error {
			if mk.killed != "" {
				if killed := e.g.Node(mk.killed); killed != nil && !killed.Running() {
					if err := e.g.Start(killed); err != nil {
						return err
					}
				}
			}
			return restart(m)(ctx)
		}
		return applied{decisionFirst: true, heal: heal, afterFaultHook: hook, midFO: mk}, e.sb.Kill(m)
	case chaos.ReplicaDown:
		r := c.replica(m)
		return applied{hold: 10 * time.Second, heal: restart(r)}, e.sb.Kill(r)
	case chaos.ReplicaIOStop:
		r := c.replica(m)
		if err := c.exec(ctx, r, "STOP SLAVE IO_THREAD"); err != nil {
			return applied{}, err
		}
		return applied{hold: 10 * time.Second, heal: func(ctx context.Context) error {
			// The failover may have promoted it (no longer a replica) or
			// repointed and restarted it already.
			if st, err := e.sb.ReplicaStatus(ctx, r); err != nil || st == nil || st.MasterPort == 0 {
				return err
			}
			return c.exec(ctx, r, "START SLAVE IO_THREAD")
		}}, nil
	}
	return applied{heal: noop}, fmt.Errorf("unknown fault %q", k)
}

// replica picks a replica of master m at random (from the seed).
func (c *chaosRun) replica(m int) int {
	var rs []int
	for i := range c.e.sb.Instances() {
		if i != m {
			rs = append(rs, i)
		}
	}
	return rs[c.rng.IntN(len(rs))]
}

func (c *chaosRun) leader(ctx context.Context) (*harness.Controller, error) {
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	li, err := c.e.g.WaitLeader(wctx, c.e.g.Running())
	if err != nil {
		return nil, err
	}
	return c.e.g.Node(li.ID), nil
}

func (c *chaosRun) exec(ctx context.Context, i int, stmts ...string) error {
	db, err := sql.Open("mysql", c.e.sb.DSN(i, sandbox.AdminUser, sandbox.AdminPassword))
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s on %s: %w", s, c.e.sb.Instance(i).Addr(), err)
		}
	}
	return nil
}

// waitClosedFailover waits until a running controller holds a closed
// failover record newer than after.
func (c *chaosRun) waitClosedFailover(ctx context.Context, after uint64) (foRecord, error) {
	wctx, cancel := context.WithTimeout(ctx, chaosDecisionWait)
	defer cancel()
	var got foRecord
	err := harness.Poll(wctx, 200*time.Millisecond, func() error {
		for _, ctl := range c.e.g.Running() {
			recs, err := foHistory(wctx, ctl)
			if err != nil {
				continue
			}
			for _, r := range failoversAfter(recs, after) {
				if !r.open() {
					got = r
					return nil
				}
				return fmt.Errorf("open: %s", r.summary())
			}
		}
		return fmt.Errorf("no failover record after %d", after)
	})
	return got, err
}

// waitNoOpenFailover waits until no running controller holds an open
// failover record newer than after.
func (c *chaosRun) waitNoOpenFailover(ctx context.Context, after uint64) error {
	wctx, cancel := context.WithTimeout(ctx, chaosDecisionWait)
	defer cancel()
	return harness.Poll(wctx, 200*time.Millisecond, func() error {
		for _, ctl := range c.e.g.Running() {
			recs, err := foHistory(wctx, ctl)
			if err != nil {
				return err
			}
			for _, r := range failoversAfter(recs, after) {
				if r.open() {
					return fmt.Errorf("open: %s", r.summary())
				}
			}
		}
		return nil
	})
}

// settle brings the cluster back to three servers under the master the
// API records: every other server alive, unfenced and replicating from it
// (rebuilt from a dump of the master when it is not, e.g. the old master
// with errant transactions from before its fence), every controller seeing
// the master healthy, its lease held, the group-side writer acknowledging
// again.
func (c *chaosRun) settle(ctx context.Context, rr *roundResult) error {
	e := c.e
	sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	// Every controller must run (a healed round restarted them) and agree.
	if _, err := e.g.WaitLeader(sctx, e.g.Nodes); err != nil {
		return fmt.Errorf("controllers: %w", err)
	}
	var addr string
	err := harness.Poll(sctx, 200*time.Millisecond, func() error {
		seen := map[string]bool{}
		for _, ctl := range e.g.Nodes {
			var r struct {
				Master string `json:"master"`
			}
			if _, err := harness.Do(sctx, http.MethodGet, ctl.URL("/v1/clusters/"+detCluster+"/master"), nil, &r); err != nil {
				return fmt.Errorf("%s: %w", ctl.ID, err)
			}
			seen[r.Master] = true
			addr = r.Master
		}
		if len(seen) != 1 || addr == "" {
			return fmt.Errorf("controllers name %v", seen)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("recorded master: %w", err)
	}
	nm := e.fo.index(addr)
	if nm < 0 {
		return fmt.Errorf("recorded master %s is not a sandbox server", addr)
	}
	rr.NewMaster = addr
	c.master = nm
	e.fo.det.master = addr
	for i := range e.sb.Instances() {
		if i == nm {
			continue
		}
		if !e.sb.Alive(i) {
			if err := e.sb.StartInstance(sctx, i); err != nil {
				return err
			}
		}
		refenced, fenceNote, err := c.unfence(sctx, i)
		if err != nil {
			return err
		}
		if fenceNote != "" {
			rr.Notes = append(rr.Notes, fenceNote)
			c.t.Logf("round %d: %s", rr.N, fenceNote)
		}
		if refenced > 0 {
			note := fmt.Sprintf("%s's agent fenced it again %d time(s) after its fence was cleared (lease re-armed by renewals after the heal, then lapsed)",
				e.sb.Instance(i).Addr(), refenced)
			rr.Notes = append(rr.Notes, note)
			c.t.Logf("round %d: %s", rr.N, note)
		}
		if c.replicatesFrom(sctx, i, nm, 20*time.Second) == nil {
			continue
		}
		// Already pointed at the master but its IO thread gave up
		// (master_connect_retry is 60 s): restart the threads first.
		if st, err := e.sb.ReplicaStatus(sctx, i); err == nil && st != nil && st.MasterPort == e.sb.Instance(nm).Port {
			if c.exec(sctx, i, "STOP SLAVE", "START SLAVE") == nil && c.replicatesFrom(sctx, i, nm, 20*time.Second) == nil {
				continue
			}
		}
		c.t.Logf("rebuilding %s from %s", e.sb.Instance(i).Addr(), addr)
		if err := c.rebuild(sctx, i, nm); err != nil {
			return fmt.Errorf("rebuild %s: %w", e.sb.Instance(i).Addr(), err)
		}
		rr.Rebuilt = append(rr.Rebuilt, e.sb.Instance(i).Addr())
		if err := c.replicatesFrom(sctx, i, nm, time.Minute); err != nil {
			return err
		}
	}
	if err := harness.Poll(sctx, 200*time.Millisecond, func() error {
		for _, ctl := range e.g.Nodes {
			a, watched, err := detAssess(sctx, ctl)
			if err != nil {
				return err
			}
			if watched != addr || a.State != "healthy" {
				return fmt.Errorf("%s watches %s: %s (%s)", ctl.ID, watched, a.State, a.Reason)
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("healthy: %w", err)
	}
	if err := harness.Poll(sctx, 200*time.Millisecond, func() error {
		st, err := agentFence(sctx, e.agents[nm])
		if err != nil {
			return err
		}
		if st["state"] != "held" {
			return fmt.Errorf("master's agent: %v", st)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("lease of %s never held again: %w", addr, err)
	}
	n := len(c.group.Snapshot().Acked)
	if err := harness.Poll(sctx, 100*time.Millisecond, func() error {
		if s := c.group.Snapshot(); len(s.Acked) < n+5 {
			return fmt.Errorf("group-side writer: %d acks since, last error %s", len(s.Acked)-n, s.LastErr)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("writes never resumed: %w", err)
	}
	c.event(time.Now(), "settled", "master "+addr)
	return nil
}

func (c *chaosRun) clearFence(ctx context.Context, i int) error {
	body, _ := json.Marshal(map[string]string{"controller": "chaos-runner", "reason": "rejoin as a replica"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.e.agents[i].url+"/v1/fence/clear", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+isoAgentToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("clear fence of %s: %s", c.e.agents[i].url, resp.Status)
	}
	return nil
}

func (c *chaosRun) replicatesFrom(ctx context.Context, i, m int, within time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	want := c.e.sb.Instance(m)
	return harness.Poll(wctx, 200*time.Millisecond, func() error {
		st, err := c.e.sb.ReplicaStatus(wctx, i)
		if err != nil {
			return err
		}
		if st == nil {
			return fmt.Errorf("%s is not a replica", c.e.sb.Instance(i).Addr())
		}
		if st.MasterPort != want.Port || st.IORunning != "Yes" || st.SQLRunning != "Yes" {
			return fmt.Errorf("%s: master port %d IO %s SQL %s: %s %s", c.e.sb.Instance(i).Addr(),
				st.MasterPort, st.IORunning, st.SQLRunning, st.LastIOError, st.LastSQLError)
		}
		return nil
	})
}

var gtidSlavePos = regexp.MustCompile(`gtid_slave_pos\s*=\s*'([^']*)'`)

// rebuild makes instance i a fresh replica of m: its user databases are
// dropped and reloaded from a consistent dump of m (without binary
// logging), its binary log reset (which drops any errant transaction), and
// it replicates from m's GTID position of the dump. The simplest correct
// way back for a server that may hold writes m never saw.
func (c *chaosRun) rebuild(ctx context.Context, i, m int) error {
	sb := c.e.sb
	src, dst := sb.Instance(m), sb.Instance(i)
	dbs, err := c.userDatabases(ctx, m)
	if err != nil {
		return err
	}
	args := []string{"-h", src.Host, "-P", strconv.Itoa(src.Port), "-u", sandbox.AdminUser, "-p" + sandbox.AdminPassword,
		"--single-transaction", "--gtid", "--master-data=2", "--databases"}
	dump, err := exec.CommandContext(ctx, "mariadb-dump", append(args, dbs...)...).Output()
	if err != nil {
		return fmt.Errorf("mariadb-dump of %s: %w", src.Addr(), err)
	}
	pos := gtidSlavePos.FindSubmatch(dump)
	if pos == nil {
		return fmt.Errorf("mariadb-dump of %s: no gtid_slave_pos in the dump", src.Addr())
	}
	old, err := c.userDatabases(ctx, i)
	if err != nil {
		return err
	}
	stmts := []string{"STOP SLAVE", "RESET SLAVE ALL", "SET SESSION sql_log_bin=0"}
	for _, d := range old {
		stmts = append(stmts, "DROP DATABASE `"+d+"`")
	}
	if err := c.exec(ctx, i, stmts...); err != nil {
		return err
	}
	load := exec.CommandContext(ctx, "mariadb", "-h", dst.Host, "-P", strconv.Itoa(dst.Port), "-u", sandbox.AdminUser,
		"-p"+sandbox.AdminPassword, "--init-command=SET SESSION sql_log_bin=0")
	load.Stdin = bytes.NewReader(dump)
	if out, err := load.CombinedOutput(); err != nil {
		return fmt.Errorf("load into %s: %w: %s", dst.Addr(), err, out)
	}
	return c.exec(ctx, i, "RESET MASTER",
		fmt.Sprintf("SET GLOBAL gtid_slave_pos='%s'", pos[1]),
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%d, MASTER_USER='%s', MASTER_PASSWORD='%s', MASTER_USE_GTID=slave_pos",
			src.Host, src.Port, sandbox.ReplUser, sandbox.ReplPassword),
		"START SLAVE")
}

func (c *chaosRun) userDatabases(ctx context.Context, i int) ([]string, error) {
	db, err := sql.Open("mysql", c.e.sb.DSN(i, sandbox.AdminUser, sandbox.AdminPassword))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SHOW DATABASES")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		if !slices.Contains([]string{"mysql", "information_schema", "performance_schema", "sys"}, d) {
			out = append(out, d)
		}
	}
	return out, rows.Err()
}

// agreedHistory reads /v1/history from every controller and requires the
// same records everywhere.
func (c *chaosRun) agreedHistory(ctx context.Context) ([]foRecord, error) {
	var first []foRecord
	var firstID, firstKey string
	for _, ctl := range c.e.g.Nodes {
		if !ctl.Running() {
			continue
		}
		var recs []foRecord
		var key string
		// Followers apply the log a moment later: poll briefly for
		// agreement before calling it a disagreement.
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := harness.Poll(wctx, 200*time.Millisecond, func() error {
			var err error
			recs, err = foHistory(wctx, ctl)
			if err != nil {
				return err
			}
			key = historyKey(recs)
			if firstKey != "" && key != firstKey {
				return fmt.Errorf("%s serves %s; %s serves %s", ctl.ID, key, firstID, firstKey)
			}
			return nil
		})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("controllers serve different histories: %w", err)
		}
		if firstKey == "" {
			first, firstID, firstKey = recs, ctl.ID, key
		}
	}
	return first, nil
}

func historyKey(recs []foRecord) string {
	var b strings.Builder
	for _, r := range recs {
		fmt.Fprintf(&b, "[%d %s %s %s->%s %d steps]", r.ID, r.Kind, r.Result, r.OldMaster, r.NewMaster, len(r.Steps))
	}
	return b.String()
}

// checkRecordProof: a closed failover record that promoted must state its
// evidence and a fence proof.
func checkRecordProof(r foRecord) []string {
	if r.open() || r.Result != "success" {
		return nil
	}
	var out []string
	if ev := strings.TrimSpace(string(r.Evidence)); ev == "" || ev == "null" || ev == "{}" || ev == "[]" {
		out = append(out, fmt.Sprintf("record %d promoted without evidence: %s", r.ID, r.summary()))
	}
	if r.Fence == nil || r.Fence.State != "proven" || r.Fence.Proof == "" {
		f, _ := json.Marshal(r.Fence)
		out = append(out, fmt.Sprintf("record %d promoted without a fence proof: fence %s", r.ID, f))
	}
	return out
}

func (c *chaosRun) recordEvents(r foRecord) {
	c.event(r.Opened, "opened", fmt.Sprintf("record %d %s", r.ID, r.OldMaster))
	if s, ok := r.step("fence"); ok && !s.End.IsZero() {
		proof := ""
		if r.Fence != nil {
			proof = r.Fence.Proof
		}
		c.event(s.End, "fence", fmt.Sprintf("record %d fence %s (%s)", r.ID, s.Outcome, proof))
	}
	if s, ok := r.step("promote"); ok && !s.End.IsZero() {
		c.event(s.End, "promote", fmt.Sprintf("record %d promoted %s", r.ID, r.NewMaster))
	}
	if !r.Closed.IsZero() {
		c.event(r.Closed, "closed", fmt.Sprintf("record %d %s", r.ID, r.Result))
	}
}

func (c *chaosRun) event(at time.Time, kind, label string) {
	c.rep.Events = append(c.rep.Events, chaos.Event{At: at, Kind: kind, Label: label})
}

func (c *chaosRun) samplesBetween(from, to time.Time) []harness.Sample {
	var out []harness.Sample
	for _, s := range c.samplers {
		for _, x := range s.Samples() {
			if !x.Sent.Before(from) && !x.Sent.After(to) {
				out = append(out, x)
			}
		}
	}
	return out
}

// checkNothingLost: every acknowledged group-side write, and every in-zone
// write acknowledged before a round's fault, is on the current master.
func (c *chaosRun) checkNothingLost(ctx context.Context) []harness.Violation {
	// The acks first: a write acknowledged after the read below is not
	// in it yet.
	acked := append(c.group.Snapshot().Acked, c.zoneAcked...)
	have, err := c.e.loadIDs(ctx, c.master)
	if err != nil {
		return []harness.Violation{{Rule: harness.RuleLostWrite, Detail: fmt.Sprintf("read the master's ids: %v", err)}}
	}
	return harness.CheckNothingLost(acked, have)
}

// finish stops the load and the samplers and fills in the run's totals.
func (c *chaosRun) finish(ctx context.Context, took time.Duration) {
	c.rep.Took = took
	if c.group == nil {
		return
	}
	gst := c.group.Stop()
	c.rep.Acked = len(gst.Acked)
	c.rep.ZoneAcked = len(c.zoneAcked) + len(c.zoneAfter)
	c.rep.Writers = map[string][]chaos.Write{"group-side writer": groupWrites(gst), "in-zone writer": c.zoneW}
	// The master the API records now (a round that stopped early did not
	// settle on it).
	if addr, err := c.recordedMaster(ctx); err == nil && c.e.fo.index(addr) >= 0 {
		c.master = c.e.fo.index(addr)
	}
	if have, err := c.e.loadIDs(ctx, c.master); err != nil {
		c.t.Logf("final master's ids: %v", err)
	} else {
		missing := harness.MissingIDs(append(append(gst.Acked, c.zoneAcked...), c.zoneAfter...), have)
		c.rep.Lost = len(missing)
		c.rep.ZoneLostAfterFault = len(harness.MissingIDs(c.zoneAfter, have))
		if len(missing) > 0 {
			c.rep.Violations = append(c.rep.Violations, fmt.Sprintf("seed %d end: %d acknowledged writes missing on the final master %s: %v",
				c.seed, len(missing), c.e.sb.Instance(c.master).Addr(), missing[:min(10, len(missing))]))
		}
	}
	samples := allSamples(c.samplers)
	c.rep.Samples = len(samples)
	tw := harness.CheckNeverTwoWritable(samples, harness.DefaultMaxGap)
	c.rep.DoubleWritable = len(tw)
	for _, v := range tw {
		c.rep.Violations = append(c.rep.Violations, fmt.Sprintf("seed %d whole run: %s", c.seed, v))
	}
}

func groupWrites(s harness.Stats) []chaos.Write {
	var out []chaos.Write
	for _, a := range s.Acks {
		out = append(out, chaos.Write{At: a.At, OK: true})
	}
	for i, at := range s.FailedAt {
		out = append(out, chaos.Write{At: at, OK: false, Err: s.FailedErrs[i]})
	}
	slices.SortFunc(out, func(a, b chaos.Write) int { return a.At.Compare(b.At) })
	return out
}

func serverPID(in sandbox.Instance) (int, error) {
	b, err := os.ReadFile(in.PIDFile())
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func appendCnf(t *testing.T, in sandbox.Instance, line string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(in.DataDir, "my.cnf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(line + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

// holdFor holds a fault in place for d (a fault's duration, not a wait
// for a result) or until ctx ends.
func holdFor(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// whereAre says, for the first lost ids, which servers hold them and each
// server's GTID positions: a lost write's trail.
func (c *chaosRun) whereAre(ctx context.Context, lost []harness.Violation) string {
	var b strings.Builder
	for i, in := range c.e.sb.Instances() {
		have, err := c.e.loadIDs(ctx, i)
		n := 0
		for _, v := range lost {
			for _, id := range have {
				if strings.Contains(v.Detail, fmt.Sprintf("id %d ", id)) {
					n++
				}
			}
		}
		var binlog, slave, current string
		if db, err := sql.Open("mysql", c.e.sb.DSN(i, sandbox.AdminUser, sandbox.AdminPassword)); err == nil {
			_ = db.QueryRowContext(ctx, "SELECT @@gtid_binlog_pos, @@gtid_slave_pos, @@gtid_current_pos").Scan(&binlog, &slave, &current)
			db.Close()
		}
		fmt.Fprintf(&b, "\n  %s: holds %d of %d lost (read err %v); gtid binlog %s slave %s current %s", in.Addr(), n, len(lost), err, binlog, slave, current)
	}
	return b.String()
}

// ack acknowledges the last failover (POST /v1/clusters/{c}/ack on the
// leader).
func (c *chaosRun) ack(ctx context.Context, n int) error {
	leader, err := c.leader(ctx)
	if err != nil {
		return err
	}
	body := map[string]string{"by": "chaos-runner", "comment": fmt.Sprintf("seed %d round %d", c.seed, n)}
	code, err := c.e.g.Do(ctx, http.MethodPost, leader.URL("/v1/clusters/"+detCluster+"/ack"), body, nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("POST ack on %s: %d", leader.ID, code)
	}
	return nil
}

// recordedMaster is the master a running controller names.
func (c *chaosRun) recordedMaster(ctx context.Context) (string, error) {
	for _, ctl := range c.e.g.Running() {
		var r struct {
			Master string `json:"master"`
		}
		if _, err := harness.Do(ctx, http.MethodGet, ctl.URL("/v1/clusters/"+detCluster+"/master"), nil, &r); err == nil && r.Master != "" {
			return r.Master, nil
		}
	}
	return "", errors.New("no controller names a master")
}

// unfence clears the fence of instance i's agent (a server about to
// rejoin as a replica) and waits until the agent has stayed unfenced and
// unarmed for three lease TTLs: a renewal that reaches it late (sent
// before the heal) arms it again, and the lapse that follows fences it
// again, killing the sessions of a rebuild. It returns how often the agent
// fenced again after a clear.
func (c *chaosRun) unfence(ctx context.Context, i int) (int, string, error) {
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cleared, refenced, note := false, 0, ""
	var quiet time.Time
	err := harness.Poll(wctx, 200*time.Millisecond, func() error {
		st, err := agentFence(wctx, c.e.agents[i])
		if err != nil {
			return err
		}
		switch {
		case st["fenced"] == true:
			if cleared {
				refenced++
			}
			if errs, _ := st["errors"].([]any); len(errs) > 0 && note == "" && !strings.Contains(fmt.Sprint(errs), "server unreachable") {
				// (A killed server's fence stands on its being down.)
				// Evidence for the report: a fence that did not
				// fully apply (e.g. read_only held up behind commits
				// waiting for a semi-sync ACK).
				note = fmt.Sprintf("%s's agent fence (since %v, %v) stands with errors %v; actions %v",
					c.e.sb.Instance(i).Addr(), st["since"], st["reason"], errs, st["actions"])
			}
			// As quorumha rejoin does: the server stays read-only when
			// its fence goes (a fence whose SET read_only failed leaves
			// it writable, and the runner must not be what makes it so).
			if err := c.exec(wctx, i, "SET GLOBAL read_only=ON"); err != nil {
				return err
			}
			if err := c.clearFence(wctx, i); err != nil {
				return err
			}
			cleared, quiet = true, time.Time{}
			return errors.New("fence cleared just now")
		case st["armed"] == true:
			quiet = time.Time{}
			return fmt.Errorf("agent armed (%v): a lapse would fence it", st["state"])
		case quiet.IsZero():
			quiet = time.Now()
		}
		if time.Since(quiet) < 3*isoLeaseTTL {
			return errors.New("not quiet for long enough")
		}
		return nil
	})
	if err != nil {
		return refenced, note, fmt.Errorf("agent of %s never settled unfenced: %w", c.e.sb.Instance(i).Addr(), err)
	}
	return refenced, note, nil
}
