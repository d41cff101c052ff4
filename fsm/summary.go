package fsm

import "time"

// RecordSummary is the part of a record that metrics need: no evidence,
// candidates or steps, so summarising every record stays cheap.
type RecordSummary struct {
	ID      uint64
	Cluster string
	Kind    RecordKind
	Result  Result // ResultOpen while open
	Opened  time.Time
	Closed  time.Time // zero while open
	// AwaitingFence is set while the record waits for a fence proof.
	AwaitingFence bool
}

// RecordSummaries returns a summary of every record, by ascending ID. Every
// controller holds the same records, so anything computed from them (the
// recovery counters on /metrics) is the same on every controller.
func (f *FSM) RecordSummaries() []RecordSummary {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]RecordSummary, 0, len(f.s.records))
	for _, r := range f.s.records {
		out = append(out, RecordSummary{ID: r.ID, Cluster: r.Cluster, Kind: r.Kind, Result: r.Result, Opened: r.Opened, Closed: r.Closed,
			AwaitingFence: r.AwaitingFence()})
	}
	return out
}
