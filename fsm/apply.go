package fsm

import (
	"encoding/json"
	"fmt"
	"time"
)

// The applyX functions run under f.mu (write). Each validates first and
// changes state only once nothing can be rejected any more, so a rejected
// command leaves the state exactly as it was.

// decodePayload unmarshals a command payload. One that does not decode
// aborts the command with a payloadError panic, which Apply recovers into an
// ErrMalformedCommand response: every replica decodes the same bytes the
// same way, so every replica rejects it alike and none diverges, and a
// garbage entry (a bug, or a forged write) cannot crash the group. Each
// applyX decodes before it changes anything, so a rejected entry leaves the
// state as it was.
func decodePayload[T any](t MessageType, payload []byte, index uint64) T {
	var v T
	if err := json.Unmarshal(payload, &v); err != nil {
		panic(payloadError{fmt.Errorf("fsm: log index %d: decode %s payload: %w: %w", index, t, ErrMalformedCommand, err)})
	}
	return v
}

// payloadError carries a decode failure from decodePayload to Apply.
type payloadError struct{ err error }

// invalid wraps ErrInvalid with the detail of what is wrong.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// recordForUpdate returns the open record id, or the rejection.
func (s *state) recordForUpdate(id uint64) (*Record, error) {
	r, ok := s.byID[id]
	if !ok {
		return nil, fmt.Errorf("record %d: %w", id, ErrNoSuchRecord)
	}
	if !r.IsOpen() {
		return nil, fmt.Errorf("record %d (result %s): %w", id, r.Result, ErrRecordClosed)
	}
	return r, nil
}

func validKind(k RecordKind) bool {
	return k == KindFailover || k == KindSwitchover || k == KindDetection || k == KindRejoin
}

func validCloseResult(r Result) bool {
	switch r {
	case ResultSuccess, ResultFailed, ResultAborted, ResultRolledBack, ResultRefused, ResultDetected:
		return true
	}
	return false
}

func validEndOutcome(o Outcome) bool {
	switch o {
	case OutcomeOK, OutcomeFailed, OutcomeSkipped, OutcomeWarning:
		return true
	}
	return false
}

// applyRecordOpen opens a record whose ID is the log index, and returns that
// ID. A cluster has at most one open record of any kind: an open detection
// record blocks a second detection and a failover or switchover too, and an
// open failover/switchover blocks everything else. This is anti-flap and
// exclusion at the log level; the recovery layer closes a record before it
// opens the next one.
func (f *FSM) applyRecordOpen(payload []byte, index uint64) any {
	p := decodePayload[RecordOpen](RecordOpenType, payload, index)
	switch {
	case p.Cluster == "":
		return invalid("record open: empty cluster name")
	case !validKind(p.Kind):
		return invalid("record open: unknown kind %q", p.Kind)
	case p.At.IsZero():
		return invalid("record open: zero time")
	}
	if id, ok := f.s.open[p.Cluster]; ok {
		return fmt.Errorf("cluster %q has open %s record %d: %w",
			p.Cluster, f.s.byID[id].Kind, id, ErrRecordOpen)
	}
	c := f.s.cluster(p.Cluster)
	old := p.OldMaster
	if old == "" {
		old = c.Master
	}
	f.s.addRecord(&Record{
		ID:        index,
		Cluster:   p.Cluster,
		Kind:      p.Kind,
		Trigger:   p.Trigger,
		OldMaster: old,
		OpenedBy:  p.OpenedBy,
		Opened:    p.At,
		Evidence:  p.Evidence,
		Result:    ResultOpen,
	})
	return index
}

// applyStepBegin appends a running step. A step with the same name may be
// begun again (a new leader resuming the record); StepEnd ends the latest.
func (f *FSM) applyStepBegin(payload []byte, index uint64) any {
	p := decodePayload[StepBegin](StepBeginType, payload, index)
	switch {
	case p.Name == "":
		return invalid("step begin: empty step name")
	case p.At.IsZero():
		return invalid("step begin: zero time")
	}
	r, err := f.s.recordForUpdate(p.RecordID)
	if err != nil {
		return fmt.Errorf("step begin %q: %w", p.Name, err)
	}
	r.Steps = append(r.Steps, Step{
		Seq:     len(r.Steps) + 1,
		Name:    p.Name,
		Leader:  p.Leader,
		Term:    p.Term,
		Start:   p.At,
		Outcome: OutcomeRunning,
	})
	return nil
}

// applyStepEnd ends the latest running step with the given name.
func (f *FSM) applyStepEnd(payload []byte, index uint64) any {
	p := decodePayload[StepEnd](StepEndType, payload, index)
	switch {
	case p.Name == "":
		return invalid("step end: empty step name")
	case p.At.IsZero():
		return invalid("step end: zero time")
	case !validEndOutcome(p.Outcome):
		return invalid("step end %q: outcome %q is not a final outcome", p.Name, p.Outcome)
	}
	r, err := f.s.recordForUpdate(p.RecordID)
	if err != nil {
		return fmt.Errorf("step end %q: %w", p.Name, err)
	}
	if p.NewMaster != "" {
		switch {
		case r.Kind != KindFailover && r.Kind != KindSwitchover:
			return invalid("step end %q: a new master on a %s record", p.Name, r.Kind)
		case p.Outcome != OutcomeOK && p.Outcome != OutcomeWarning:
			return invalid("step end %q: a new master with outcome %q", p.Name, p.Outcome)
		}
	}
	for i := len(r.Steps) - 1; i >= 0; i-- {
		st := &r.Steps[i]
		if st.Name == p.Name && st.Outcome == OutcomeRunning {
			st.End = p.At
			st.Outcome = p.Outcome
			st.Detail = p.Detail
			if p.NewMaster != "" {
				r.NewMaster = p.NewMaster
				c := f.s.cluster(r.Cluster)
				c.Master = p.NewMaster
				c.MasterSetAt = p.At
				f.topologyChanged() // detectors follow the new master now
			}
			return nil
		}
	}
	return fmt.Errorf("step end %q on record %d: %w", p.Name, p.RecordID, ErrStepNotRunning)
}

// applyCandidates replaces the record's candidate list.
func (f *FSM) applyCandidates(payload []byte, index uint64) any {
	p := decodePayload[Candidates](CandidatesType, payload, index)
	chosen := 0
	for i, c := range p.Candidates {
		if c.Address == "" {
			return invalid("candidates: candidate %d has no address", i)
		}
		if c.Chosen {
			chosen++
		}
	}
	if chosen > 1 {
		return invalid("candidates: %d candidates chosen, at most one may be", chosen)
	}
	r, err := f.s.recordForUpdate(p.RecordID)
	if err != nil {
		return fmt.Errorf("candidates: %w", err)
	}
	r.Candidates = append([]Candidate(nil), p.Candidates...)
	return nil
}

// applyRecordClose closes a record. A successful failover or switchover sets
// the cluster's master; a successful failover also starts anti-flap
// (LastFailover) and clears any earlier acknowledgement.
func (f *FSM) applyRecordClose(payload []byte, index uint64) any {
	p := decodePayload[RecordClose](RecordCloseType, payload, index)
	switch {
	case !validCloseResult(p.Result):
		return invalid("record close: result %q is not a final result", p.Result)
	case p.At.IsZero():
		return invalid("record close: zero time")
	}
	r, err := f.s.recordForUpdate(p.RecordID)
	if err != nil {
		return fmt.Errorf("record close: %w", err)
	}
	changesMaster := p.Result == ResultSuccess && (r.Kind == KindFailover || r.Kind == KindSwitchover)
	switch {
	case changesMaster && p.NewMaster == "":
		return invalid("record close: successful %s of record %d without a new master", r.Kind, r.ID)
	case p.Result == ResultDetected && r.Kind != KindDetection:
		return invalid("record close: result %q on a %s record", p.Result, r.Kind)
	}

	r.Closed = p.At
	r.Result = p.Result
	r.Detail = p.Detail
	if p.NewMaster != "" {
		r.NewMaster = p.NewMaster
	}
	delete(f.s.open, r.Cluster)
	if !changesMaster {
		return nil
	}
	c := f.s.cluster(r.Cluster)
	c.Master = p.NewMaster
	c.MasterSetAt = p.At
	c.MasterIndex = index
	f.masterChanged()
	if r.Kind == KindFailover {
		c.LastFailover = p.At
		c.LastFailoverID = r.ID
		c.AckedAt = time.Time{}
		c.AckedBy = ""
		c.AckComment = ""
	}
	return nil
}

// applySetMaster records a cluster's master outside a record (first
// discovery, operator action).
func (f *FSM) applySetMaster(payload []byte, index uint64) any {
	p := decodePayload[SetMaster](SetMasterType, payload, index)
	switch {
	case p.Cluster == "":
		return invalid("set master: empty cluster name")
	case p.Master == "":
		return invalid("set master: empty master for cluster %q", p.Cluster)
	case p.At.IsZero():
		return invalid("set master: zero time")
	}
	c := f.s.cluster(p.Cluster)
	c.Master = p.Master
	c.MasterSetAt = p.At
	c.MasterIndex = index
	f.masterChanged()
	return nil
}

// applyAck acknowledges the cluster's last failover. AntiFlapActive compares
// AckedAt with LastFailover, so an ack given before a failover never lifts it.
func (f *FSM) applyAck(payload []byte, index uint64) any {
	p := decodePayload[Ack](AckType, payload, index)
	switch {
	case p.Cluster == "":
		return invalid("ack: empty cluster name")
	case p.By == "":
		return invalid("ack: empty acknowledger for cluster %q", p.Cluster)
	case p.At.IsZero():
		return invalid("ack: zero time")
	}
	c := f.s.cluster(p.Cluster)
	c.AckedAt = p.At
	c.AckedBy = p.By
	c.AckComment = p.Comment
	return nil
}

// applyMaintenance sets the cluster's maintenance window, or clears it when
// Until is zero.
func (f *FSM) applyMaintenance(payload []byte, index uint64) any {
	p := decodePayload[Maintenance](MaintenanceType, payload, index)
	if p.Cluster == "" {
		return invalid("maintenance: empty cluster name")
	}
	c := f.s.cluster(p.Cluster)
	if p.Until.IsZero() {
		c.MaintenanceUntil = time.Time{}
		c.MaintenanceReason = ""
		c.MaintenanceBy = ""
		return nil
	}
	c.MaintenanceUntil = p.Until
	c.MaintenanceReason = p.Reason
	c.MaintenanceBy = p.By
	return nil
}

// applyNodeMeta records or replaces a controller's metadata.
func (f *FSM) applyNodeMeta(payload []byte, index uint64) any {
	p := decodePayload[NodeMeta](NodeMetaType, payload, index)
	switch {
	case p.ID == "":
		return invalid("node meta: empty node id")
	case p.HTTPAddr == "":
		return invalid("node meta: empty http address for node %q", p.ID)
	}
	f.s.nodes[p.ID] = p
	return nil
}
