package fsm

import (
	"encoding/json"
	"time"
)

// MessageType identifies a command in the replicated log. The numbering is
// append-only: never renumber or reuse a value, add new types at the end.
// Types with IgnoreUnknownTypeFlag set may be skipped by older controllers
// that do not know them; any other unknown type stops the FSM, because a
// replica that silently skips a command it does not understand diverges.
type MessageType uint8

// IgnoreUnknownTypeFlag marks a command type that older FSMs may skip.
const IgnoreUnknownTypeFlag MessageType = 128

// Command types. Append only.
const (
	// RecordOpenType opens a failover/switchover/detection record.
	RecordOpenType MessageType = 1
	// StepBeginType journals the start of a step, before its action runs.
	StepBeginType MessageType = 2
	// StepEndType journals the outcome of a step.
	StepEndType MessageType = 3
	// CandidatesType stores the candidates considered and why.
	CandidatesType MessageType = 4
	// RecordCloseType closes a record with its result.
	RecordCloseType MessageType = 5
	// SetMasterType records a cluster's current master.
	SetMasterType MessageType = 6
	// AckType acknowledges a cluster's last failover (lifts anti-flap).
	AckType MessageType = 7
	// MaintenanceType starts or ends a maintenance window for a cluster.
	MaintenanceType MessageType = 8
	// NodeMetaType records a controller's HTTP address and zone.
	NodeMetaType MessageType = 9
)

// RecordKind says what a record is about.
type RecordKind string

// Record kinds.
const (
	KindFailover   RecordKind = "failover"
	KindSwitchover RecordKind = "switchover"
	KindDetection  RecordKind = "detection"
	// KindRejoin makes a former master (fenced and alone after a failover)
	// a read-only replica of the current master again; it never changes
	// the cluster's master.
	KindRejoin RecordKind = "rejoin"
)

// Result of a closed record. Empty while the record is open.
type Result string

// Record results.
const (
	ResultOpen       Result = ""
	ResultSuccess    Result = "success"
	ResultFailed     Result = "failed"
	ResultAborted    Result = "aborted"
	ResultRolledBack Result = "rolled_back"
	ResultRefused    Result = "refused"
	ResultDetected   Result = "detected" // detection only, no recovery configured
)

// Outcome of a step.
type Outcome string

// Step outcomes.
const (
	OutcomeRunning Outcome = "running"
	OutcomeOK      Outcome = "ok"
	OutcomeFailed  Outcome = "failed"
	OutcomeSkipped Outcome = "skipped"
	OutcomeWarning Outcome = "warning"
)

// Step is one journalled action of a record.
type Step struct {
	Seq     int       `json:"seq"` // 1-based order within the record
	Name    string    `json:"name"`
	Leader  string    `json:"leader"` // controller that ran the step
	Term    uint64    `json:"term,omitempty"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end,omitzero"`
	Outcome Outcome   `json:"outcome"`
	Detail  string    `json:"detail,omitempty"`
}

// Candidate is one replica considered for promotion, with the reason it was
// taken or refused.
type Candidate struct {
	Address string `json:"address"`
	Chosen  bool   `json:"chosen"`
	Reason  string `json:"reason"`
}

// Record is a replicated failover, switchover or detection record. Its ID is
// the raft log index of the command that opened it, so every controller
// assigns the same ID.
type Record struct {
	ID         uint64          `json:"id"`
	Cluster    string          `json:"cluster"`
	Kind       RecordKind      `json:"kind"`
	Trigger    string          `json:"trigger"` // e.g. "automatic", "manual", "switchover"
	OldMaster  string          `json:"old_master,omitempty"`
	NewMaster  string          `json:"new_master,omitempty"`
	OpenedBy   string          `json:"opened_by"`
	Opened     time.Time       `json:"opened"`
	Closed     time.Time       `json:"closed,omitzero"`
	Evidence   json.RawMessage `json:"evidence,omitempty"` // detector's evidence, opaque here
	Candidates []Candidate     `json:"candidates,omitempty"`
	Steps      []Step          `json:"steps,omitempty"`
	Result     Result          `json:"result"`
	Detail     string          `json:"detail,omitempty"`
	// Salvage reports what a failover recovered from the dead master's
	// binlog through its agent (nil when no salvage step ran).
	Salvage *Salvage `json:"salvage,omitempty"`
	// Fence is the failover's latest fence state (nil before the fence
	// step decided anything).
	Fence *FenceInfo `json:"fence,omitempty"`
}

// IsOpen reports whether the record has not been closed yet.
func (r Record) IsOpen() bool { return r.Result == ResultOpen }

// ClusterState is what the FSM knows about one cluster.
type ClusterState struct {
	Name              string    `json:"name"`
	Master            string    `json:"master,omitempty"` // as recorded by failovers/switchovers
	MasterSetAt       time.Time `json:"master_set_at,omitzero"`
	LastFailover      time.Time `json:"last_failover,omitzero"` // close time of last successful failover (anti-flap)
	LastFailoverID    uint64    `json:"last_failover_id,omitempty"`
	AckedAt           time.Time `json:"acked_at,omitzero"` // ack of the last failover
	AckedBy           string    `json:"acked_by,omitempty"`
	AckComment        string    `json:"ack_comment,omitempty"`
	MaintenanceUntil  time.Time `json:"maintenance_until,omitzero"`
	MaintenanceReason string    `json:"maintenance_reason,omitempty"`
	MaintenanceBy     string    `json:"maintenance_by,omitempty"`

	// MasterIndex is the raft index of the command that last set Master:
	// a change counter for readers that wait for the next master
	// (GET /v1/clusters/{c}/master?index=N&wait=D). 0 before any.
	MasterIndex uint64 `json:"master_index,omitempty"`

	// Topology is the cluster's definition (instances, accounts, password
	// references); nil when the state has none, and the controllers then
	// watch the cluster as their own config files define it.
	Topology *ClusterDef `json:"topology,omitempty"`
	// TopologyRemoved marks a definition removed by an operator: a config
	// file that still lists the cluster does not seed it again.
	TopologyRemoved bool `json:"topology_removed,omitempty"`
	// TopologyIndex is the raft index of the last change of Topology.
	TopologyIndex uint64 `json:"topology_index,omitempty"`
}

// NodeMeta is what the group knows about a controller beyond its raft
// address. Each leader writes its own entry right after winning an election,
// so followers can find the leader's HTTP address to forward writes.
type NodeMeta struct {
	ID       string `json:"id"`
	HTTPAddr string `json:"http_addr"`
	Zone     string `json:"zone,omitempty"`
}

// Payloads, one per MessageType. Every time in a payload is chosen by the
// proposer: Apply never reads the clock, so all replicas compute the same state.

// RecordOpen opens a record. The FSM returns the new record ID (uint64).
// It fails with ErrRecordOpen if the cluster already has an open record of
// any kind: an open failover or switchover blocks everything (exactly-once),
// and an open detection record blocks a second detection and a failover or
// switchover too (anti-flap at the log level), so close one before opening
// the next. An empty OldMaster defaults to the cluster's recorded master.
type RecordOpen struct {
	Cluster   string          `json:"cluster"`
	Kind      RecordKind      `json:"kind"`
	Trigger   string          `json:"trigger"`
	OldMaster string          `json:"old_master,omitempty"`
	OpenedBy  string          `json:"opened_by"`
	At        time.Time       `json:"at"`
	Evidence  json.RawMessage `json:"evidence,omitempty"`
}

// StepBegin appends a step in state running.
type StepBegin struct {
	RecordID uint64    `json:"record_id"`
	Name     string    `json:"name"`
	Leader   string    `json:"leader"`
	Term     uint64    `json:"term,omitempty"`
	At       time.Time `json:"at"`
}

// StepEnd ends the last running step with the given name.
type StepEnd struct {
	RecordID uint64    `json:"record_id"`
	Name     string    `json:"name"`
	At       time.Time `json:"at"`
	Outcome  Outcome   `json:"outcome"`
	Detail   string    `json:"detail,omitempty"`
	// NewMaster, set on the successful end of a switchover's promote (a
	// failover's or switchover's is accepted), names the promoted server
	// as the cluster's master at once
	// (as RecordClose does), so clients are sent to it while the rest of
	// the record (repointing, hooks, report) still runs, instead of one
	// journal round trip per later step after. A controller of an older
	// version ignores the field and names it at the close.
	NewMaster string `json:"new_master,omitempty"`
}

// Candidates replaces the candidate list of a record.
type Candidates struct {
	RecordID   uint64      `json:"record_id"`
	Candidates []Candidate `json:"candidates"`
}

// RecordClose closes a record. For a successful failover or switchover it
// also sets the cluster's master to NewMaster.
type RecordClose struct {
	RecordID  uint64    `json:"record_id"`
	At        time.Time `json:"at"`
	Result    Result    `json:"result"`
	NewMaster string    `json:"new_master,omitempty"`
	Detail    string    `json:"detail,omitempty"`
}

// SetMaster records a cluster's master (first discovery, or operator action).
type SetMaster struct {
	Cluster string    `json:"cluster"`
	Master  string    `json:"master"`
	At      time.Time `json:"at"`
}

// Ack acknowledges the cluster's last failover, lifting anti-flap for it.
type Ack struct {
	Cluster string    `json:"cluster"`
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Comment string    `json:"comment,omitempty"`
}

// Maintenance starts (Until in the future) or ends (zero Until) a window in
// which automatic failover is off for the cluster.
type Maintenance struct {
	Cluster string    `json:"cluster"`
	Until   time.Time `json:"until,omitzero"`
	Reason  string    `json:"reason,omitempty"`
	By      string    `json:"by,omitempty"`
}
