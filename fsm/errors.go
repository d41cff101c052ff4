package fsm

import "errors"

// Sentinel errors. Business-rule rejections are returned by Apply as the
// response value (never panicked), so callers of consensus.Apply can match
// them with errors.Is and map them to API status codes.
var (
	// ErrInvalid marks a command whose payload decoded but breaks a
	// validation rule (empty cluster name, unknown kind, zero time...). It is
	// always wrapped with the detail of what is wrong.
	ErrInvalid = errors.New("invalid command")

	// ErrRecordOpen is returned when opening a record for a cluster that
	// already has an open record: at most one recovery (or detection) runs
	// per cluster, enforced at the log level so two leaders cannot both start
	// one.
	ErrRecordOpen = errors.New("cluster already has an open record")

	// ErrNoSuchRecord is returned when a command names a record ID that the
	// FSM does not hold.
	ErrNoSuchRecord = errors.New("no such record")

	// ErrRecordClosed is returned when a command would change a closed
	// record. Closed records are history and never change again.
	ErrRecordClosed = errors.New("record is closed")

	// ErrStepNotRunning is returned by StepEnd when the record has no running
	// step with that name, so a late or duplicated end cannot rewrite an
	// outcome already journalled.
	ErrStepNotRunning = errors.New("step is not running")

	// ErrNotAwaitingFence is returned when an operator accepts an unproven
	// fence for a record (or cluster) that is not awaiting one: there is
	// nothing to accept, and nothing changes.
	ErrNotAwaitingFence = errors.New("no failover is awaiting a fence")

	// ErrFenceSettled is returned by a fence update of a record whose fence
	// is already proven, accepted or unproven: the record keeps the proof
	// it promoted on.
	ErrFenceSettled = errors.New("fence already settled")

	// ErrMalformedCommand is returned by Decode for a buffer that cannot hold
	// a command (no type byte).
	ErrMalformedCommand = errors.New("malformed command")

	// ErrSnapshotVersion is returned by Restore for a snapshot written in a
	// format this build does not read; restoring it partially would diverge.
	ErrSnapshotVersion = errors.New("unsupported snapshot format version")

	// ErrSnapshotCorrupt is returned by Restore for a stream that does not
	// follow the snapshot format (missing header, unknown entry kind,
	// duplicate record).
	ErrSnapshotCorrupt = errors.New("corrupt snapshot")
)

// Topology rejections (cluster and instance commands).
var (
	// ErrClusterExists is returned by a cluster add of a defined cluster.
	ErrClusterExists = errors.New("cluster is already defined")
	// ErrNoSuchCluster is returned by a command naming a cluster that has
	// no definition in the replicated state.
	ErrNoSuchCluster = errors.New("no such cluster in the replicated state")
	// ErrInstanceExists is returned by an instance add of a listed instance.
	ErrInstanceExists = errors.New("instance is already listed")
	// ErrNoSuchInstance is returned by a command naming an unlisted instance.
	ErrNoSuchInstance = errors.New("no such instance in the replicated state")
	// ErrRemoveMaster is returned when removing the cluster's recorded
	// master: fail or switch over first.
	ErrRemoveMaster = errors.New("instance is the cluster's current master; switch over first")
	// ErrTopologyLocked is returned by an instance change (or a cluster
	// removal) while a failover or switchover record of the cluster is open.
	ErrTopologyLocked = errors.New("a failover or switchover of the cluster is open; retry once it is closed")
)
