package agent

import "time"

// The quorum lease and self-fencing contract (design.md, "The host agent").
//
// Every controller renews the lease of its cluster's recorded master with
// that host's agent on each probe cycle (POST /v1/lease). The lease holds
// while renewals from a majority of the voters are younger than the TTL on
// the agent's monotonic clock. Once a lease has been held (the agent is
// "armed"), its lapse makes the agent fence its server at once: read_only
// (and super_read_only on MySQL) on, every client session killed except
// replication and its own, a global read lock held so that accounts with
// READ ONLY ADMIN cannot write either. It reports that at GET /v1/fence and
// never unfences by itself: only POST /v1/fence/clear (a controller
// promoting this server, or demoting it in order) disarms it.

// LeaseRequest is the body of POST /v1/lease: one controller's renewal.
type LeaseRequest struct {
	// Controller is the renewing controller's node id.
	Controller string `json:"controller"`
	// Term is the raft term that controller knows.
	Term uint64 `json:"term"`
	// Voters is the group's voter count as that controller knows it; the
	// agent counts a majority of the largest count among fresh renewals.
	Voters int `json:"voters"`
	// TTLMillis is how long this renewal counts, in milliseconds.
	TTLMillis int64 `json:"ttl_ms"`
	// Master is the address the controller believes this host serves as
	// master (host:port), for the agent's log and status only.
	Master string `json:"master,omitempty"`
}

// TTL is the renewal's time to live.
func (r LeaseRequest) TTL() time.Duration { return time.Duration(r.TTLMillis) * time.Millisecond }

// Fence states reported by the agent.
const (
	// FenceDisabled: the agent has no agent.fence section; leases are
	// accepted and answered but never enforced.
	FenceDisabled = "disabled"
	// FenceUnarmed: fencing is configured but no majority has held the
	// lease since the agent was last cleared (a replica's host, or a group
	// still starting): a lapse fences nothing.
	FenceUnarmed = "unarmed"
	// FenceHeld: armed, and a majority's renewals are fresh.
	FenceHeld = "held"
	// FenceFencing: the lease lapsed (or a controller asked) and the fence
	// is being applied.
	FenceFencing = "fencing"
	// FenceFenced: the server was fenced (see Actions and Errors).
	FenceFenced = "fenced"
)

// LeaseResponse answers POST /v1/lease.
type LeaseResponse struct {
	// Enforced is false when the agent has no agent.fence section.
	Enforced bool `json:"enforced"`
	// State is one of the Fence* constants after this renewal.
	State string `json:"state"`
	// Held reports whether a majority's renewals are fresh now.
	Held bool `json:"held"`
	// Holders are the controllers whose renewals are fresh, sorted.
	Holders []string `json:"holders"`
	// Voters is the voter count the agent counts a majority of.
	Voters int `json:"voters"`
	// ExpiresInMillis is how long the lease holds without further renewals
	// (0 when not held).
	ExpiresInMillis int64 `json:"expires_in_ms"`
}

// FenceStatus answers GET /v1/fence, POST /v1/fence and POST
// /v1/fence/clear.
type FenceStatus struct {
	Enforced bool   `json:"enforced"`
	State    string `json:"state"`
	// Armed reports whether a lapse would fence (a majority has held the
	// lease since the last clear; persisted across agent restarts).
	Armed   bool     `json:"armed"`
	Fenced  bool     `json:"fenced"`
	Holders []string `json:"holders,omitempty"`
	Voters  int      `json:"voters,omitempty"`
	// Since is when the current state began (agent's wall clock).
	Since time.Time `json:"since,omitzero"`
	// Reason says why the agent fenced ("lease lapsed: ...", "requested by
	// c1: ...") or why it was cleared.
	Reason string `json:"reason,omitempty"`
	// Actions are what the fence did, in order ("read_only=ON",
	// "killed 3 client sessions", "global read lock held").
	Actions []string `json:"actions,omitempty"`
	// Errors are what failed while fencing; a fence with errors is not a
	// proof by itself (unless ServerRunning is false).
	Errors []string `json:"errors,omitempty"`
	// ServerRunning is set when the agent knows the server's pid file.
	ServerRunning *bool `json:"server_running,omitempty"`
}

// FenceRequest is the body of POST /v1/fence (fence now) and POST
// /v1/fence/clear (disarm and forget the fence).
type FenceRequest struct {
	Controller string `json:"controller"`
	Reason     string `json:"reason"`
}
