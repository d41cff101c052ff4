package lease

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/quorumha/quorumha/agent"
	"github.com/quorumha/quorumha/detector"
)

// majorityAgent is an agent's lease as design.md states it: held while
// renewals from a majority of the voters are younger than the TTL. It
// records when each controller's last renewal arrived.
type majorityAgent struct {
	srv *httptest.Server
	mu  sync.Mutex
	at  map[string]time.Time
	ttl time.Duration
}

func newMajorityAgent(t *testing.T, ttl time.Duration) *majorityAgent {
	a := &majorityAgent{at: map[string]time.Time{}, ttl: ttl}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req agent.LeaseRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.mu.Lock()
		a.at[req.Controller] = time.Now()
		a.mu.Unlock()
		_ = json.NewEncoder(w).Encode(agent.LeaseResponse{Enforced: true, State: agent.FenceHeld, Held: a.heldAt(time.Now(), 3)})
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// heldAt reports whether a majority of n voters' renewals are fresh at t.
func (a *majorityAgent) heldAt(t time.Time, n int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	fresh := 0
	for _, at := range a.at {
		if t.Sub(at) < a.ttl {
			fresh++
		}
	}
	return fresh >= n/2+1
}

// grantsOf plays the gossip: every keeper's grant, as verdicts received now.
type grantsOf []*Keeper

func (g grantsOf) Verdicts() map[string][]detector.Verdict {
	now := time.Now()
	var vs []detector.Verdict
	for _, k := range g {
		if lg := k.Grant("app1", m1); lg != nil {
			vs = append(vs, detector.Verdict{Controller: k.cfg.Controller, Cluster: "app1", Instance: m1,
				ObservedAt: now, ReceivedAt: now, Lease: lg})
		}
	}
	return map[string][]detector.Verdict{m1: vs}
}

// TestGroup_WitnessNeverSaysLapsedWhileTheAgentHoldsTheLease: three
// keepers renew one master's lease at an agent that applies the majority
// rule; a failover of it is committed; the leader's witness must not call
// the lease lapsed while the agent still holds it, and must call it lapsed
// once every keeper stopped and ttl + drift passed.
func TestGroup_WitnessNeverSaysLapsedWhileTheAgentHoldsTheLease(t *testing.T) {
	const ttl, drift = 300 * time.Millisecond, 50 * time.Millisecond
	a := newMajorityAgent(t, ttl)
	st := newFakeState()
	st.setMaster("app1", m1)
	voters := []string{"c1", "c2", "c3"}
	var keepers grantsOf
	for _, id := range voters {
		k, err := NewKeeper(KeeperConfig{Controller: id, Clusters: []Cluster{{Name: "app1", Agents: map[string]string{m1: a.srv.URL}}},
			Interval: 20 * time.Millisecond, ProbeTimeout: time.Second, TTL: ttl, Term: func() uint64 { return 1 },
			Voters: func() ([]string, error) { return voters, nil }}, st, dialAgent)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- k.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		keepers = append(keepers, k)
	}
	waitFor(t, "an armed lease held by the group", func() (bool, string) {
		for _, k := range keepers {
			if g := k.Grant("app1", m1); g == nil || !g.Armed {
				return false, fmt.Sprintf("%s: %+v", k.cfg.Controller, g)
			}
		}
		return a.heldAt(time.Now(), 3), "agent not held"
	})
	w, err := NewWitness(WitnessConfig{Controller: "c1", TTL: ttl, Drift: drift, Own: keepers[0].Grant, Gossip: keepers[1:],
		Voters: func() ([]string, error) { return voters, nil }, Records: st})
	if err != nil {
		t.Fatal(err)
	}
	if ok, why := w.LeaseLapsed("app1", m1, time.Now()); ok {
		t.Fatalf("lapsed before any failover: %s", why)
	}

	st.openFailover("app1", m1, 11)
	waitFor(t, "the witness to prove the lapse", func() (bool, string) {
		now := time.Now()
		ok, why := w.LeaseLapsed("app1", m1, now)
		if ok && a.heldAt(now, 3) {
			t.Fatalf("the witness says lapsed at %s while the agent still holds the lease: %s", now, why)
		}
		return ok, why
	})
}
