package lease

import (
	"slices"
	"strings"
	"time"
)

// MasterLease is this controller's share of one master's lease, for the
// API's cluster view and `quorumha status`.
type MasterLease struct {
	// Instance is the master's address; Agent its agent's URL.
	Instance string `json:"instance"`
	Agent    string `json:"agent,omitempty"`
	// Renewing is true while this controller renews it now.
	Renewing bool `json:"renewing"`
	// Bound is the latest time the agent may have received one of this
	// controller's renewals (this controller's clock).
	Bound time.Time `json:"bound"`
	// LastAttempt and LastOK are the ends of the last attempt and of the
	// last answered one; LastError is why the last attempt failed.
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastOK      time.Time `json:"last_ok,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	// State, Enforced, Held, Holders and Voters are the agent's last answer.
	State    string   `json:"state,omitempty"`
	Enforced bool     `json:"enforced"`
	Armed    bool     `json:"armed"`
	Held     bool     `json:"held"`
	Holders  []string `json:"holders,omitempty"`
	Voters   int      `json:"voters,omitempty"`
	// StoppedFor is the failover record that made this controller stop
	// renewing (0 while it renews).
	StoppedFor uint64 `json:"stopped_for,omitempty"`
	// NotVoter is set when this controller renews nothing because it is
	// not a raft voter.
	NotVoter bool `json:"not_voter,omitempty"`
}

// ClusterLease is this controller's lease view of one cluster.
type ClusterLease struct {
	Controller string `json:"controller"`
	TTL        string `json:"ttl"`
	// Masters are the masters this controller renews or renewed, the
	// current one first.
	Masters []MasterLease `json:"masters"`
}

// View returns this controller's lease view of cluster.
func (k *Keeper) View(cluster string) ClusterLease {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := ClusterLease{Controller: k.cfg.Controller, TTL: k.cfg.TTL.String(), Masters: []MasterLease{}}
	target, renewing := k.targets[cluster]
	for key, st := range k.masters {
		if key.cluster != cluster {
			continue
		}
		out.Masters = append(out.Masters, MasterLease{Instance: st.instance, Agent: st.agent,
			Renewing: renewing && key == target && st.stoppedFor == 0 && !st.notVoter,
			Bound:    st.bound, LastAttempt: st.lastAttempt, LastOK: st.lastOK, LastError: st.lastErr,
			State: st.last.State, Enforced: st.last.Enforced, Armed: armed(st.last), Held: st.last.Held,
			Holders: slices.Clone(st.last.Holders), Voters: st.last.Voters, StoppedFor: st.stoppedFor, NotVoter: st.notVoter})
	}
	slices.SortFunc(out.Masters, func(a, b MasterLease) int {
		if a.Renewing != b.Renewing {
			if a.Renewing {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Instance, b.Instance)
	})
	return out
}

// renewalAges returns, per cluster and master this controller renews now,
// the time since its last answered renewal (since it began renewing that
// master, when none was answered yet).
func (k *Keeper) renewalAges() []renewalAge {
	now := k.cfg.Clock.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []renewalAge
	for cluster, key := range k.targets {
		st := k.masters[key]
		if st.stoppedFor != 0 || st.notVoter {
			continue
		}
		since := st.lastOK
		if since.IsZero() {
			since = st.tracked
		}
		out = append(out, renewalAge{cluster: cluster, instance: st.instance, age: now.Sub(since)})
	}
	return out
}

type renewalAge struct {
	cluster, instance string
	age               time.Duration
}
