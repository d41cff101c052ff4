package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumha/quorumha/agent"
	"github.com/quorumha/quorumha/tests/harness"
)

// leaseAgent stands in for the master host's agent: it answers every
// renewal as an enforcing agent holding the lease, and records, per
// controller, the last renewal and when it arrived.
type leaseAgent struct {
	srv  *httptest.Server
	mu   sync.Mutex
	last map[string]agent.LeaseRequest
	at   map[string]time.Time
}

func newLeaseAgent(t *testing.T) *leaseAgent {
	a := &leaseAgent{last: map[string]agent.LeaseRequest{}, at: map[string]time.Time{}}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req agent.LeaseRequest
		if r.URL.Path != "/v1/lease" || json.NewDecoder(r.Body).Decode(&req) != nil {
			http.Error(w, "not a lease renewal", http.StatusBadRequest)
			return
		}
		a.mu.Lock()
		a.last[req.Controller], a.at[req.Controller] = req, time.Now()
		a.mu.Unlock()
		_ = json.NewEncoder(w).Encode(agent.LeaseResponse{Enforced: true, State: agent.FenceHeld, Held: true, Voters: req.Voters})
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *leaseAgent) renewal(id string) (agent.LeaseRequest, time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.last[id]
	return r, a.at[id], ok
}

// leaseMaster is one master in a controller's lease view.
type leaseMaster struct {
	Instance   string    `json:"instance"`
	Renewing   bool      `json:"renewing"`
	Armed      bool      `json:"armed"`
	Bound      time.Time `json:"bound"`
	StoppedFor uint64    `json:"stopped_for"`
}

// leaseView is a controller's lease view and assessment of the cluster.
type leaseView struct {
	Lease struct {
		Controller string        `json:"controller"`
		Masters    []leaseMaster `json:"masters"`
	} `json:"lease"`
	Assessment struct {
		Votes []struct {
			Controller string `json:"controller"`
			Lease      *struct {
				Armed      bool   `json:"armed"`
				StoppedFor uint64 `json:"stopped_for"`
			} `json:"lease"`
		} `json:"votes"`
	} `json:"assessment"`
}

func (e *foEnv) leaseView(ctx context.Context, c *harness.Controller) (leaseView, error) {
	var r struct {
		Cluster struct {
			Topology leaseView `json:"topology"`
		} `json:"cluster"`
	}
	_, err := e.g.Do(ctx, http.MethodGet, c.URL("/v1/clusters/"+detCluster), nil, &r)
	return r.Cluster.Topology, err
}

// TestLease_EveryControllerRenewsAndStopsForTheFailover: with an agent
// beside the master, every controller renews the master's lease on each
// probe cycle with the group's voter count, gossips its grant with its
// verdict, and stops renewing for good once the failover of that master is
// committed, with a final bound no renewal arrived after.
func TestLease_EveryControllerRenewsAndStopsForTheFailover(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), foTimeout)
	defer cancel()
	ag := newLeaseAgent(t)
	e := startFailoverEnv(ctx, t, foOptions{Instances: map[int][]string{0: {"agent: " + ag.srv.URL}}})
	master := e.addr(0)

	err := harness.Poll(ctx, 100*time.Millisecond, func() error {
		for _, c := range e.g.Nodes {
			req, _, ok := ag.renewal(c.ID)
			if !ok {
				return fmt.Errorf("no renewal from %s", c.ID)
			}
			if req.Voters != 3 || req.Master != master || req.TTLMillis != 2000 || req.Term == 0 {
				return fmt.Errorf("renewal from %s: %+v", c.ID, req)
			}
		}
		for _, c := range e.g.Nodes {
			v, err := e.leaseView(ctx, c)
			if err != nil {
				return err
			}
			if len(v.Lease.Masters) != 1 || !v.Lease.Masters[0].Renewing || !v.Lease.Masters[0].Armed {
				return fmt.Errorf("%s's lease view: %+v", c.ID, v.Lease)
			}
			var granted []string
			for _, vote := range v.Assessment.Votes {
				if vote.Lease != nil && vote.Lease.Armed {
					granted = append(granted, vote.Controller)
				}
			}
			if granted = slices.Compact(slices.Sorted(slices.Values(granted))); len(granted) != 3 {
				return fmt.Errorf("%s sees armed grants from %v", c.ID, granted)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("every controller renewing and gossiping its grant: %v", err)
	}

	rec := e.killMasterAndWaitFailover(ctx, t, 0)
	requireSuccessRecord(t, rec, master, "", "automatic")
	err = harness.Poll(ctx, 100*time.Millisecond, func() error {
		for _, c := range e.g.Nodes {
			v, err := e.leaseView(ctx, c)
			if err != nil {
				return err
			}
			i := slices.IndexFunc(v.Lease.Masters, func(m leaseMaster) bool { return strings.EqualFold(m.Instance, master) })
			if i < 0 {
				return fmt.Errorf("%s no longer shows the old master's lease: %+v", c.ID, v.Lease)
			}
			m := v.Lease.Masters[i]
			if m.Renewing || m.StoppedFor != rec.ID {
				return fmt.Errorf("%s: old master's lease %+v, want stopped for record %d", c.ID, m, rec.ID)
			}
			if _, at, _ := ag.renewal(c.ID); at.After(m.Bound) {
				return fmt.Errorf("%s: a renewal arrived at %s, after its final bound %s", c.ID, at, m.Bound)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("every controller stopped renewing the old master: %v", err)
	}
}
