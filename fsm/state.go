package fsm

import (
	"slices"
	"strings"
	"time"
)

// state is everything the FSM holds. It is replaced wholesale by Restore.
//
// Invariant: a closed record is never modified again (every command that
// would change one is rejected with ErrRecordClosed). Snapshot relies on it to
// share closed records with Persist without copying them; only open records
// are deep-copied.
type state struct {
	records  []*Record          // ascending ID (= log index of RecordOpen)
	byID     map[uint64]*Record // same records, by ID
	open     map[string]uint64  // cluster name -> ID of its open record
	clusters map[string]*ClusterState
	nodes    map[string]NodeMeta
	keys     map[string]NodeKey // controller id -> verdict-signing key
	applied  uint64             // index of the last applied log
}

func newState() *state {
	return &state{
		byID:     make(map[uint64]*Record),
		open:     make(map[string]uint64),
		clusters: make(map[string]*ClusterState),
		nodes:    make(map[string]NodeMeta),
		keys:     make(map[string]NodeKey),
	}
}

// cluster returns the named cluster's state, creating it on first mention.
func (s *state) cluster(name string) *ClusterState {
	c, ok := s.clusters[name]
	if !ok {
		c = &ClusterState{Name: name}
		s.clusters[name] = c
	}
	return c
}

// addRecord appends r, which must have a higher ID than every record held.
func (s *state) addRecord(r *Record) {
	s.records = append(s.records, r)
	s.byID[r.ID] = r
	if r.IsOpen() {
		s.open[r.Cluster] = r.ID
	}
}

// sortedClusters returns copies of all clusters sorted by name, so output
// never depends on map iteration order.
func (s *state) sortedClusters() []ClusterState {
	out := make([]ClusterState, 0, len(s.clusters))
	for _, c := range s.clusters {
		out = append(out, c.clone())
	}
	slices.SortFunc(out, func(a, b ClusterState) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// sortedKeys returns all node keys sorted by ID.
func (s *state) sortedKeys() []NodeKey {
	out := make([]NodeKey, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b NodeKey) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// sortedNodes returns all nodes sorted by ID.
func (s *state) sortedNodes() []NodeMeta {
	out := make([]NodeMeta, 0, len(s.nodes))
	for _, n := range s.nodes {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b NodeMeta) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Clone returns a deep copy of r, sharing no slices with it, so callers of
// the read queries can keep or modify what they get.
func (r Record) Clone() Record {
	r.Evidence = slices.Clone(r.Evidence)
	r.Candidates = slices.Clone(r.Candidates)
	r.Steps = slices.Clone(r.Steps)
	r.Salvage = r.Salvage.Clone()
	r.Fence = r.Fence.Clone()
	return r
}

// AntiFlapActive reports whether automatic failover must hold off for the
// cluster: a successful failover closed less than window before now and has
// not been acknowledged since (MHA's last_failover_minute). A now before the
// failover (clock skew between controllers) counts as inside the window, the
// safe side. A zero or negative window disables anti-flap.
func (c ClusterState) AntiFlapActive(now time.Time, window time.Duration) bool {
	if window <= 0 || c.LastFailover.IsZero() {
		return false
	}
	if !c.AckedAt.IsZero() && !c.AckedAt.Before(c.LastFailover) {
		return false
	}
	return now.Sub(c.LastFailover) < window
}

// InMaintenance reports whether the cluster is inside a maintenance window
// at now, during which automatic failover is off. The window ends at
// MaintenanceUntil (exclusive).
func (c ClusterState) InMaintenance(now time.Time) bool {
	return !c.MaintenanceUntil.IsZero() && now.Before(c.MaintenanceUntil)
}

// clone returns a copy sharing nothing with c.
func (c *ClusterState) clone() ClusterState {
	out := *c
	out.Topology = c.Topology.Clone()
	return out
}
