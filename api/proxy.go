package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Proxy health endpoints: what HAProxy's `option httpchk` (or any proxy
// that routes on an HTTP status) asks to decide where applications' writes
// and reads go, in the manner of Patroni's GET /primary and /replica.
//
//	GET /v1/clusters/{name}/primary/{address}  200: address is the master
//	GET /v1/clusters/{name}/replica/{address}  200: address may serve reads
//
// Anything else is 503 (404 for an unknown cluster): a proxy marks the
// server down on any status but 200, and a controller that cannot tell
// says 503 rather than guess.
//
// The primary answer is the master endpoint's rule (authoritativeMaster,
// master.go) applied to one address: leader contact, the replicated
// state's master, no open failover, not assessed dead. Every controller
// with leader contact thus answers the same, and one cut off from the group
// answers 503 for every address, so a proxy that asks several controllers
// and takes any 200 (proxy-config's check listener does) routes writes to
// the master the group recorded and nowhere else.
//
// The replica answer also needs leader contact (a controller cut off from
// the group does not know who the master is, so cannot tell a replica from
// it), the address must be a configured instance and not the recorded
// master, and this controller's latest observation of it must show it
// replicating from the recorded master, both replication threads running,
// within the cluster's lag limit (clusters[].max_lag, else
// recovery.max_replica_lag), and be recent.

// ReplicaHealth is this controller's latest observation of one configured
// instance as a replica, for GET /v1/clusters/{name}/replica/{address}.
type ReplicaHealth struct {
	// Observed is false when the detector has no observation of it yet (or
	// does not watch it as a replica, as it does not the master it watches).
	Observed bool
	// Reachable is false when the instance could not be queried.
	Reachable bool
	// IORunning is Slave_IO_Running ("Yes", "No", "Connecting").
	IORunning string
	// SQLRunning is Slave_SQL_Running = "Yes".
	SQLRunning bool
	// SecondsBehind is Seconds_Behind_Master; nil when NULL.
	SecondsBehind *int64
	// Source is the master it replicates from, Master_Host:Master_Port.
	Source string
	// SourceServerOf is the address of the master the detector watches
	// when the server this replica last connected to (Master_Server_Id) is
	// that master, whatever address the replica uses for it; "" otherwise.
	SourceServerOf string
	// ObservedAt is when the observation was made.
	ObservedAt time.Time
	// LagLimit is the cluster's replication lag limit; 0 means none.
	LagLimit time.Duration
	// MaxAge is how old the observation may be; 0 means any age.
	MaxAge time.Duration
}

// ReplicaView answers for the replica endpoint. It is optional: without it
// the replica endpoint answers 503 for every address.
type ReplicaView interface {
	// Configured reports whether addr is a configured instance of the
	// cluster.
	Configured(cluster, addr string) bool
	// ReplicaHealth returns the latest observation of addr as a replica.
	ReplicaHealth(cluster, addr string) ReplicaHealth
}

// ErrNotPrimary and ErrNotReplica are the 503 answers of the proxy health
// endpoints for an address that is not (or not known to be) the master, or
// a healthy replica.
var (
	ErrNotPrimary = errors.New("not the master")
	ErrNotReplica = errors.New("not a healthy replica")
)

// ProxyHealthResponse is the 200 answer of the proxy health endpoints.
type ProxyHealthResponse struct {
	Cluster string `json:"cluster"`
	Address string `json:"address"`
	Role    string `json:"role"` // "primary" or "replica"
}

// sameAddress compares instance addresses as the detector does (host names
// are case-insensitive).
func sameAddress(a, b string) bool { return strings.EqualFold(a, b) }

func (s *Server) primaryHealth(_ http.ResponseWriter, r *http.Request) (any, error) {
	name, addr := r.PathValue("name"), r.PathValue("address")
	if !s.knownCluster(name) {
		return nil, fmt.Errorf("cluster %q: %w", name, ErrNotFound)
	}
	m, err := s.authoritativeMaster(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", addr, ErrNotPrimary, err)
	}
	if !sameAddress(m, addr) {
		return nil, fmt.Errorf("cluster %q: %s: %w (the master is %s)", name, addr, ErrNotPrimary, m)
	}
	return ProxyHealthResponse{Cluster: name, Address: addr, Role: "primary"}, nil
}

func (s *Server) replicaHealth(_ http.ResponseWriter, r *http.Request) (any, error) {
	name, addr := r.PathValue("name"), r.PathValue("address")
	if !s.knownCluster(name) {
		return nil, fmt.Errorf("cluster %q: %w", name, ErrNotFound)
	}
	if err := s.leaderContact(); err != nil {
		return nil, fmt.Errorf("cluster %q: %s: %w: %w", name, addr, ErrNotReplica, err)
	}
	if s.replicas == nil {
		return nil, fmt.Errorf("cluster %q: %s: %w: this controller has no replica view", name, addr, ErrNotReplica)
	}
	if !s.replicas.Configured(name, addr) {
		return nil, fmt.Errorf("cluster %q: %s: %w: not a configured instance", name, addr, ErrNotReplica)
	}
	cs, _ := s.state.Cluster(name)
	switch {
	case cs.Master == "":
		return nil, fmt.Errorf("cluster %q: %s: %w: no master recorded in the replicated state", name, addr, ErrNotReplica)
	case sameAddress(cs.Master, addr):
		return nil, fmt.Errorf("cluster %q: %s: %w: it is the recorded master", name, addr, ErrNotReplica)
	}
	h := s.replicas.ReplicaHealth(name, addr)
	if h.Observed && !sameAddress(h.Source, cs.Master) && !sameAddress(h.SourceServerOf, cs.Master) {
		// Up to date with some other server (an old master not yet
		// demoted from its replicas' point of view) is not up to date.
		return nil, fmt.Errorf("cluster %q: %s: %w: replicates from %s, not from the recorded master %s", name, addr, ErrNotReplica, h.Source, cs.Master)
	}
	if err := replicaServes(h, s.now()); err != nil {
		return nil, fmt.Errorf("cluster %q: %s: %w: %w", name, addr, ErrNotReplica, err)
	}
	return ProxyHealthResponse{Cluster: name, Address: addr, Role: "replica"}, nil
}

// replicaServes decides whether an observed replica may serve reads: both
// threads running, within the lag limit, observed recently. A NULL
// Seconds_Behind_Master (lag unknown) does not pass.
func replicaServes(h ReplicaHealth, now time.Time) error {
	switch {
	case !h.Observed:
		return errors.New("not observed as a replica yet")
	case h.MaxAge > 0 && now.Sub(h.ObservedAt) > h.MaxAge:
		return fmt.Errorf("last observed %s ago (older than %s)", now.Sub(h.ObservedAt).Round(time.Millisecond), h.MaxAge)
	case !h.Reachable:
		return errors.New("unreachable")
	case h.IORunning != "Yes":
		return fmt.Errorf("IO thread not running (%q)", h.IORunning)
	case !h.SQLRunning:
		return errors.New("SQL thread not running")
	case h.SecondsBehind == nil:
		return errors.New("lag unknown (Seconds_Behind_Master is NULL)")
	case h.LagLimit > 0 && time.Duration(*h.SecondsBehind)*time.Second > h.LagLimit:
		return fmt.Errorf("lag %ds above the limit %s", *h.SecondsBehind, h.LagLimit)
	}
	return nil
}
