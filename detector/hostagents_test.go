package detector

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeAgents answers reach and process questions per agent URL.
type fakeAgents struct {
	mu      sync.Mutex
	reach   map[string]AgentReach // by agent URL; missing: no answer
	process map[string]HostProcess
	asked   map[string]int
}

func newFakeAgents() *fakeAgents {
	return &fakeAgents{reach: map[string]AgentReach{}, process: map[string]HostProcess{}, asked: map[string]int{}}
}

func (f *fakeAgents) Reach(_ context.Context, _, url, _ string, _ time.Duration) (AgentReach, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked[url]++
	a, ok := f.reach[url]
	if !ok {
		return AgentReach{}, errors.New("connection refused")
	}
	return a, nil
}

func (f *fakeAgents) ServerProcess(_ context.Context, _, url string) (HostProcess, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked[url]++
	p, ok := f.process[url]
	if !ok {
		return HostProcess{}, errors.New("connection refused")
	}
	return p, nil
}

func (f *fakeAgents) set(url string, a AgentReach) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reach[url] = a
}

func (f *fakeAgents) setProcess(url string, p HostProcess) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.process[url] = p
}

func (f *fakeAgents) count(url string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asked[url]
}

const (
	masterAgent  = "http://10.0.0.1:7080"
	replicaAgent = "http://10.0.0.2:7080"
)

func withAgents(a HostAgents) func(*Config) {
	return func(c *Config) {
		c.Agents = a
		c.Clusters[0].Agents = map[string]string{testMaster: masterAgent, testReplica: replicaAgent}
	}
}

// TestDetector_ReplicaAgents: the master's host vanished (probes time out),
// the replica's IO thread still says Yes (slave_net_timeout has not passed):
// the replica host's agent decides.
func TestDetector_ReplicaAgents(t *testing.T) {
	tests := []struct {
		name  string
		reach *AgentReach // nil: the agent does not answer
		want  AssessState
	}{
		{"agent cannot reach the master: confirmed", &AgentReach{Reachable: false, Stage: "connect", Error: "i/o timeout"}, AssessDeadConfirmed},
		{"agent reaches the master: not confirmed", &AgentReach{Reachable: true, Stage: "ok"}, AssessReplicasStillConnected},
		{"agent silent: the IO thread decides", nil, AssessReplicasStillConnected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agents := newFakeAgents()
			if tt.reach != nil {
				agents.set(replicaAgent, *tt.reach)
			}
			h := startDetector(t, nil, nil, withAgents(agents))
			if agents.count(replicaAgent) != 0 {
				t.Fatalf("replica agent asked while the master answers")
			}
			h.prober.setMaster(testMaster, ReasonTimeout)
			var a Assessment
			for range 3 {
				a = h.step()
			}
			if a.State != tt.want {
				t.Fatalf("after 3 timeouts: %s (%s), want %s", a.State, a.Reason, tt.want)
			}
			if len(a.ReplicaView) != 1 || a.ReplicaView[0].Reach == nil {
				t.Fatalf("replica view without the agent's answer: %+v", a.ReplicaView)
			}
			if got := a.ReplicaView[0].Reach; got.Answered != (tt.reach != nil) {
				t.Errorf("answered = %t, want %t (%+v)", got.Answered, tt.reach != nil, got)
			}
		})
	}
}

// TestDetector_CrashFastPath: a refused probe while the master's agent says
// the process is gone is Down at once; with the process running it waits
// for failure_threshold.
func TestDetector_CrashFastPath(t *testing.T) {
	agents := newFakeAgents()
	h := startDetector(t, nil, nil, withAgents(agents))
	h.prober.setMaster(testMaster, ReasonRefused)
	h.prober.setReplica(ReplicaObservation{Replica: testReplica, Reachable: true, MasterHost: "10.0.0.1", MasterPort: 3306, IORunning: "Connecting"})

	agents.setProcess(masterAgent, HostProcess{Known: true, Running: true, PID: 42})
	if a := h.step(); a.State != AssessSuspect || a.Votes[0].ProcessGone {
		t.Fatalf("refused, process running: %s (%s), want suspect", a.State, a.Reason)
	}
	h.prober.setMaster(testMaster, ReasonOK)
	if a := h.step(); a.State != AssessHealthy {
		t.Fatalf("answers again: %s (%s)", a.State, a.Reason)
	}

	h.prober.setMaster(testMaster, ReasonRefused)
	agents.setProcess(masterAgent, HostProcess{Known: true, Running: false, PID: 42, Since: t0})
	a := h.step()
	if a.State != AssessDeadConfirmed || !a.Votes[0].ProcessGone || a.Votes[0].Failures != 1 {
		t.Fatalf("refused, process gone: %s (%s) %+v, want dead_confirmed on the first failure", a.State, a.Reason, a.Votes)
	}

	// An agent that cannot read its pid file is no proof.
	h.prober.setMaster(testMaster, ReasonOK)
	h.step()
	h.prober.setMaster(testMaster, ReasonRefused)
	agents.setProcess(masterAgent, HostProcess{Known: true, Error: "pid file: permission denied"})
	if a := h.step(); a.State != AssessSuspect {
		t.Fatalf("pid file unreadable: %s (%s), want suspect", a.State, a.Reason)
	}
}

func TestWantsEarlyProbe(t *testing.T) {
	own := Verdict{Controller: "c1", State: StateUp, ObservedAt: t0}
	peer := func(s State, at time.Duration) Verdict {
		return Verdict{Controller: "c2", State: s, ObservedAt: t0.Add(at)}
	}
	gap := 100 * time.Millisecond
	tests := []struct {
		name  string
		own   Verdict
		votes []Verdict
		now   time.Duration
		want  bool
	}{
		{"a peer saw it down after my last probe", own, []Verdict{own, peer(StateDown, 50*time.Millisecond)}, 200 * time.Millisecond, true},
		{"a peer's first failure counts too", own, []Verdict{peer(StateSuspect, 50*time.Millisecond)}, 200 * time.Millisecond, true},
		{"my last probe is too recent", own, []Verdict{peer(StateDown, 50*time.Millisecond)}, 50 * time.Millisecond, false},
		{"the peer's failure is older than my probe", own, []Verdict{peer(StateDown, -50*time.Millisecond)}, 200 * time.Millisecond, false},
		{"peers see it up", own, []Verdict{peer(StateUp, 50*time.Millisecond)}, 200 * time.Millisecond, false},
		{"I already see it failing", Verdict{Controller: "c1", State: StateSuspect, ObservedAt: t0},
			[]Verdict{peer(StateDown, 50*time.Millisecond)}, 200 * time.Millisecond, false},
		{"my own vote never wakes me", Verdict{Controller: "c2", State: StateUp, ObservedAt: t0},
			[]Verdict{peer(StateDown, 50*time.Millisecond)}, 200 * time.Millisecond, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := wantsEarlyProbe(Assessment{Votes: tt.votes}, tt.own, t0.Add(tt.now), gap); got != tt.want {
				t.Errorf("wantsEarlyProbe = %t, want %t", got, tt.want)
			}
		})
	}
}

// TestDetectorGroup_EarlyProbe: c2 and c3 probe once an hour; only the
// early probe a peer's failure triggers can give c1 the quorum it needs.
func TestDetectorGroup_EarlyProbe(t *testing.T) {
	gs := threeGossips(t, "", [3][]byte{})
	var nodes []controllerNode
	for i, g := range gs {
		p := newFakeProber(RealClock{})
		p.setMaster(testMaster, ReasonOK)
		p.setReplica(ReplicaObservation{Replica: testReplica, Reachable: true, MasterHost: "10.0.0.1", MasterPort: 3306, IORunning: "Yes"})
		interval := time.Hour
		if i == 0 {
			interval = 50 * time.Millisecond
		}
		cfg := Config{Controller: g.cfg.NodeName, Zone: g.cfg.Zone, ProbeInterval: interval,
			ProbeTimeout: 50 * time.Millisecond, FailureThreshold: 1,
			Rules:    Rules{ReplicaCheck: true, MultiZone: true, Freshness: -1},
			Clusters: []ClusterSpec{{Name: "app1", Master: testMaster, Replicas: []string{testReplica}}},
			Logger:   testLogger(t)}
		d, err := New(cfg, p, g)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run %d: %v", i, err)
			}
		})
		nodes = append(nodes, controllerNode{prober: p, det: d})
	}
	waitAll(t, nodes, AssessHealthy)
	for _, n := range nodes {
		n.prober.setReplica(ReplicaObservation{Replica: testReplica, Reachable: true, MasterHost: "10.0.0.1", MasterPort: 3306, IORunning: "Connecting"})
		n.prober.setMaster(testMaster, ReasonRefused)
	}
	waitAll(t, nodes, AssessDeadConfirmed)
}

// lateReplicaProber answers the next replica probes from a script (then
// falls back to the fake prober): a replica that notices its master's death
// a moment after the controller's probe of it.
type lateReplicaProber struct {
	*fakeProber
	mu     sync.Mutex
	script []ReplicaObservation
}

func (p *lateReplicaProber) ProbeReplica(ctx context.Context, t Target, prev ReplicaObservation) ReplicaObservation {
	p.mu.Lock()
	if len(p.script) > 0 {
		o := p.script[0]
		p.script = p.script[1:]
		p.mu.Unlock()
		o.ObservedAt = p.clock.Now()
		return o
	}
	p.mu.Unlock()
	return p.fakeProber.ProbeReplica(ctx, t, prev)
}

// TestDetector_FirstFailureRereadsReplicas: the replicas are read again
// right after the first failed probe, so a replica that had not yet noticed
// when read alongside the probe does not hold the decision for an interval.
func TestDetector_FirstFailureRereadsReplicas(t *testing.T) {
	clock := newFakeClock()
	p := &lateReplicaProber{fakeProber: newFakeProber(clock)}
	p.setMaster(testMaster, ReasonOK)
	connected := ReplicaObservation{Replica: testReplica, Reachable: true, MasterHost: "10.0.0.1", MasterPort: 3306, IORunning: "Yes"}
	p.setReplica(connected)
	d, err := New(Config{Controller: "c1", Zone: "a", ProbeInterval: time.Second, ProbeTimeout: time.Second,
		FailureThreshold: 1, Rules: Rules{ReplicaCheck: true},
		Clusters: []ClusterSpec{{Name: "app1", Master: testMaster, Replicas: []string{testReplica}}},
		Clock:    clock, Logger: testLogger(t)}, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	h := &harness{t: t, clock: clock, prober: p.fakeProber, det: d}
	h.waitSeq(1)

	p.setMaster(testMaster, ReasonRefused)
	lost := connected
	lost.IORunning = "Connecting"
	p.setReplica(lost)
	p.mu.Lock()
	p.script = []ReplicaObservation{connected} // read alongside the failing probe: not noticed yet
	p.mu.Unlock()
	if a := h.step(); a.State != AssessDeadConfirmed {
		t.Fatalf("after the first failure: %s (%s), want dead_confirmed from the re-read replica", a.State, a.Reason)
	}
}
