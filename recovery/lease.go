package recovery

import "time"

// LeaseWitness tells the fence step whether the old master's quorum lease
// has provably lapsed (proof "lease_expired", safety rule 3): for a majority
// of the raft voters, the controller has stopped renewing that master's
// lease because the decision is committed, and the last renewal it may have
// granted, plus the TTL and the drift margin, lies before now; and the
// master's agent was seen enforcing an armed lease. Then the agent has
// fenced its server, or the host is gone. why explains the answer either
// way, for the journal.
type LeaseWitness interface {
	LeaseLapsed(cluster, master string, now time.Time) (lapsed bool, why string)
}

// Fence modes of ExecutorConfig.FenceMode (recovery.fence).
const (
	// FenceRequired promotes only after a proven fence of the old master;
	// without one the record waits in awaiting_fence.
	FenceRequired = "required"
	// FenceBestEffort promotes after trying to fence, proven or not, and
	// says so in the record.
	FenceBestEffort = "best_effort"
)
