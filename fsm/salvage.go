package fsm

import (
	"fmt"
	"slices"
	"time"
)

// SalvageType records what a failover recovered from the dead master's own
// binlog through its agent. It is informational (the journalled salvage step
// is what resumption relies on), so controllers older than it may skip it.
const SalvageType MessageType = IgnoreUnknownTypeFlag | 10

// Salvage outcomes.
const (
	SalvageApplied     = "applied"      // transactions only the dead master had were applied
	SalvageNothing     = "nothing"      // the agent answered; nothing was missing
	SalvageNoAgent     = "no_agent"     // no agent configured for the dead master
	SalvageUnreachable = "unreachable"  // the agent did not answer in time
	SalvageFailed      = "failed"       // the agent answered but applying failed
	SalvageNotPossible = "not_possible" // e.g. file/position setup without coordinates
)

// SkippedTrx is a transaction found in the dead master's binlog that was not
// applied, with the reason.
type SkippedTrx struct {
	GTID   string `json:"gtid,omitempty"`
	File   string `json:"file"`
	Start  int64  `json:"start"`
	Bytes  int64  `json:"bytes"`
	Reason string `json:"reason"`
}

// Salvage is the report of one salvage, set on a record by SalvageType.
type Salvage struct {
	RecordID uint64 `json:"record_id"`
	// From is the dead master and Agent the agent asked.
	From  string `json:"from"`
	Agent string `json:"agent,omitempty"`
	// Target is the server the transactions were applied to.
	Target  string `json:"target"`
	Outcome string `json:"outcome"`
	// Applied counts the salvaged transactions; GTIDs lists them (file/
	// position setups list "file:start" instead).
	Applied int          `json:"applied"`
	GTIDs   []string     `json:"gtids,omitempty"`
	Skipped []SkippedTrx `json:"skipped,omitempty"`
	Bytes   int64        `json:"bytes,omitempty"`
	// Before is the target's position before the salvage and Recovered
	// after it; MasterLast is the last complete transaction in the dead
	// master's binlog as its agent reported it ("" when unknown).
	Before     string `json:"before,omitempty"`
	Recovered  string `json:"recovered,omitempty"`
	MasterLast string `json:"master_last,omitempty"`
	// MasterLastSeen is the furthest GTID position the controllers' probes
	// read on the dead master before it died, with who read it and when
	// (from the decision's evidence; "" when unknown).
	MasterLastSeen string `json:"master_last_seen,omitempty"`
	// LossWindow says what may be lost: empty when the dead master's binlog
	// was read to its last complete transaction and all of it was applied.
	LossWindow string        `json:"loss_window,omitempty"`
	Error      string        `json:"error,omitempty"`
	Took       time.Duration `json:"took"`
	At         time.Time     `json:"at"`
}

// Clone returns a deep copy.
func (s *Salvage) Clone() *Salvage {
	if s == nil {
		return nil
	}
	c := *s
	c.GTIDs = slices.Clone(s.GTIDs)
	c.Skipped = slices.Clone(s.Skipped)
	return &c
}

// applySalvage attaches a salvage report to an open failover record.
func (f *FSM) applySalvage(payload []byte, index uint64) any {
	p := decodePayload[Salvage](SalvageType, payload, index)
	switch {
	case p.From == "":
		return invalid("salvage: no dead master (from)")
	case p.Outcome == "":
		return invalid("salvage: no outcome")
	case p.At.IsZero():
		return invalid("salvage: no time")
	}
	r, err := f.s.recordForUpdate(p.RecordID)
	if err != nil {
		return fmt.Errorf("salvage: %w", err)
	}
	if r.Kind != KindFailover {
		return invalid("salvage on record %d of kind %s: only failovers salvage", p.RecordID, r.Kind)
	}
	r.Salvage = p.Clone()
	return nil
}
