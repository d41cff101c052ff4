package detector

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// fakeClock is a manual Clock: After channels fire only when Advance passes them.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), ch: ch})
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
			continue
		}
		kept = append(kept, w)
	}
	c.waiters = kept
}

func (c *fakeClock) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// fakeProber answers from settable per-address outcomes.
type fakeProber struct {
	clock    Clock
	mu       sync.Mutex
	masters  map[string]Reason
	ids      map[string]uint32
	replicas map[string]ReplicaObservation
	probes   int
}

func newFakeProber(c Clock) *fakeProber {
	return &fakeProber{clock: c, masters: map[string]Reason{}, ids: map[string]uint32{}, replicas: map[string]ReplicaObservation{}}
}

// setMasterServerID makes addr answer OK with the given server_id.
func (p *fakeProber) setMasterServerID(addr string, id uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.masters[addr], p.ids[addr] = ReasonOK, id
}

func (p *fakeProber) setMaster(addr string, r Reason) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.masters[addr] = r
}

func (p *fakeProber) setReplica(o ReplicaObservation) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.replicas[o.Replica] = o
}

func (p *fakeProber) Probe(_ context.Context, t Target) ProbeResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.probes++
	r, ok := p.masters[t.Addr]
	if !ok {
		r = ReasonRefused
	}
	res := ProbeResult{Instance: t.Addr, OK: r == ReasonOK, Reason: r, At: p.clock.Now(), Latency: time.Millisecond}
	if res.OK {
		res.ServerID = p.ids[t.Addr]
	}
	return res
}

func (p *fakeProber) ProbeReplica(_ context.Context, t Target, _ ReplicaObservation) ReplicaObservation {
	p.mu.Lock()
	defer p.mu.Unlock()
	o, ok := p.replicas[t.Addr]
	if !ok {
		return ReplicaObservation{Replica: t.Addr, Error: "refused", ObservedAt: p.clock.Now()}
	}
	o.ObservedAt = p.clock.Now()
	return o
}

// fakeExchange is a VerdictExchange with scripted peers.
type fakeExchange struct {
	mu        sync.Mutex
	own       map[string]Verdict
	peers     []Verdict
	members   []Member
	published int
}

func (f *fakeExchange) Publish(vs []Verdict) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range vs {
		f.own[v.Instance] = v
		f.published++
	}
}

func (f *fakeExchange) Verdicts() map[string][]Verdict {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]Verdict{}
	for inst, v := range f.own {
		out[inst] = append(out[inst], v)
	}
	for _, v := range f.peers {
		out[v.Instance] = append(out[v.Instance], v)
	}
	return out
}

func (f *fakeExchange) VerdictsOf(instance string) []Verdict { return f.Verdicts()[instance] }

func (f *fakeExchange) Members() []Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Member(nil), f.members...)
}

func (f *fakeExchange) setPeers(vs ...Verdict) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peers = vs
}

const (
	testMaster  = "10.0.0.1:3306"
	testReplica = "10.0.0.2:3306"
)

type harness struct {
	t      *testing.T
	clock  *fakeClock
	prober *fakeProber
	det    *Detector
	seq    uint64
}

func startDetector(t *testing.T, ex VerdictExchange, reg prometheus.Registerer, opts ...func(*Config)) *harness {
	t.Helper()
	clock := newFakeClock()
	prober := newFakeProber(clock)
	prober.setMaster(testMaster, ReasonOK)
	prober.setReplica(ReplicaObservation{Replica: testReplica, Reachable: true, MasterHost: "10.0.0.1", MasterPort: 3306, IORunning: "Yes"})
	cfg := Config{Controller: "c1", Zone: "a", ProbeInterval: time.Second, ProbeTimeout: time.Second,
		FailureThreshold: 3, Rules: Rules{ReplicaCheck: true, MultiZone: true},
		Clusters: []ClusterSpec{{Name: "app1", Master: testMaster, Replicas: []string{testReplica}}},
		Clock:    clock, Logger: testLogger(t), Registerer: reg}
	for _, o := range opts {
		o(&cfg)
	}
	det, err := New(cfg, prober, ex)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- det.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	h := &harness{t: t, clock: clock, prober: prober, det: det}
	h.waitSeq(1)
	return h
}

// waitSeq waits until this controller's own vote has sequence seq and the
// loop is parked on the clock again.
func (h *harness) waitSeq(seq uint64) Assessment {
	h.t.Helper()
	var a Assessment
	waitFor(h.t, 5*time.Second, fmt.Sprintf("own vote seq %d", seq), func() (bool, string) {
		var ok bool
		a, ok = h.det.Assessment("app1")
		if !ok {
			return false, "no assessment"
		}
		for _, v := range append(a.Votes, a.Stale...) {
			if v.Controller == "c1" && v.Seq == seq && h.clock.Waiters() == 1 {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%s %s", a.State, a.Reason)
	})
	h.seq = seq
	return a
}

// step advances one probe interval and returns the resulting assessment.
func (h *harness) step() Assessment {
	h.t.Helper()
	h.clock.Advance(time.Second)
	return h.waitSeq(h.seq + 1)
}

func TestDetector_SingleControllerThreshold(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := startDetector(t, nil, reg)
	if a, _ := h.det.Assessment("app1"); a.State != AssessHealthy {
		t.Fatalf("initial: %s %s", a.State, a.Reason)
	}
	h.prober.setMaster(testMaster, ReasonRefused)
	h.prober.setReplica(ReplicaObservation{Replica: testReplica, Reachable: true, MasterHost: "10.0.0.1", MasterPort: 3306, IORunning: "Connecting"})
	wants := []AssessState{AssessSuspect, AssessSuspect, AssessDeadConfirmed}
	for i, want := range wants {
		if a := h.step(); a.State != want {
			t.Fatalf("failure %d: %s, want %s (%s)", i+1, a.State, want, a.Reason)
		}
	}
	var got []AssessState
	for len(h.det.Updates()) > 0 {
		got = append(got, (<-h.det.Updates()).State)
	}
	want := []AssessState{AssessHealthy, AssessSuspect, AssessDeadConfirmed}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("updates %v, want %v", got, want)
	}
	// While dead, every probe re-sends DeadConfirmed for the leader's loop.
	h.step()
	if u := <-h.det.Updates(); u.State != AssessDeadConfirmed {
		t.Errorf("repeat update %s", u.State)
	}
	if n := metricValue(t, h.det.metrics.probeFailures.WithLabelValues("app1", testMaster, "refused")); n != 4 {
		t.Errorf("refused failures metric = %v", n)
	}
	if n := metricValue(t, h.det.metrics.assessState.WithLabelValues("app1", "dead_confirmed")); n != 1 {
		t.Errorf("state gauge = %v", n)
	}
	// The master comes back: one OK resets.
	h.prober.setMaster(testMaster, ReasonOK)
	if a := h.step(); a.State != AssessHealthy {
		t.Errorf("recovered: %s", a.State)
	}
}

// A controller that hears nobody over gossip is still one of a group of
// three: its own vote is not a quorum.
func TestDetector_GroupSizeBoundsQuorum(t *testing.T) {
	ex := &fakeExchange{own: map[string]Verdict{}, members: []Member{{Name: "c1", Zone: "a"}}}
	h := startDetector(t, ex, nil, func(c *Config) { c.GroupSize = func() int { return 3 } })
	h.prober.setMaster(testMaster, ReasonRefused)
	h.prober.setReplica(ReplicaObservation{Replica: testReplica, Reachable: true, MasterHost: "10.0.0.1", MasterPort: 3306, IORunning: "Connecting"})
	var a Assessment
	for range 4 {
		a = h.step()
	}
	if a.State == AssessDeadConfirmed || a.Needed != 2 || a.DownCount != 1 {
		t.Fatalf("alone in gossip: %s needed=%d down=%d (%s)", a.State, a.Needed, a.DownCount, a.Reason)
	}
}

// A replica that names the master by another address but replicates from
// the same server (Master_Server_Id) vouches for it.
func TestDetector_ReplicaFollowingByAliasVouches(t *testing.T) {
	h := startDetector(t, nil, nil)
	h.prober.setMasterServerID(testMaster, 7)
	h.step() // a good probe records the master's server_id
	h.prober.setMaster(testMaster, ReasonTimeout)
	h.prober.setReplica(ReplicaObservation{Replica: testReplica, Reachable: true, MasterHost: "db-master.internal", MasterPort: 3306, MasterServerID: 7, IORunning: "Yes"})
	var a Assessment
	for range 3 {
		a = h.step()
	}
	if a.State != AssessReplicasStillConnected {
		t.Fatalf("%s: %s", a.State, a.Reason)
	}
}

func TestDetector_ReplicaStillConnectedBlocks(t *testing.T) {
	h := startDetector(t, nil, nil)
	h.prober.setMaster(testMaster, ReasonTimeout)
	var a Assessment
	for range 3 {
		a = h.step()
	}
	if a.State != AssessReplicasStillConnected || !strings.Contains(a.Reason, testReplica) {
		t.Fatalf("%s: %s", a.State, a.Reason)
	}
}

func TestDetector_DegradedIsNotDown(t *testing.T) {
	h := startDetector(t, nil, nil)
	h.prober.setMaster(testMaster, ReasonTooManyConnections)
	var a Assessment
	for range 5 {
		a = h.step()
	}
	if a.State != AssessHealthy || !strings.Contains(a.Reason, "too_many_connections") {
		t.Fatalf("%s: %s", a.State, a.Reason)
	}
}

func TestDetector_QuorumFromGossip(t *testing.T) {
	ex := &fakeExchange{own: map[string]Verdict{}, members: []Member{{Name: "c1", Zone: "a"}, {Name: "c2", Zone: "b"}, {Name: "c3", Zone: "c"}}}
	h := startDetector(t, ex, nil)
	h.prober.setMaster(testMaster, ReasonRefused)
	h.prober.setReplica(ReplicaObservation{Replica: testReplica, Reachable: true, MasterHost: "10.0.0.1", MasterPort: 3306, IORunning: "Connecting"})
	peer := func(c, z string, s State) Verdict {
		return Verdict{Controller: c, Zone: z, Instance: testMaster, State: s, ObservedAt: h.clock.Now(), ReceivedAt: h.clock.Now(), Seq: h.seq}
	}
	// c1 alone sees it down; the others see it up: isolated.
	for range 3 {
		ex.setPeers(peer("c2", "b", StateUp), peer("c3", "c", StateUp))
		h.step()
	}
	if a, _ := h.det.Assessment("app1"); a.State != AssessIsolated {
		t.Fatalf("minority: %s %s", a.State, a.Reason)
	}
	// c2 agrees: quorum 2 of 3, zones a and b.
	ex.setPeers(peer("c2", "b", StateDown), peer("c3", "c", StateUp))
	a := h.step()
	if a.State != AssessDeadConfirmed || a.DownCount != 2 || fmt.Sprint(a.Zones) != "[a b]" {
		t.Fatalf("quorum: %s down=%d zones=%v %s", a.State, a.DownCount, a.Zones, a.Reason)
	}
	if ex.published < 4 {
		t.Errorf("published %d verdicts", ex.published)
	}
	// Peers fall silent: their votes go stale and the quorum is lost.
	for range 7 {
		a = h.step()
	}
	if a.State == AssessDeadConfirmed || len(a.Stale) != 2 {
		t.Fatalf("stale peers: %s stale=%d %s", a.State, len(a.Stale), a.Reason)
	}
}

func TestDetector_SetMasterAndRecheck(t *testing.T) {
	const newMaster = "10.0.0.3:3306"
	h := startDetector(t, nil, nil, func(c *Config) { c.Clusters[0].Instances = []string{testMaster, testReplica, newMaster} })
	h.prober.setMaster(newMaster, ReasonOK)
	// Security review item 2: never probe, with the admin account, an
	// address the config does not name (a forged or mistaken record).
	if err := h.det.SetMaster("app1", "127.0.0.1:1"); !errors.Is(err, ErrUnconfiguredInstance) {
		t.Fatalf("unconfigured master: %v", err)
	}
	if err := h.det.SetMaster("app1", newMaster); err != nil {
		t.Fatal(err)
	}
	spec, _ := h.det.Cluster("app1")
	if spec.Master != newMaster || fmt.Sprint(spec.Replicas) != fmt.Sprint([]string{testReplica, testMaster}) {
		t.Fatalf("spec after SetMaster: %+v", spec)
	}
	a := h.step()
	if a.Master != newMaster || a.State != AssessHealthy {
		t.Fatalf("after SetMaster: %s %s %s", a.Master, a.State, a.Reason)
	}
	r, err := h.det.Recheck(context.Background(), "app1")
	if err != nil || !r.OK || r.Instance != newMaster {
		t.Fatalf("Recheck: %+v %v", r, err)
	}
	if _, err := h.det.Recheck(context.Background(), "nope"); !errors.Is(err, ErrUnknownCluster) {
		t.Fatalf("unknown cluster: %v", err)
	}
	if err := h.det.SetMaster("nope", "x:1"); !errors.Is(err, ErrUnknownCluster) {
		t.Fatalf("unknown cluster: %v", err)
	}
	if as := h.det.Assessments(); len(as) != 1 || as[0].Cluster != "app1" {
		t.Fatalf("Assessments: %+v", as)
	}
}

func TestDetector_UpdatesNewestWins(t *testing.T) {
	d := &Detector{updates: make(chan Assessment, 2)}
	for i := range 5 {
		d.emit(Assessment{Cluster: fmt.Sprint(i)})
	}
	if a, b := <-d.updates, <-d.updates; a.Cluster != "3" || b.Cluster != "4" {
		t.Fatalf("kept %s, %s; want the newest two", a.Cluster, b.Cluster)
	}
}

func TestNew_ConfigErrors(t *testing.T) {
	p := newFakeProber(RealClock{})
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no controller", Config{Clusters: []ClusterSpec{{Name: "a", Master: "m:1"}}}},
		{"no master", Config{Controller: "c1", Clusters: []ClusterSpec{{Name: "a"}}}},
		{"duplicate", Config{Controller: "c1", Clusters: []ClusterSpec{{Name: "a", Master: "m:1"}, {Name: "a", Master: "m:2"}}}},
	}
	for _, tt := range tests {
		if _, err := New(tt.cfg, p, nil); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	reg := prometheus.NewRegistry()
	cfg := Config{Controller: "c1", Registerer: reg}
	if _, err := New(cfg, p, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, p, nil); err == nil {
		t.Error("registering the collectors twice succeeded")
	}
}

// metricValue reads a counter or gauge (testutil would need extra go.sum entries).
func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		t.Fatal(err)
	}
	if pb.Counter != nil {
		return pb.Counter.GetValue()
	}
	return pb.Gauge.GetValue()
}

// The leader's recheck right before a decision takes the probe loop's own
// probe of the master when it ended less than a probe interval ago, rather
// than adding one more probe timeout after the quorum formed.
func TestDetector_RecheckTakesTheFreshOwnProbe(t *testing.T) {
	h := startDetector(t, nil, nil)
	h.prober.setMaster(testMaster, ReasonTimeout)
	h.step()
	h.prober.mu.Lock()
	before := h.prober.probes
	h.prober.mu.Unlock()
	r, err := h.det.Recheck(context.Background(), "app1")
	if err != nil || r.OK || r.Reason != ReasonTimeout || r.Instance != testMaster {
		t.Fatalf("Recheck: %+v %v", r, err)
	}
	h.prober.mu.Lock()
	after := h.prober.probes
	h.prober.mu.Unlock()
	if after != before {
		t.Errorf("Recheck probed the master again (%d probes, was %d) though the loop's probe ended just now", after, before)
	}
}
