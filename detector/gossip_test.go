package detector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

// waitFor polls cond every 20ms until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, last)
		}
		<-tick.C
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("DETECTOR_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return nil
}

func newTestGossip(t *testing.T, cfg GossipConfig) *Gossip {
	t.Helper()
	cfg.BindAddr = "127.0.0.1:0"
	cfg.Profile = "local"
	cfg.Logger = testLogger(t)
	g, err := NewGossip(cfg)
	if err != nil {
		t.Fatalf("NewGossip(%s): %v", cfg.NodeName, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("shutdown %s: %v", cfg.NodeName, err)
		}
	})
	return g
}

// threeGossips starts c1..c3 in zones a..c; c2 and c3 join c1.
func threeGossips(t *testing.T, label string, keys [3][]byte) []*Gossip {
	g1 := newTestGossip(t, GossipConfig{NodeName: "c1", Zone: "a", HTTPAddr: "127.0.0.1:8081", Label: label, SecretKey: keys[0]})
	g2 := newTestGossip(t, GossipConfig{NodeName: "c2", Zone: "b", Label: label, SecretKey: keys[1], Join: []string{g1.Addr()}})
	g3 := newTestGossip(t, GossipConfig{NodeName: "c3", Zone: "c", Label: label, SecretKey: keys[2], Join: []string{g1.Addr()}})
	gs := []*Gossip{g1, g2, g3}
	// c2 and c3 join at once (joins run in the background): when c2 missed
	// the broadcast of c3's arrival, it learns of c3 at its next push/pull,
	// up to 15 s later in the local profile (seen once in CI: "c2 sees 2"
	// after 10 s). The wait covers two of those intervals.
	waitFor(t, 30*time.Second, "3 members", func() (bool, string) {
		for _, g := range gs {
			if n := len(g.Members()); n != 3 {
				return false, fmt.Sprintf("%s sees %d", g.cfg.NodeName, n)
			}
		}
		return true, ""
	})
	return gs
}

func verdictFrom(name, zone string, seq uint64, s State) Verdict {
	return Verdict{Controller: name, Zone: zone, Cluster: "app1", Instance: master, State: s,
		ObservedAt: time.Now(), Seq: seq}
}

// converged reports whether every gossip has every controller's verdict
// about master at least at seq.
func converged(gs []*Gossip, seq uint64) (bool, string) {
	for _, g := range gs {
		vs := g.Verdicts()[master]
		if len(vs) != len(gs) {
			return false, fmt.Sprintf("%s has %d verdicts", g.cfg.NodeName, len(vs))
		}
		for _, v := range vs {
			if v.Seq < seq {
				return false, fmt.Sprintf("%s has %s at seq %d", g.cfg.NodeName, v.Controller, v.Seq)
			}
		}
	}
	return true, ""
}

func TestGossip_ThreeMembersConverge(t *testing.T) {
	gs := threeGossips(t, "", [3][]byte{})
	zones, https := map[string]string{}, map[string]string{}
	for _, m := range gs[2].Members() {
		zones[m.Name], https[m.Name] = m.Zone, m.HTTPAddr
		if m.State != "alive" {
			t.Errorf("member %s state %s", m.Name, m.State)
		}
	}
	if zones["c1"] != "a" || zones["c2"] != "b" || zones["c3"] != "c" {
		t.Errorf("zones from node meta: %v", zones)
	}
	if https["c1"] != "127.0.0.1:8081" || https["c2"] != "" {
		t.Errorf("HTTP addresses from node meta: %v", https)
	}
	for seq := uint64(1); seq <= 3; seq++ {
		for i, g := range gs {
			g.Publish([]Verdict{verdictFrom(g.cfg.NodeName, string(rune('a'+i)), seq, StateDown)})
		}
		// One publish each, no repeats: broadcasts alone must carry it.
		waitFor(t, 5*time.Second, fmt.Sprintf("verdicts at seq %d everywhere", seq), func() (bool, string) {
			return converged(gs, seq)
		})
	}
	vs := gs[0].Verdicts()[master]
	for _, v := range vs {
		if v.Controller != "c1" && v.ReceivedAt.IsZero() {
			t.Errorf("remote verdict of %s has no ReceivedAt", v.Controller)
		}
	}
	a := Assess("app1", master, vs, nil, len(gs[0].Members()), zones, time.Now(), Rules{Freshness: 5 * time.Second, MultiZone: true})
	if a.State != AssessDeadConfirmed || a.DownCount != 3 {
		t.Errorf("assessment from gossip: %s %s", a.State, a.Reason)
	}
	select {
	case <-gs[0].Changed():
	default:
		t.Error("Changed() delivered no wake-up")
	}
}

func TestGossip_LabelMismatchDoesNotMix(t *testing.T) {
	g1 := newTestGossip(t, GossipConfig{NodeName: "c1", Zone: "a", Label: "group-one"})
	g2, err := NewGossip(GossipConfig{NodeName: "c2", Zone: "b", Label: "group-two", BindAddr: "127.0.0.1:0",
		Profile: "local", Join: []string{g1.Addr()}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g2.Shutdown(context.Background()) })
	g2.Publish([]Verdict{verdictFrom("c2", "b", 1, StateDown)})
	if n := len(g1.Members()); n != 1 {
		t.Fatalf("c1 sees %d members across labels", n)
	}
	if n := len(g2.Members()); n != 1 {
		t.Fatalf("c2 sees %d members across labels", n)
	}
	if vs := g1.Verdicts()[master]; len(vs) != 0 {
		t.Fatalf("verdicts crossed labels: %+v", vs)
	}
}

func TestGossip_EncryptionKey(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	gs := threeGossips(t, "", [3][]byte{key, key, key})
	for i, g := range gs {
		g.Publish([]Verdict{verdictFrom(g.cfg.NodeName, string(rune('a'+i)), 1, StateUp)})
	}
	waitFor(t, 10*time.Second, "encrypted convergence", func() (bool, string) { return converged(gs, 1) })

	// A member without the key cannot join the encrypted group.
	plain, err := NewGossip(GossipConfig{NodeName: "c4", Zone: "d", BindAddr: "127.0.0.1:0", Profile: "local",
		Join: []string{gs[0].Addr()}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plain.Shutdown(context.Background()) })
	if n := len(plain.Members()); n != 1 {
		t.Fatalf("keyless member sees %d members", n)
	}
	if n := len(gs[0].Members()); n != 3 {
		t.Fatalf("encrypted group has %d members", n)
	}
}

func TestGossip_BadKeyRejected(t *testing.T) {
	_, err := NewGossip(GossipConfig{NodeName: "c1", BindAddr: "127.0.0.1:0", SecretKey: []byte("short")})
	if err == nil {
		t.Fatal("a 5-byte key was accepted")
	}
	_, err = NewGossip(GossipConfig{NodeName: "c1", BindAddr: "127.0.0.1:0", Profile: "metro"})
	if !errors.Is(err, ErrBadConfig) {
		t.Fatalf("bad profile: %v", err)
	}
}

func TestGossip_StoppedMemberGoesStale(t *testing.T) {
	gs := threeGossips(t, "", [3][]byte{})
	publish := func(g *Gossip, seq uint64) {
		g.Publish([]Verdict{verdictFrom(g.cfg.NodeName, "z-"+g.cfg.NodeName, seq, StateUp)})
	}
	for _, g := range gs {
		publish(g, 1)
	}
	waitFor(t, 10*time.Second, "convergence", func() (bool, string) { return converged(gs, 1) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := gs[2].Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	const freshness = 300 * time.Millisecond
	seq := uint64(2)
	waitFor(t, 10*time.Second, "c3's verdict stale at c1", func() (bool, string) {
		publish(gs[0], seq)
		publish(gs[1], seq)
		seq++
		a := Assess("app1", master, gs[0].Verdicts()[master], nil, len(gs[0].Members()), nil, time.Now(),
			Rules{Freshness: freshness})
		if len(a.Stale) == 1 && a.Stale[0].Controller == "c3" && len(a.Votes) == 2 && a.State == AssessHealthy {
			return true, ""
		}
		return false, fmt.Sprintf("%s votes=%d stale=%d: %s", a.State, len(a.Votes), len(a.Stale), a.Reason)
	})
	waitFor(t, 10*time.Second, "c3 gone from members", func() (bool, string) {
		n := len(gs[0].Members())
		return n == 2, fmt.Sprint(n, " members")
	})
}

func TestVerdictStore_MergeRules(t *testing.T) {
	s := &verdictStore{self: "c1", verdicts: map[string]map[string]Verdict{}, changed: make(chan struct{}, 1),
		clock: RealClock{}, log: slog.New(slog.DiscardHandler)}
	s.setOwn([]Verdict{{Instance: master, State: StateUp, ObservedAt: t0, Seq: 5}})
	tests := []struct {
		name    string
		batch   wireBatch
		wantSeq uint64 // c2's stored seq afterwards (0: none)
	}{
		{"new", wireBatch{From: "c2", Verdicts: []Verdict{{Controller: "c2", Instance: master, ObservedAt: t0, Seq: 3}}}, 3},
		{"older ignored", wireBatch{From: "c2", Verdicts: []Verdict{{Controller: "c2", Instance: master, ObservedAt: t0, Seq: 2}}}, 3},
		{"newer kept", wireBatch{From: "c2", Verdicts: []Verdict{{Controller: "c2", Instance: master, ObservedAt: t0.Add(time.Second), Seq: 1}}}, 1},
		{"forged for another controller", wireBatch{From: "c3", Verdicts: []Verdict{{Controller: "c2", Instance: master, ObservedAt: t0.Add(time.Hour), Seq: 9}}}, 1},
		{"overwriting own refused", wireBatch{From: "c1", Verdicts: []Verdict{{Controller: "c1", Instance: master, ObservedAt: t0.Add(time.Hour), Seq: 9}}}, 1},
	}
	for _, tt := range tests {
		b, err := encodeBatch(tt.batch)
		if err != nil {
			t.Fatal(err)
		}
		s.NotifyMsg(b)
		got := s.all()[master]
		var c2 uint64
		for _, v := range got {
			if v.Controller == "c2" {
				c2 = v.Seq
			}
			if v.Controller == "c1" && v.Seq != 5 {
				t.Errorf("%s: own verdict overwritten: %+v", tt.name, v)
			}
		}
		if c2 != tt.wantSeq {
			t.Errorf("%s: c2 seq = %d, want %d", tt.name, c2, tt.wantSeq)
		}
	}
	if s.dropped.Load() != 2 {
		t.Errorf("dropped = %d, want 2", s.dropped.Load())
	}
	s.NotifyMsg([]byte{9, '{'})
	s.MergeRemoteState([]byte{wireVersion1, 'x'}, false)
	if s.dropped.Load() != 4 {
		t.Errorf("malformed not counted: %d", s.dropped.Load())
	}
	own := s.LocalState(false)
	b, err := decodeBatch(own)
	if err != nil || b.From != "c1" || len(b.Verdicts) != 1 || b.Verdicts[0].Seq != 5 {
		t.Errorf("local state: %+v %v", b, err)
	}
}

// TestEncodeBatch_VerdictWithLeaseFitsAPacket: a verdict carrying the
// longest position and detail plus a lease grant stays well inside
// memberlist's UDP budget (1400 bytes less its framing), so it is always
// broadcast.
func TestEncodeBatch_VerdictWithLeaseFitsAPacket(t *testing.T) {
	name := strings.Repeat("n", 48)
	v := Verdict{Controller: name, Zone: name, Cluster: name, Instance: strings.Repeat("h", 60) + ":3306",
		State: StateSuspect, Failures: 12345, Reason: ReasonReadOnlyOrShutdown, Detail: strings.Repeat("d", maxDetailLen),
		ObservedAt: time.Now(), Seq: 1 << 40, LastPosition: strings.Repeat("0-1-1234567,", maxGossipPosition/12), LastPositionAt: time.Now(),
		Lease: &LeaseGrant{Bound: time.Now(), Enforced: true, Armed: true, StoppedFor: 1 << 40}}
	b, err := encodeBatch(wireBatch{From: name, Verdicts: []Verdict{v}})
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 1200 {
		t.Errorf("a verdict with a lease grant encodes to %d bytes, more than 1200: %s", len(b), b)
	}
	t.Logf("%d bytes", len(b))
}
