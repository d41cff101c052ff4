// Package recovery holds failover and switchover as explicit, journalled
// steps: candidate selection as a pure function, MHA-compatible hooks, the
// anti-flapping rule and the step plans a new leader resumes from. It never
// probes instances on its own; callers hand it what the detector and topology
// observed, so every decision here can be table-tested and replayed.
package recovery

import (
	"errors"

	"github.com/quorumha/quorumha/fsm"
)

// Sentinel errors. Callers match them with errors.Is; each is wrapped with
// the detail that explains it (the replicas and their reasons, the step).
var (
	// ErrNoCandidate means no replica may be promoted. It is wrapped with
	// every replica's reason, so the failover record and the operator see
	// why each one was refused rather than a bare "no candidate".
	ErrNoCandidate = errors.New("no eligible replica to promote")

	// ErrTargetUnknown means the operator's --to names no replica of the
	// cluster; promoting an address we do not replicate to would lose data.
	ErrTargetUnknown = errors.New("requested target is not a replica of the cluster")

	// ErrTargetIneligible means the operator's --to names a replica that the
	// rules refuse; it is wrapped with the reason. A manual target never
	// falls back to another replica: the operator asked for that one.
	ErrTargetIneligible = errors.New("requested target is not eligible")

	// ErrDivergedPositions means the replicas' positions have no single
	// most advanced one: two groups each hold transactions the other lacks,
	// and as many replicas follow each. Promoting either would silently drop
	// the other's transactions, so an operator must decide (with --to).
	ErrDivergedPositions = errors.New("replica positions diverged: no single most advanced replica")

	// ErrDuplicateCandidate means the same address was passed twice, which
	// would make the choice depend on input order.
	ErrDuplicateCandidate = errors.New("duplicate candidate address")

	// ErrUnsafeResume means a new leader found a step that must not be run
	// blindly twice (a promotion) begun but never ended. Re-running it with
	// another target could create a second master, so the Executor re-runs
	// it only with the journalled target, and closes the record as aborted
	// when that target cannot be reached.
	ErrUnsafeResume = errors.New("step began but never ended and is not safe to re-run")

	// ErrStepFailed means the journal shows a step that ended failed; the
	// record should have been closed, and resuming past a failure would act
	// on a state the plan did not reach.
	ErrStepFailed = errors.New("journal holds a failed step")

	// ErrUnknownStep means the journal names a step the plan does not have
	// (a record written by another version, or of another kind), so the
	// position in the plan cannot be known.
	ErrUnknownStep = errors.New("journal names a step not in the plan")

	// ErrHookCommand means a hook argument builder was asked for a --command
	// that hook does not take in MHA's contract; existing scripts would not
	// know what to do with it.
	ErrHookCommand = errors.New("command not valid for this hook")

	// ErrHookTimeout means a hook ran past its timeout and its process group
	// was killed. A hung fencing script must not hold a failover forever.
	ErrHookTimeout = errors.New("hook timed out")

	// ErrNoPlan means a record kind has no step plan (detection records
	// only observe; nothing resumes them).
	ErrNoPlan = errors.New("no step plan for this record kind")

	// ErrRecordClosed means NextStep was asked about a closed record; closed
	// records are history and nothing resumes them. It is the FSM's: the
	// same condition, one sentinel for errors.Is and the API's status.
	ErrRecordClosed = fsm.ErrRecordClosed

	// ErrLeadershipLost means the executor stopped because this controller no
	// longer leads; the record stays open for the next leader to resume.
	ErrLeadershipLost = errors.New("leadership lost: failover left open for the next leader")

	// ErrSalvageTooLarge means an agent sent more than the salvage cap.
	ErrSalvageTooLarge = errors.New("salvage larger than the cap")
)

// Sentinel errors of manual failover.
var (
	// ErrMasterAlive means the master answered the leader's probe: a manual
	// failover is for a dead master; a live one is handed over with a
	// switchover, which loses nothing.
	ErrMasterAlive = errors.New("the master is alive: use switchover")

	// ErrFailoverInProgress means the cluster already has an open record:
	// at most one recovery runs per cluster (exactly-once).
	ErrFailoverInProgress = errors.New("a failover is already in progress for this cluster")

	// ErrUnknownCluster means the request names a cluster this controller
	// has no configuration for.
	ErrUnknownCluster = errors.New("unknown cluster")

	// ErrRunnerStopped means the leadership term this runner belonged to
	// has ended (or not yet started): there is nothing to run a failover in,
	// and nothing was changed.
	ErrRunnerStopped = errors.New("recovery runner is not running")
)

// Sentinel errors of switchover.
var (
	// ErrSwitchoverRefused means a precondition of a planned switchover does
	// not hold (master not answering, target not replicating or lagging,
	// errant transactions on the target); it is wrapped with the reason and
	// nothing was changed.
	ErrSwitchoverRefused = errors.New("switchover refused")
)
