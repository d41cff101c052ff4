package lease

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumha/quorumha/agent"
	"github.com/quorumha/quorumha/detector"
	"github.com/quorumha/quorumha/fsm"
)

// fakeState is the replicated state: recorded masters and open records.
type fakeState struct {
	mu       sync.Mutex
	masters  map[string]string
	open     map[string]fsm.Record
	records  map[uint64]fsm.Record
	failover map[string]uint64 // cluster -> LastFailoverID
}

func newFakeState() *fakeState {
	return &fakeState{masters: map[string]string{}, open: map[string]fsm.Record{}, records: map[uint64]fsm.Record{},
		failover: map[string]uint64{}}
}

func (s *fakeState) Cluster(name string) (fsm.ClusterState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.masters[name]
	return fsm.ClusterState{Name: name, Master: m, LastFailoverID: s.failover[name]}, ok
}

func (s *fakeState) Record(id uint64) (fsm.Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.records[id]
	return r, ok
}

// failover opens and at once closes a successful failover of cluster's
// master to newMaster, as the FSM applies it.
func (s *fakeState) failoverTo(cluster, newMaster string, id uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[id] = fsm.Record{ID: id, Cluster: cluster, Kind: fsm.KindFailover, OldMaster: s.masters[cluster],
		NewMaster: newMaster, Result: fsm.ResultSuccess}
	s.masters[cluster] = newMaster
	s.failover[cluster] = id
	delete(s.open, cluster)
}

func (s *fakeState) OpenRecord(cluster string) (fsm.Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.open[cluster]
	return r, ok
}

func (s *fakeState) setMaster(cluster, m string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.masters[cluster] = m
}

func (s *fakeState) openFailover(cluster, old string, id uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open[cluster] = fsm.Record{ID: id, Cluster: cluster, Kind: fsm.KindFailover, OldMaster: old}
}

func (s *fakeState) closeRecord(cluster string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.open, cluster)
}

// fakeAgent is an agent's POST /v1/lease: it records every renewal and,
// when hang is set, answers none until the caller gives up.
type fakeAgent struct {
	srv  *httptest.Server
	hang bool

	mu       sync.Mutex
	reqs     []agent.LeaseRequest
	arrived  []time.Time
	finished int
}

func newFakeAgent(t *testing.T, hang bool) *fakeAgent {
	a := &fakeAgent{hang: hang}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/lease" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		var req agent.LeaseRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.mu.Lock()
		a.reqs = append(a.reqs, req)
		a.arrived = append(a.arrived, time.Now())
		a.mu.Unlock()
		defer func() {
			a.mu.Lock()
			a.finished++
			a.mu.Unlock()
		}()
		if a.hang {
			<-r.Context().Done()
			return
		}
		_ = json.NewEncoder(w).Encode(agent.LeaseResponse{Enforced: true, State: agent.FenceHeld, Held: true,
			Holders: []string{req.Controller}, Voters: req.Voters, ExpiresInMillis: req.TTLMillis})
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *fakeAgent) count() (reqs, finished int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.reqs), a.finished
}

func (a *fakeAgent) last() (agent.LeaseRequest, time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.reqs) == 0 {
		return agent.LeaseRequest{}, time.Time{}
	}
	return a.reqs[len(a.reqs)-1], a.arrived[len(a.arrived)-1]
}

func dialAgent(_ string, url string, timeout time.Duration) (Agent, error) {
	return agent.NewClient(url, agent.ClientOptions{Timeout: timeout})
}

type keeperOpts struct {
	caughtUp     func() bool
	probeTimeout time.Duration
	voters       []string
	reg          prometheus.Registerer
}

// startKeeper runs a keeper for c1 over clusters until the test ends.
func startKeeper(t *testing.T, st State, clusters []Cluster, o keeperOpts) *Keeper {
	t.Helper()
	if o.probeTimeout == 0 {
		o.probeTimeout = 5 * time.Second
	}
	if o.voters == nil {
		o.voters = []string{"c1", "c2", "c3"}
	}
	k, err := NewKeeper(KeeperConfig{Controller: "c1", Clusters: clusters, Interval: 20 * time.Millisecond,
		ProbeTimeout: o.probeTimeout, TTL: 20 * time.Second, Term: func() uint64 { return 5 },
		Voters: func() ([]string, error) { return o.voters, nil }, CaughtUp: o.caughtUp, Registerer: o.reg}, st, dialAgent)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return k
}

func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last: %s", what, state)
		}
		<-tick.C
	}
}

func waitRenewals(t *testing.T, a *fakeAgent, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d renewals", n), func() (bool, string) {
		got, _ := a.count()
		return got >= n, fmt.Sprint(got)
	})
}

const (
	m1 = "10.0.0.1:3306"
	m2 = "10.0.0.2:3306"
)

func TestKeeper_RenewsEveryIntervalWithTheRightBody(t *testing.T) {
	a := newFakeAgent(t, false)
	st := newFakeState()
	st.setMaster("app1", m1)
	reg := prometheus.NewRegistry()
	before := time.Now()
	k := startKeeper(t, st, []Cluster{{Name: "app1", Agents: map[string]string{strings.ToUpper(m1): a.srv.URL, m2: "http://127.0.0.1:1"}}},
		keeperOpts{reg: reg})
	waitRenewals(t, a, 3)
	req, arrived := a.last()
	want := agent.LeaseRequest{Controller: "c1", Term: 5, Voters: 3, TTLMillis: 20000, Master: m1}
	if req != want {
		t.Errorf("renewal body %+v, want %+v", req, want)
	}
	var g *detector.LeaseGrant
	waitFor(t, "an armed grant", func() (bool, string) {
		g = k.Grant("app1", m1)
		return g != nil && g.Armed, fmt.Sprintf("%+v", g)
	})
	if !g.Enforced || g.StoppedFor != 0 || g.Bound.Before(before) {
		t.Errorf("grant %+v: want enforced, not stopped, bound after %s", g, before)
	}
	waitFor(t, "the bound past the last arrival", func() (bool, string) {
		g = k.Grant("app1", m1)
		return !g.Bound.Before(arrived), fmt.Sprintf("bound %s, arrived %s", g.Bound, arrived)
	})
	if k.Grant("app1", m2) != nil {
		t.Error("a grant for an instance that is not the recorded master")
	}
	v := k.View("app1")
	if len(v.Masters) != 1 || !v.Masters[0].Renewing || v.Masters[0].State != agent.FenceHeld || v.Masters[0].Instance != m1 {
		t.Errorf("view %+v", v)
	}
	if n := metricValue(t, reg, "quorumha_lease_renewals_total", "ok"); n < 3 {
		t.Errorf("renewals_total{outcome=ok} = %v, want >= 3", n)
	}
	if n := metricValue(t, reg, "quorumha_lease_renewal_age_seconds", ""); n < 0 || n > 20 {
		t.Errorf("renewal age %v seconds", n)
	}
}

func TestKeeper_StopsForAnOpenFailoverAndResumesWhenItCloses(t *testing.T) {
	a, clock := newFakeAgent(t, false), newFakeAgent(t, false)
	st := newFakeState()
	st.setMaster("app1", m1)
	st.setMaster("app2", m2)
	k := startKeeper(t, st, []Cluster{{Name: "app1", Agents: map[string]string{m1: a.srv.URL}},
		{Name: "app2", Agents: map[string]string{m2: clock.srv.URL}}}, keeperOpts{})
	waitRenewals(t, a, 2)

	st.openFailover("app1", m1, 42)
	waitFor(t, "stopped for record 42", func() (bool, string) {
		g := k.Grant("app1", m1)
		return g.StoppedFor == 42, fmt.Sprintf("%+v", g)
	})
	stopped := k.Grant("app1", m1)
	n, _ := a.count()
	_, lastArrival := a.last()
	if stopped.Bound.Before(lastArrival) {
		t.Errorf("bound %s is before the last renewal's arrival %s", stopped.Bound, lastArrival)
	}
	// app2 keeps renewing every interval: let it renew five more times,
	// and app1 must not have been renewed once meanwhile.
	c0, _ := clock.count()
	waitRenewals(t, clock, c0+5)
	if now, _ := a.count(); now != n {
		t.Errorf("%d renewals after the failover was committed", now-n)
	}
	if g := k.Grant("app1", m1); !g.Bound.Equal(stopped.Bound) || g.BoundAge < stopped.BoundAge || g.StoppedFor != 42 || !g.Armed {
		t.Errorf("grant changed after stopping: %+v, was %+v", g, stopped)
	}
	v := k.View("app1")
	if len(v.Masters) != 1 || v.Masters[0].Renewing || v.Masters[0].StoppedFor != 42 {
		t.Errorf("view %+v", v)
	}

	// The record closes without replacing the master: renew again.
	st.closeRecord("app1")
	waitRenewals(t, a, n+2)
	if g := k.Grant("app1", m1); g.StoppedFor != 0 || !g.Bound.After(stopped.Bound) {
		t.Errorf("after resuming: %+v", g)
	}

	// A successful failover records another master (without an agent
	// here): the old one stays stopped, its grant keeps its record.
	st.openFailover("app1", m1, 50)
	waitFor(t, "stopped for record 50", func() (bool, string) {
		g := k.Grant("app1", m1)
		return g.StoppedFor == 50, fmt.Sprintf("%+v", g)
	})
	st.setMaster("app1", "10.0.0.9:3306")
	st.closeRecord("app1")
	c0, _ = clock.count()
	waitRenewals(t, clock, c0+3)
	if g := k.Grant("app1", m1); g.StoppedFor != 50 {
		t.Errorf("old master's grant after the failover: %+v", g)
	}
}

func TestKeeper_StoppedAtStartKeepsTheStartAsBound(t *testing.T) {
	a, clock := newFakeAgent(t, false), newFakeAgent(t, false)
	st := newFakeState()
	st.setMaster("app1", m1)
	st.setMaster("app2", m2)
	st.openFailover("app1", m1, 7)
	before := time.Now()
	k := startKeeper(t, st, []Cluster{{Name: "app1", Agents: map[string]string{m1: a.srv.URL}},
		{Name: "app2", Agents: map[string]string{m2: clock.srv.URL}}}, keeperOpts{})
	waitFor(t, "stopped for record 7", func() (bool, string) {
		g := k.Grant("app1", m1)
		return g != nil && g.StoppedFor == 7, fmt.Sprintf("%+v", g)
	})
	waitRenewals(t, clock, 3)
	// A previous run of this controller may have renewed until it ended:
	// the bound is never before this run started.
	g := k.Grant("app1", m1)
	if g.Bound.Before(before) || g.Bound.After(time.Now()) {
		t.Errorf("bound %s, want the keeper's start (after %s)", g.Bound, before)
	}
	if n, _ := a.count(); n != 0 {
		t.Errorf("%d renewals of a master whose failover is committed", n)
	}
}

func TestKeeper_HangingAgentDoesNotDelayAnotherCluster(t *testing.T) {
	hung, ok := newFakeAgent(t, true), newFakeAgent(t, false)
	st := newFakeState()
	st.setMaster("app1", m1)
	st.setMaster("app2", m2)
	startKeeper(t, st, []Cluster{{Name: "app1", Agents: map[string]string{m1: hung.srv.URL}},
		{Name: "app2", Agents: map[string]string{m2: ok.srv.URL}}}, keeperOpts{probeTimeout: 30 * time.Second})
	waitRenewals(t, hung, 1)
	waitRenewals(t, ok, 5)
	// The attempt timeout is 10s (ttl/2): app1's first renewal still hangs.
	if reqs, finished := hung.count(); reqs != 1 || finished != 0 {
		t.Errorf("hanging agent: %d requests, %d finished; want 1 hanging", reqs, finished)
	}
}

func TestKeeper_BoundIsSetWhenTheAttemptTimesOut(t *testing.T) {
	hung := newFakeAgent(t, true)
	st := newFakeState()
	st.setMaster("app1", m1)
	reg := prometheus.NewRegistry()
	k := startKeeper(t, st, []Cluster{{Name: "app1", Agents: map[string]string{m1: hung.srv.URL}}},
		keeperOpts{probeTimeout: 50 * time.Millisecond, reg: reg})
	var v MasterLease
	waitFor(t, "a timed-out attempt", func() (bool, string) {
		ms := k.View("app1").Masters
		if len(ms) == 0 {
			return false, "no master"
		}
		v = ms[0]
		return v.LastError != "" && !v.LastAttempt.IsZero(), fmt.Sprintf("%+v", v)
	})
	hung.mu.Lock()
	arrived := hung.arrived[0] // the attempt v saw ended after its own request arrived
	hung.mu.Unlock()
	if v.Bound.Before(arrived) || v.Bound.Before(v.LastAttempt) {
		t.Errorf("bound %s: want at least the attempt's end %s and the request's arrival %s", v.Bound, v.LastAttempt, arrived)
	}
	if g := k.Grant("app1", m1); g.Armed || g.Enforced {
		t.Errorf("grant %+v: no answer, so nothing known armed", g)
	}
	if n := metricValue(t, reg, "quorumha_lease_renewals_total", "error"); n < 1 {
		t.Errorf("renewals_total{outcome=error} = %v", n)
	}
}

func TestKeeper_NotAVoterRenewsNothing(t *testing.T) {
	a := newFakeAgent(t, false)
	st := newFakeState()
	st.setMaster("app1", m1)
	k := startKeeper(t, st, []Cluster{{Name: "app1", Agents: map[string]string{m1: a.srv.URL}}}, keeperOpts{voters: []string{"c2", "c3", "c4"}})
	waitFor(t, "the keeper to notice it is no voter", func() (bool, string) {
		ms := k.View("app1").Masters
		return len(ms) == 1 && ms[0].NotVoter, fmt.Sprintf("%+v", ms)
	})
	if n, _ := a.count(); n != 0 {
		t.Errorf("%d renewals by a controller that is not a voter", n)
	}
}

func TestKeeperConfig_AttemptTimeout(t *testing.T) {
	for _, tc := range []struct{ probe, ttl, want time.Duration }{
		{time.Second, 2 * time.Second, time.Second},
		{time.Second, 1 * time.Second, 500 * time.Millisecond},
		{200 * time.Millisecond, 2 * time.Second, 200 * time.Millisecond},
		{0, 2 * time.Second, time.Second},
	} {
		if got := (KeeperConfig{ProbeTimeout: tc.probe, TTL: tc.ttl}).AttemptTimeout(); got != tc.want {
			t.Errorf("probe %s ttl %s: %s, want %s", tc.probe, tc.ttl, got, tc.want)
		}
	}
}

// metricValue returns the value of name's only series for app1/m1 (with
// outcome, when not ""), failing when there is none.
func metricValue(t *testing.T, reg *prometheus.Registry, name, outcome string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["cluster"] != "app1" || labels["instance"] != m1 || labels["outcome"] != outcome {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s{cluster=app1,instance=%s,outcome=%q}", name, m1, outcome)
	return 0
}

func TestKeeper_WaitsForTheStateToCatchUpOnce(t *testing.T) {
	a, clock := newFakeAgent(t, false), newFakeAgent(t, false)
	st := newFakeState()
	st.setMaster("app1", m1)
	var mu sync.Mutex
	caught, asked := false, 0
	k := startKeeper(t, st, []Cluster{{Name: "app1", Agents: map[string]string{m1: a.srv.URL}},
		{Name: "app2", Agents: map[string]string{m2: clock.srv.URL}}}, keeperOpts{caughtUp: func() bool {
		mu.Lock()
		defer mu.Unlock()
		asked++
		return caught
	}})
	waitFor(t, "the keeper to ask a few times", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return asked >= 5, fmt.Sprint(asked)
	})
	if n, _ := a.count(); n != 0 || k.Grant("app1", m1) != nil {
		t.Fatalf("%d renewals before the replicated state caught up", n)
	}
	mu.Lock()
	caught = true
	mu.Unlock()
	waitRenewals(t, a, 3)
	mu.Lock()
	caught, asked = false, 0 // a later election: renewals must go on
	mu.Unlock()
	n, _ := a.count()
	waitRenewals(t, a, n+3)
	mu.Lock()
	defer mu.Unlock()
	if asked != 0 {
		t.Errorf("asked %d times after catching up once", asked)
	}
}

func TestKeeper_AFailoverClosedBetweenTwoCyclesStillStopsTheOldMaster(t *testing.T) {
	a, b := newFakeAgent(t, false), newFakeAgent(t, false)
	st := newFakeState()
	st.setMaster("app1", m1)
	k := startKeeper(t, st, []Cluster{{Name: "app1", Agents: map[string]string{m1: a.srv.URL, m2: b.srv.URL}}}, keeperOpts{})
	waitRenewals(t, a, 2)
	st.failoverTo("app1", m2, 77) // opened and closed between two cycles
	waitRenewals(t, b, 2)
	if g := k.Grant("app1", m1); g == nil || g.StoppedFor != 77 {
		t.Errorf("old master's grant %+v, want stopped for record 77", g)
	}
	if g := k.Grant("app1", m2); g == nil || g.StoppedFor != 0 || !g.Armed {
		t.Errorf("new master's grant %+v, want renewing and armed", g)
	}
	v := k.View("app1")
	if len(v.Masters) != 2 || v.Masters[0].Instance != m2 || !v.Masters[0].Renewing || v.Masters[1].Renewing {
		t.Errorf("view %+v: want the new master renewed first, the old one not", v)
	}
}

// A renewal that never got a connection (the agent's host gone: refused
// here, a dial timeout when its packets are dropped) cannot have reached
// the agent, so it must not move the bound: the lease of a vanished host
// lapses from its last delivered renewal.
func TestKeeper_UnsentAttemptDoesNotMoveTheBound(t *testing.T) {
	a := newFakeAgent(t, false)
	st := newFakeState()
	st.setMaster("app1", m1)
	k := startKeeper(t, st, []Cluster{{Name: "app1", Agents: map[string]string{m1: a.srv.URL}}}, keeperOpts{})
	waitRenewals(t, a, 2)
	a.srv.Close() // from now on every connect is refused
	var before MasterLease
	waitFor(t, "a failed attempt", func() (bool, string) {
		ms := k.View("app1").Masters
		if len(ms) == 0 {
			return false, "no master"
		}
		before = ms[0]
		return before.LastError != "", fmt.Sprintf("%+v", before)
	})
	waitFor(t, "a later failed attempt", func() (bool, string) {
		v := k.View("app1").Masters[0]
		return v.LastAttempt.After(before.LastAttempt), fmt.Sprintf("%+v", v)
	})
	after := k.View("app1").Masters[0]
	if !after.Bound.Equal(before.Bound) {
		t.Errorf("bound moved from %s to %s on attempts that never connected", before.Bound, after.Bound)
	}
	if !after.Bound.Before(after.LastAttempt) {
		t.Errorf("bound %s: want the last delivered renewal, before the last attempt %s", after.Bound, after.LastAttempt)
	}
}

// A failover of the master committed while a renewal hangs (the master's
// host vanished) stops the keeper without waiting the attempt out: the
// grant saying "stopped for good" is what the leader's lease witness waits
// for. The attempt's own timeout here is 10 s; it must be given up well
// before it, and its end (it connected) is the final bound.
func TestKeeper_FailoverCommittedDuringAHangingRenewalStopsAtOnce(t *testing.T) {
	hung := newFakeAgent(t, true)
	st := newFakeState()
	st.setMaster("app1", m1)
	k := startKeeper(t, st, []Cluster{{Name: "app1", Agents: map[string]string{m1: hung.srv.URL}}},
		keeperOpts{probeTimeout: 30 * time.Second}) // attempt timeout: ttl/2 = 10 s
	waitRenewals(t, hung, 1)
	_, arrived := hung.last()
	st.openFailover("app1", m1, 7)
	waitFor(t, "the grant stopped for record 7", func() (bool, string) {
		g := k.Grant("app1", m1)
		return g != nil && g.StoppedFor == 7, fmt.Sprintf("%+v", g)
	})
	v := k.View("app1").Masters[0]
	if took := v.LastAttempt.Sub(arrived); took >= 10*time.Second {
		t.Errorf("the hanging renewal was waited out (%s) before stopping", took)
	}
	if g := k.Grant("app1", m1); g.Bound.Before(arrived) {
		t.Errorf("bound %s before the connected attempt's request arrived %s", g.Bound, arrived)
	}
	if reqs, _ := hung.count(); reqs != 1 {
		t.Errorf("%d renewals sent, want none after the first while it hung and none once stopped", reqs)
	}
}
