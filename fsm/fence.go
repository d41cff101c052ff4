package fsm

import (
	"fmt"
	"slices"
	"time"
)

// FenceUpdateType records a failover's fence state: waiting for a proof,
// proven (and how), accepted unproven by an operator, or promoted unproven
// under recovery.fence: best_effort. It is not ignorable: an FSM that skipped
// it would hold a record that promoted without the proof it names, or a
// failover that looks free to go on while it waits (safety rule 3).
const FenceUpdateType MessageType = 11

// Fence states of a record.
const (
	// FenceAwaiting: no proof holds for some target; the fence step waits
	// and retries (recovery.fence: required).
	FenceAwaiting = "awaiting"
	// FenceProven: every target has a proof; promotion may go on.
	FenceProven = "proven"
	// FenceAccepted: an operator accepted promoting without a proof.
	FenceAccepted = "accepted"
	// FenceUnproven: recovery.fence is best_effort and no proof held; the
	// failover went on anyway.
	FenceUnproven = "unproven"
)

// Fence proofs (design.md, safety rule 3).
const (
	ProofSQL          = "sql"           // read_only on and every client session killed over SQL
	ProofAgent        = "agent"         // the host agent fenced the server, or says it is not running
	ProofLeaseExpired = "lease_expired" // the master's quorum lease provably lapsed
	ProofHook         = "hook"          // shutdown / ip_failover stop exited 0
	ProofOperator     = "operator"      // an operator accepted the risk
	ProofNone         = "none"          // no proof (awaiting, or best_effort)
)

// FenceTarget is one server a failover must fence before it promotes: the
// old master, and every new master an earlier record of the same incident
// began to promote.
type FenceTarget struct {
	Address string `json:"address"`
	// Proof is the first proof that held for it ("" while none has).
	Proof string `json:"proof,omitempty"`
	// Detail says what the proof saw, or why no proof holds.
	Detail string `json:"detail,omitempty"`
}

// FenceInfo is a record's latest fence state.
type FenceInfo struct {
	State string `json:"state"`
	// Proof is the record's proof: the old master's when proven, operator
	// when accepted, none otherwise.
	Proof   string        `json:"proof"`
	Targets []FenceTarget `json:"targets,omitempty"`
	// Reason is why no proof holds (awaiting, and kept once accepted or
	// unproven), in a stable wording the fence step compares so it commits
	// a new awaiting update only when the reason changes.
	Reason string `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
	// By is the operator who accepted (state accepted).
	By string `json:"by,omitempty"`
	// Since is when the record began awaiting a fence (zero if it never
	// did); At is the time of the latest update.
	Since time.Time `json:"since,omitzero"`
	At    time.Time `json:"at"`
}

// Clone returns a deep copy.
func (f *FenceInfo) Clone() *FenceInfo {
	if f == nil {
		return nil
	}
	c := *f
	c.Targets = slices.Clone(f.Targets)
	return &c
}

// Settled reports whether the fence no longer holds the failover back.
func (f *FenceInfo) Settled() bool {
	return f != nil && (f.State == FenceProven || f.State == FenceAccepted || f.State == FenceUnproven)
}

// AwaitingFence reports whether the record is an open failover waiting for
// a fence proof or an operator.
func (r Record) AwaitingFence() bool {
	return r.IsOpen() && r.Fence != nil && r.Fence.State == FenceAwaiting
}

// FenceUpdate sets a failover record's fence state.
//
// Transitions: from no state or awaiting to awaiting (a new reason),
// proven or unproven; from awaiting to accepted (an operator; By required).
// A settled state (proven, accepted, unproven) never changes again: a new
// leader resuming the fence step reads it instead of fencing anew.
type FenceUpdate struct {
	RecordID uint64        `json:"record_id"`
	At       time.Time     `json:"at"`
	State    string        `json:"state"`
	Proof    string        `json:"proof"`
	Targets  []FenceTarget `json:"targets,omitempty"`
	Reason   string        `json:"reason,omitempty"`
	Detail   string        `json:"detail,omitempty"`
	By       string        `json:"by,omitempty"`
}

func validTargetProof(p string) bool {
	return p == ProofSQL || p == ProofAgent || p == ProofLeaseExpired || p == ProofHook
}

// validateFenceUpdate checks a payload on its own, before the record.
func validateFenceUpdate(p FenceUpdate) error {
	if p.At.IsZero() {
		return invalid("fence update of record %d: zero time", p.RecordID)
	}
	seen := map[string]bool{}
	for i, t := range p.Targets {
		switch {
		case t.Address == "":
			return invalid("fence update of record %d: target %d has no address", p.RecordID, i)
		case seen[t.Address]:
			return invalid("fence update of record %d: target %s listed twice", p.RecordID, t.Address)
		case t.Proof != "" && !validTargetProof(t.Proof):
			return invalid("fence update of record %d: target %s: unknown proof %q", p.RecordID, t.Address, t.Proof)
		}
		seen[t.Address] = true
	}
	switch p.State {
	case FenceAwaiting, FenceUnproven:
		if p.Proof != ProofNone {
			return invalid("fence update of record %d: state %s with proof %q, want %q", p.RecordID, p.State, p.Proof, ProofNone)
		}
		if p.Reason == "" {
			return invalid("fence update of record %d: state %s without a reason", p.RecordID, p.State)
		}
	case FenceProven:
		if !validTargetProof(p.Proof) {
			return invalid("fence update of record %d: proven with proof %q", p.RecordID, p.Proof)
		}
		if len(p.Targets) == 0 {
			return invalid("fence update of record %d: proven without targets", p.RecordID)
		}
		for _, t := range p.Targets {
			if t.Proof == "" {
				return invalid("fence update of record %d: proven but target %s has no proof", p.RecordID, t.Address)
			}
		}
	case FenceAccepted:
		if p.Proof != ProofOperator {
			return invalid("fence update of record %d: accepted with proof %q, want %q", p.RecordID, p.Proof, ProofOperator)
		}
		if p.By == "" {
			return invalid("fence update of record %d: accepted without an operator (by)", p.RecordID)
		}
	default:
		return invalid("fence update of record %d: unknown state %q", p.RecordID, p.State)
	}
	return nil
}

// applyFenceUpdate sets the fence state of an open failover record.
func (f *FSM) applyFenceUpdate(payload []byte, index uint64) any {
	p := decodePayload[FenceUpdate](FenceUpdateType, payload, index)
	if err := validateFenceUpdate(p); err != nil {
		return err
	}
	r, err := f.s.recordForUpdate(p.RecordID)
	if err != nil {
		return fmt.Errorf("fence update: %w", err)
	}
	if r.Kind != KindFailover {
		return invalid("fence update on record %d of kind %s: only failovers fence", r.ID, r.Kind)
	}
	cur := r.Fence
	switch {
	case cur.Settled():
		return fmt.Errorf("fence update %s of record %d: fence already %s: %w", p.State, r.ID, cur.State, ErrFenceSettled)
	case p.State == FenceAccepted && (cur == nil || cur.State != FenceAwaiting):
		return fmt.Errorf("accept of record %d: %w", r.ID, ErrNotAwaitingFence)
	}
	next := &FenceInfo{State: p.State, Proof: p.Proof, Targets: slices.Clone(p.Targets), Reason: p.Reason,
		Detail: p.Detail, By: p.By, At: p.At}
	switch {
	case cur != nil:
		next.Since = cur.Since
		if p.State == FenceAccepted {
			// The operator accepts what the step was waiting on: keep
			// its targets and reason in the record.
			if len(next.Targets) == 0 {
				next.Targets = slices.Clone(cur.Targets)
			}
			if next.Reason == "" {
				next.Reason = cur.Reason
			}
		}
	case p.State == FenceAwaiting:
		next.Since = p.At
	}
	r.Fence = next
	return nil
}
