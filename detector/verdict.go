// Package detector decides whether a master is dead. Every controller probes
// every master and the masters' replicas, turns its probe results into a
// Verdict, and gossips its verdicts to the other controllers over memberlist.
// Assess combines the latest fresh verdicts of all controllers with the
// replicas' own view of the master into an Assessment; only a DeadConfirmed
// assessment lets the Raft leader start a failover. The detector never changes
// any instance.
package detector

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Reason classifies the outcome of one probe. It is a closed enum so that the
// quorum rule and the metrics switch on it instead of on error text.
type Reason uint8

// Probe outcomes. ReasonUnknown is the zero value so that an unset Reason is
// never mistaken for success.
const (
	// ReasonUnknown is an error that fits no other class; it counts as a failure.
	ReasonUnknown Reason = iota
	// ReasonOK means the probe query answered.
	ReasonOK
	// ReasonRefused means the TCP connection was refused, reset or unreachable:
	// nothing is listening, or the server went away mid-query.
	ReasonRefused
	// ReasonTimeout means the server did not answer within probe_timeout.
	ReasonTimeout
	// ReasonAuthError means the server answered but refused our account or
	// host (MHA's "alive but refusing" errnos 1042-1045, 1129, 1130, 1251, 1275).
	ReasonAuthError
	// ReasonTooManyConnections means the server answered but has no free
	// connection slot (1040, 1203, 1226): alive.
	ReasonTooManyConnections
	// ReasonReadOnlyOrShutdown means the server is shutting down or killed our
	// session (1053, 1077-1079, 1927, 3169): it is going away.
	ReasonReadOnlyOrShutdown
	// ReasonQueryError means the server answered the probe query with an
	// error that says nothing about liveness classes above.
	ReasonQueryError
)

var reasonNames = [...]string{
	ReasonUnknown:            "unknown",
	ReasonOK:                 "ok",
	ReasonRefused:            "refused",
	ReasonTimeout:            "timeout",
	ReasonAuthError:          "auth_error",
	ReasonTooManyConnections: "too_many_connections",
	ReasonReadOnlyOrShutdown: "read_only_or_shutdown",
	ReasonQueryError:         "query_error",
}

// String returns the snake_case name used in logs, JSON and metric labels.
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// MarshalText encodes the reason by name so gossip and the API stay readable
// and survive reordering of the constants.
func (r Reason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText decodes a name written by MarshalText; unknown names decode
// to ReasonUnknown so a newer peer never breaks an older one.
func (r *Reason) UnmarshalText(b []byte) error {
	for i, n := range reasonNames {
		if n == string(b) {
			*r = Reason(i)
			return nil
		}
	}
	*r = ReasonUnknown
	return nil
}

// Alive reports whether the reason proves the server is up: it either
// answered, or it refused us in a way only a running mysqld can (MHA does not
// count these as failures, and neither do we).
func (r Reason) Alive() bool {
	switch r {
	case ReasonOK, ReasonAuthError, ReasonTooManyConnections:
		return true
	default:
		return false
	}
}

// ProbeResult is the outcome of one probe of one instance by this controller.
type ProbeResult struct {
	// Instance is the probed address, host:port.
	Instance string `json:"instance"`
	// OK is true when the probe query answered.
	OK bool `json:"ok"`
	// Reason classifies the outcome; ReasonOK when OK.
	Reason Reason `json:"reason"`
	// Latency is how long the probe took.
	Latency time.Duration `json:"latency"`
	// At is when the probe started.
	At time.Time `json:"at"`
	// Detail is the error text or extra state, for operators.
	Detail string `json:"detail,omitempty"`
	// ReadOnly is @@global.read_only as seen by a successful probe; recovery
	// uses it to tell a fenced master from a writable one.
	ReadOnly bool `json:"read_only,omitempty"`
	// ServerID is @@global.server_id as seen by a successful probe: replicas
	// whose Master_Server_Id matches follow this master whatever address
	// they name it by.
	ServerID uint32 `json:"server_id,omitempty"`
	// Position is the server's GTID position (MariaDB gtid_binlog_pos,
	// MySQL gtid_executed) as a successful probe read it; "" before the
	// prober knows the flavor.
	Position string `json:"position,omitempty"`
	// ProcessGone is set when the probe was refused (nothing listening)
	// and the master host's agent says no server process runs: a crash
	// seen from the host itself, which NextVerdict takes as Down at once.
	ProcessGone bool `json:"process_gone,omitempty"`
}

// State is one controller's opinion of one instance.
type State uint8

// Verdict states. StateUnknown is the zero value: no probe yet.
const (
	// StateUnknown means this controller has not probed the instance yet.
	StateUnknown State = iota
	// StateUp means the last probe answered.
	StateUp
	// StateDegraded means the server is alive but refusing us (too many
	// connections, access denied); it never counts toward "down".
	StateDegraded
	// StateSuspect means one or more consecutive failures, below the threshold.
	StateSuspect
	// StateDown means failure_threshold consecutive failures.
	StateDown
)

var stateNames = [...]string{
	StateUnknown:  "unknown",
	StateUp:       "up",
	StateDegraded: "degraded",
	StateSuspect:  "suspect",
	StateDown:     "down",
}

// String returns the lower-case name used in logs, JSON and metrics.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText encodes the state by name.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a name written by MarshalText; unknown names decode
// to StateUnknown, which never counts as a down vote.
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	*s = StateUnknown
	return nil
}

// Verdict is one controller's current opinion of one instance: what it
// gossips, and one vote in Assess.
type Verdict struct {
	// Controller is the node id of the controller that probed.
	Controller string `json:"controller"`
	// Zone is that controller's zone.
	Zone string `json:"zone"`
	// Cluster is the cluster the instance is the master of, for readers.
	Cluster string `json:"cluster,omitempty"`
	// Instance is the probed address, host:port.
	Instance string `json:"instance"`
	// State is the opinion.
	State State `json:"state"`
	// Failures is the number of consecutive failed probes.
	Failures int `json:"failures"`
	// Reason is the last probe's reason.
	Reason Reason `json:"reason"`
	// Detail is the last probe's detail text.
	Detail string `json:"detail,omitempty"`
	// ProcessGone is the last probe's ProcessGone: this vote is Down
	// because the master's agent saw the server process gone, not
	// because failure_threshold was reached.
	ProcessGone bool `json:"process_gone,omitempty"`
	// ObservedAt is when the last probe ran, on the probing controller's clock.
	ObservedAt time.Time `json:"observed_at"`
	// Seq increases with every probe of the controller; with ObservedAt it
	// orders verdicts so gossip keeps only the newest.
	Seq uint64 `json:"seq"`
	// LastPosition is the instance's GTID position as this controller's
	// last successful probe read it, kept through failures: once the master
	// is dead it is the last position known to have been committed there,
	// which bounds what a failover may lose. LastPositionAt is that probe's
	// time.
	LastPosition   string    `json:"last_position,omitempty"`
	LastPositionAt time.Time `json:"last_position_at,omitzero"`
	// Lease is this controller's last grant of the instance's quorum lease
	// (nil when it renews none there), so the leader can tell when a
	// majority's grants have lapsed. Older peers ignore the field.
	Lease *LeaseGrant `json:"lease,omitempty"`
	// ReceivedAt is when this controller first received this verdict (zero
	// for its own). It is local and never gossiped; Assess uses the earlier of
	// ObservedAt and ReceivedAt so a peer whose clock runs ahead cannot keep
	// its verdicts fresh for ever.
	ReceivedAt time.Time `json:"-"`
}

// LeaseGrant is one controller's share of a master's quorum lease, as it
// gossips it: the leader's lease witness counts the grants of the raft
// voters (see design.md, safety rule 3).
type LeaseGrant struct {
	// Bound is the latest time, on the granting controller's clock, at which
	// the master's agent may have received one of its renewals: the end of
	// its last renewal attempt, answered or not (a renewal that timed out
	// may still have arrived), and never before that controller started.
	Bound time.Time `json:"bound"`
	// BoundAge is how long before this grant was read Bound was, measured
	// on the granting controller's monotonic clock: a receiver places Bound
	// at the latest BoundAge before it received the verdict, so neither a
	// wall-clock offset nor a clock step between controllers can make a
	// lease look lapsed early.
	BoundAge time.Duration `json:"bound_age,omitempty"`
	// Enforced and Armed are what the agent last answered: it fences its
	// server when the lease lapses only when both are true.
	Enforced bool `json:"enforced,omitempty"`
	Armed    bool `json:"armed,omitempty"`
	// StoppedFor is the failover record whose decision made this controller
	// stop renewing for good (0 while it renews): Bound is then final.
	StoppedFor uint64 `json:"stopped_for,omitempty"`
}

// NewerThan reports whether v supersedes old from the same controller: a
// later observation, or the same instant with a higher sequence number. A
// restarted controller starts Seq again at 1 but its clock moves on.
func (v Verdict) NewerThan(old Verdict) bool {
	if !v.ObservedAt.Equal(old.ObservedAt) {
		return v.ObservedAt.After(old.ObservedAt)
	}
	return v.Seq > old.Seq
}

// maxGossipPosition bounds the position a verdict carries: a verdict is one
// gossip broadcast, and memberlist never sends a broadcast larger than a UDP
// packet. MariaDB positions are a few dozen bytes; a MySQL gtid_executed
// with many server UUIDs is simply not carried.
const maxGossipPosition = 256

// NextVerdict is the per-controller failure counter: it folds one probe
// result into the previous verdict. The first failure makes the instance
// Suspect, threshold consecutive failures make it Down, an answer resets it to
// Up, and "alive but refusing" makes it Degraded (also a reset). A refused
// probe (nothing listening) while the master host's agent says the server
// process is gone (r.ProcessGone) is Down at once: two independent signals
// from this vantage point agree, and waiting for the threshold only delays
// the failover of a crashed server. It stays one vote: the quorum and the
// replica check still apply. A result for
// a different instance than prev (the master moved) starts counting afresh.
// A threshold below 1 is treated as 1.
func NextVerdict(prev Verdict, r ProbeResult, threshold int) Verdict {
	if threshold < 1 {
		threshold = 1
	}
	next := prev
	if r.Instance != "" && r.Instance != prev.Instance {
		next.Instance = r.Instance
		next.Failures = 0
		next.LastPosition, next.LastPositionAt = "", time.Time{}
	}
	if r.OK && r.Position != "" && len(r.Position) <= maxGossipPosition {
		next.LastPosition, next.LastPositionAt = r.Position, r.At
	}
	next.Seq = prev.Seq + 1
	next.ObservedAt = r.At
	next.Reason = r.Reason
	next.Detail = r.Detail
	next.ProcessGone = !r.OK && r.Reason == ReasonRefused && r.ProcessGone
	next.ReceivedAt = time.Time{}
	switch {
	case r.OK:
		next.State = StateUp
		next.Reason = ReasonOK
		next.Failures = 0
	case r.Reason.Alive():
		next.State = StateDegraded
		next.Failures = 0
	default:
		next.Failures++
		if next.Failures >= threshold || next.ProcessGone {
			next.State = StateDown
		} else {
			next.State = StateSuspect
		}
	}
	return next
}

// ReplicaObservation is what one replica says about its master: the second
// opinion that stops a failover while the master still feeds its replicas.
type ReplicaObservation struct {
	// Replica is the replica's address, host:port.
	Replica string `json:"replica"`
	// Reachable is false when the replica itself could not be queried.
	Reachable bool `json:"reachable"`
	// Error is why the replica could not be queried.
	Error string `json:"error,omitempty"`
	// MasterHost is Master_Host (Source_Host); empty when not a replica.
	MasterHost string `json:"master_host,omitempty"`
	// MasterPort is Master_Port (Source_Port).
	MasterPort int `json:"master_port,omitempty"`
	// MasterServerID is Master_Server_Id (Source_Server_Id): the server the
	// replica last connected to; 0 when unknown.
	MasterServerID uint32 `json:"master_server_id,omitempty"`
	// SameServer is set by the detector when MasterServerID is the watched
	// master's server_id: the replica follows it under another address
	// (a hostname, another interface).
	SameServer bool `json:"same_server,omitempty"`
	// IORunning is Slave_IO_Running: "Yes", "No", "Connecting" (or "Preparing").
	IORunning string `json:"io_running,omitempty"`
	// SQLRunning is Slave_SQL_Running = "Yes".
	SQLRunning bool `json:"sql_running"`
	// LastIOErrno is Last_IO_Errno.
	LastIOErrno int `json:"last_io_errno,omitempty"`
	// LastIOError is Last_IO_Error.
	LastIOError string `json:"last_io_error,omitempty"`
	// ReadPos is the received position as a comparable string
	// (Master_Log_File:Read_Master_Log_Pos, plus the GTID IO position when
	// there is one).
	ReadPos string `json:"read_pos,omitempty"`
	// Advancing is true when ReadPos changed since the previous observation.
	Advancing bool `json:"advancing"`
	// SecondsBehind is Seconds_Behind_Master; nil when NULL.
	SecondsBehind *int64 `json:"seconds_behind,omitempty"`
	// ObservedAt is when the observation was made.
	ObservedAt time.Time `json:"observed_at"`
	// Heartbeats is the count of heartbeats the replica received from its
	// master (MariaDB Slave_received_heartbeats, MySQL
	// COUNT_RECEIVED_HEARTBEATS); nil when it could not be read.
	Heartbeats *uint64 `json:"heartbeats,omitempty"`
	// HeartbeatPeriod is the replica's MASTER_HEARTBEAT_PERIOD; 0 when
	// unknown or off.
	HeartbeatPeriod time.Duration `json:"heartbeat_period,omitempty"`
	// ProgressAt is when this controller last saw ReadPos or Heartbeats
	// change (or first saw the replica): the master has sent nothing that
	// reached the replica since.
	ProgressAt time.Time `json:"progress_at,omitzero"`
	// Reach is what the agent on the replica's host answered when asked
	// whether it reaches the master (asked only while this controller's
	// probes of the master fail); nil when not asked.
	Reach *AgentReach `json:"agent_reach,omitempty"`
}

// MasterAddr returns MasterHost:MasterPort, or "" when not a replica.
func (o ReplicaObservation) MasterAddr() string {
	if o.MasterHost == "" {
		return ""
	}
	return net.JoinHostPort(o.MasterHost, strconv.Itoa(o.MasterPort))
}

// Follows reports whether the replica replicates from master: by server
// identity (SameServer) when the master's server_id is known, otherwise by
// address (host:port; hosts compare case-insensitively, no DNS lookups).
func (o ReplicaObservation) Follows(master string) bool {
	if o.SameServer {
		return true
	}
	if o.MasterHost == "" {
		return false
	}
	host, port, err := net.SplitHostPort(master)
	if err != nil {
		return strings.EqualFold(o.MasterHost, master) && o.MasterPort == 3306
	}
	return strings.EqualFold(strings.Trim(host, "[]"), strings.Trim(o.MasterHost, "[]")) &&
		port == strconv.Itoa(o.MasterPort)
}

// StillConnected reports whether this replica vouches that master is alive:
// it is reachable, follows master, and its IO thread is connected or its
// read position is still moving.
func (o ReplicaObservation) StillConnected(master string) bool {
	return o.Reachable && o.Follows(master) && (o.IORunning == "Yes" || o.Advancing)
}

// describe is a one-line summary for Assessment.Reason.
func (o ReplicaObservation) describe() string {
	if !o.Reachable {
		return fmt.Sprintf("%s unreachable", o.Replica)
	}
	return fmt.Sprintf("%s io=%s advancing=%t", o.Replica, o.IORunning, o.Advancing)
}
