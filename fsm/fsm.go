// Package fsm is quorumha's replicated state machine: clusters and their
// current masters, failover/switchover/detection records with every step,
// maintenance windows, acknowledgements and controller metadata. Every
// controller applies the same raft log to it and so holds the same state.
//
// Apply is deterministic: it never reads the clock or random sources, and
// nothing it returns or stores depends on map iteration order; every time
// comes from the command payload, chosen by the proposer.
package fsm

import (
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/hashicorp/raft"
)

// FSM implements raft.FSM. Apply is called by raft from one goroutine; the
// read queries may be called from any goroutine at any time, and return deep
// copies so callers never share memory with the state.
type FSM struct {
	logger *slog.Logger

	mu sync.RWMutex
	s  *state
	// masterCh is closed (and replaced) whenever a cluster's recorded
	// master changes: a broadcast to readers blocked in a long poll. It
	// carries no state, so Apply stays deterministic.
	masterCh chan struct{}
	// topoCh is the same broadcast for cluster definitions and masters:
	// the detector follows the topology through it instead of polling.
	topoCh chan struct{}
}

var _ raft.FSM = (*FSM)(nil)

// New returns an empty FSM. A nil logger discards logs.
func New(logger *slog.Logger) *FSM {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &FSM{logger: logger.With("component", "fsm"), s: newState(), masterCh: make(chan struct{}), topoCh: make(chan struct{})}
}

// Apply applies one committed log entry. It only dispatches on the type byte.
// It returns the new record ID (uint64) for RecordOpen, an error for a
// business-rule rejection or an entry that does not decode (ErrMalformedCommand;
// the state is then unchanged), and nil otherwise. It panics only on an
// unknown type without IgnoreUnknownTypeFlag: that is a controller older than
// the leader that wrote the entry, and it must stop (and be upgraded) rather
// than diverge.
func (f *FSM) Apply(l *raft.Log) (resp any) {
	t, payload, err := Decode(l.Data)
	if err != nil {
		f.logger.Warn("rejected malformed log entry", "index", l.Index, "err", err)
		return fmt.Errorf("fsm: log index %d: %w", l.Index, err)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	f.s.applied = l.Index
	defer func() {
		if r := recover(); r != nil {
			pe, ok := r.(payloadError)
			if !ok {
				panic(r)
			}
			f.logger.Warn("rejected malformed log entry", "type", t.String(), "index", l.Index, "err", pe.err)
			resp = pe.err
		}
	}()

	switch t {
	case RecordOpenType:
		resp = f.applyRecordOpen(payload, l.Index)
	case StepBeginType:
		resp = f.applyStepBegin(payload, l.Index)
	case StepEndType:
		resp = f.applyStepEnd(payload, l.Index)
	case CandidatesType:
		resp = f.applyCandidates(payload, l.Index)
	case RecordCloseType:
		resp = f.applyRecordClose(payload, l.Index)
	case SetMasterType:
		resp = f.applySetMaster(payload, l.Index)
	case AckType:
		resp = f.applyAck(payload, l.Index)
	case MaintenanceType:
		resp = f.applyMaintenance(payload, l.Index)
	case NodeMetaType:
		resp = f.applyNodeMeta(payload, l.Index)
	case SalvageType:
		resp = f.applySalvage(payload, l.Index)
	case FenceUpdateType:
		resp = f.applyFenceUpdate(payload, l.Index)
	case NodeKeyType:
		resp = f.applyNodeKey(payload, l.Index)
	case ClusterDefineType:
		resp = f.applyClusterDefine(payload, l.Index)
	case ClusterRemoveType:
		resp = f.applyClusterRemove(payload, l.Index)
	case InstanceSetType:
		resp = f.applyInstanceSet(payload, l.Index)
	case InstanceRemoveType:
		resp = f.applyInstanceRemove(payload, l.Index)
	default:
		if t&IgnoreUnknownTypeFlag != 0 {
			f.logger.Warn("ignoring unknown command type", "type", uint8(t), "index", l.Index)
			return nil
		}
		panic(fmt.Sprintf("fsm: log index %d: unknown command type %d without IgnoreUnknownTypeFlag; "+
			"this controller is older than the leader that wrote it, upgrade it", l.Index, uint8(t)))
	}
	if err, ok := resp.(error); ok {
		f.logger.Debug("command rejected", "type", t.String(), "index", l.Index, "err", err)
	}
	return resp
}

// Restore replaces all state with the snapshot read from rc. Prior state is
// discarded only once the whole stream has been read successfully; on error
// the FSM keeps its state. raft closes rc.
func (f *FSM) Restore(rc io.ReadCloser) error {
	s, err := readSnapshot(rc)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.s = s
	f.masterChanged() // any master may differ now
	f.topologyChanged()
	f.mu.Unlock()
	return nil
}

// MasterChanged returns a channel that is closed at the next change of any
// cluster's recorded master (ClusterState.MasterIndex). Callers read the
// state after taking the channel, then wait on it: a change in between
// closes the channel they hold, so none is missed.
func (f *FSM) MasterChanged() <-chan struct{} {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.masterCh
}

// masterChanged wakes every MasterChanged waiter; f.mu must be held for
// writing.
func (f *FSM) masterChanged() {
	close(f.masterCh)
	f.masterCh = make(chan struct{})
	f.topologyChanged()
}

// Record returns a copy of the record with that ID.
func (f *FSM) Record(id uint64) (Record, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	r, ok := f.s.byID[id]
	if !ok {
		return Record{}, false
	}
	return r.Clone(), true
}

// History returns copies of the records of cluster ("" for all clusters),
// newest first, at most limit of them (limit <= 0 means all). Newest first is
// what operators read; limit keeps API answers small as history grows.
func (f *FSM) History(cluster string, limit int) []Record {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := []Record{}
	for i := len(f.s.records) - 1; i >= 0; i-- {
		if limit > 0 && len(out) >= limit {
			break
		}
		r := f.s.records[i]
		if cluster != "" && r.Cluster != cluster {
			continue
		}
		out = append(out, r.Clone())
	}
	return out
}

// OpenRecord returns the cluster's open failover or switchover record, the
// one a new leader must resume or close (safety rule 4). An open detection
// record is not returned here; see OpenRecords.
func (f *FSM) OpenRecord(cluster string) (Record, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	id, ok := f.s.open[cluster]
	if !ok {
		return Record{}, false
	}
	r := f.s.byID[id]
	if r.Kind != KindFailover && r.Kind != KindSwitchover {
		return Record{}, false
	}
	return r.Clone(), true
}

// OpenRecords returns copies of all open records of every kind, by ascending
// ID, so a new leader can find everything its predecessor left open.
func (f *FSM) OpenRecords() []Record {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := []Record{}
	for _, r := range f.s.records {
		if r.IsOpen() {
			out = append(out, r.Clone())
		}
	}
	return out
}

// Cluster returns a copy of the named cluster's state.
func (f *FSM) Cluster(name string) (ClusterState, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	c, ok := f.s.clusters[name]
	if !ok {
		return ClusterState{}, false
	}
	return c.clone(), true
}

// Clusters returns copies of all clusters, sorted by name.
func (f *FSM) Clusters() []ClusterState {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.s.sortedClusters()
}

// Node returns what the group knows about controller id.
func (f *FSM) Node(id string) (NodeMeta, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	n, ok := f.s.nodes[id]
	return n, ok
}

// Nodes returns all known controllers, sorted by ID.
func (f *FSM) Nodes() []NodeMeta {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.s.sortedNodes()
}

// AppliedIndex returns the index of the last log applied (or restored from a
// snapshot), so readers can tell how fresh this replica is.
func (f *FSM) AppliedIndex() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.s.applied
}

// RecordCount returns how many records the FSM holds.
func (f *FSM) RecordCount() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.s.records)
}
