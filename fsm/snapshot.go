package fsm

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/hashicorp/raft"
)

// SnapshotVersion is the snapshot format this build writes and the only one
// it restores. Bump it on any incompatible change to the line format.
const SnapshotVersion = 1

// Line kinds of the snapshot format. A snapshot is JSON lines: one header,
// then every cluster, every record (ascending ID) and every node, each line
// tagged with its kind so operators can read it and grep it.
const (
	lineHeader  = "header"
	lineCluster = "cluster"
	lineRecord  = "record"
	lineNode    = "node"
	lineKey     = "key"
)

// snapshotLine is one line of a snapshot; exactly the fields of its kind are
// set.
type snapshotLine struct {
	Kind         string        `json:"kind"`
	Version      int           `json:"version,omitempty"`
	AppliedIndex uint64        `json:"applied_index,omitempty"`
	Cluster      *ClusterState `json:"cluster,omitempty"`
	Record       *Record       `json:"record,omitempty"`
	Node         *NodeMeta     `json:"node,omitempty"`
	Key          *NodeKey      `json:"key,omitempty"`
}

// snapshot is a point-in-time copy of the state. Closed records are shared
// with the live state (they never change again); open records, clusters and
// nodes are copies.
type snapshot struct {
	applied  uint64
	clusters []ClusterState
	records  []*Record
	nodes    []NodeMeta
	keys     []NodeKey
}

var _ raft.FSMSnapshot = (*snapshot)(nil)

// Snapshot captures the state for raft. It only copies pointers and small
// values under the read lock, so Apply is held up briefly; the encoding
// happens in Persist while Apply continues.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	records := make([]*Record, len(f.s.records))
	for i, r := range f.s.records {
		if r.IsOpen() {
			c := r.Clone()
			r = &c
		}
		records[i] = r
	}
	return &snapshot{
		applied:  f.s.applied,
		clusters: f.s.sortedClusters(),
		records:  records,
		nodes:    f.s.sortedNodes(),
		keys:     f.s.sortedKeys(),
	}, nil
}

// Persist writes the snapshot to sink and closes it, or cancels the sink on
// any error so raft discards the partial snapshot.
func (p *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := p.write(sink); err != nil {
		if cerr := sink.Cancel(); cerr != nil {
			return fmt.Errorf("fsm: persist snapshot: %w (cancel: %w)", err, cerr)
		}
		return fmt.Errorf("fsm: persist snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("fsm: close snapshot sink: %w", err)
	}
	return nil
}

func (p *snapshot) write(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(snapshotLine{Kind: lineHeader, Version: SnapshotVersion, AppliedIndex: p.applied}); err != nil {
		return fmt.Errorf("header: %w", err)
	}
	for i := range p.clusters {
		if err := enc.Encode(snapshotLine{Kind: lineCluster, Cluster: &p.clusters[i]}); err != nil {
			return fmt.Errorf("cluster %q: %w", p.clusters[i].Name, err)
		}
	}
	for _, r := range p.records {
		if err := enc.Encode(snapshotLine{Kind: lineRecord, Record: r}); err != nil {
			return fmt.Errorf("record %d: %w", r.ID, err)
		}
	}
	for i := range p.nodes {
		if err := enc.Encode(snapshotLine{Kind: lineNode, Node: &p.nodes[i]}); err != nil {
			return fmt.Errorf("node %q: %w", p.nodes[i].ID, err)
		}
	}
	for i := range p.keys {
		if err := enc.Encode(snapshotLine{Kind: lineKey, Key: &p.keys[i]}); err != nil {
			return fmt.Errorf("key %q: %w", p.keys[i].ID, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	return nil
}

// Release does nothing: the snapshot holds no resources beyond memory.
func (p *snapshot) Release() {}

// readSnapshot builds a brand-new state from a snapshot stream.
func readSnapshot(r io.Reader) (*state, error) {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 64<<10))
	var hdr snapshotLine
	if err := dec.Decode(&hdr); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("fsm: restore: empty stream: %w", ErrSnapshotCorrupt)
		}
		return nil, fmt.Errorf("fsm: restore: header: %w: %w", ErrSnapshotCorrupt, err)
	}
	if hdr.Kind != lineHeader {
		return nil, fmt.Errorf("fsm: restore: first line is %q, want %q: %w", hdr.Kind, lineHeader, ErrSnapshotCorrupt)
	}
	if hdr.Version != SnapshotVersion {
		return nil, fmt.Errorf("fsm: restore: version %d, this build reads %d: %w", hdr.Version, SnapshotVersion, ErrSnapshotVersion)
	}

	s := newState()
	s.applied = hdr.AppliedIndex
	for n := 2; ; n++ {
		var line snapshotLine // fresh each time: Decode reuses non-nil pointers
		if err := dec.Decode(&line); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("fsm: restore: line %d: %w: %w", n, ErrSnapshotCorrupt, err)
		}
		if err := s.load(line); err != nil {
			return nil, fmt.Errorf("fsm: restore: line %d: %w", n, err)
		}
	}
	if err := s.finishLoad(); err != nil {
		return nil, err
	}
	return s, nil
}

// load adds one snapshot line to a state being restored.
func (s *state) load(line snapshotLine) error {
	switch {
	case line.Kind == lineCluster && line.Cluster != nil:
		if _, dup := s.clusters[line.Cluster.Name]; dup {
			return fmt.Errorf("duplicate cluster %q: %w", line.Cluster.Name, ErrSnapshotCorrupt)
		}
		s.clusters[line.Cluster.Name] = line.Cluster
	case line.Kind == lineRecord && line.Record != nil:
		r := line.Record
		if _, dup := s.byID[r.ID]; dup {
			return fmt.Errorf("duplicate record %d: %w", r.ID, ErrSnapshotCorrupt)
		}
		s.records = append(s.records, r)
		s.byID[r.ID] = r
	case line.Kind == lineNode && line.Node != nil:
		if _, dup := s.nodes[line.Node.ID]; dup {
			return fmt.Errorf("duplicate node %q: %w", line.Node.ID, ErrSnapshotCorrupt)
		}
		s.nodes[line.Node.ID] = *line.Node
	case line.Kind == lineKey && line.Key != nil:
		if _, dup := s.keys[line.Key.ID]; dup {
			return fmt.Errorf("duplicate key of node %q: %w", line.Key.ID, ErrSnapshotCorrupt)
		}
		s.keys[line.Key.ID] = *line.Key
	default:
		return fmt.Errorf("unexpected line of kind %q: %w", line.Kind, ErrSnapshotCorrupt)
	}
	return nil
}

// finishLoad orders records by ID and rebuilds the open-record index and any
// cluster a record names, checking the one-open-record-per-cluster rule.
func (s *state) finishLoad() error {
	slices.SortFunc(s.records, func(a, b *Record) int { return cmp.Compare(a.ID, b.ID) })
	for _, r := range s.records {
		s.cluster(r.Cluster)
		if !r.IsOpen() {
			continue
		}
		if other, dup := s.open[r.Cluster]; dup {
			return fmt.Errorf("fsm: restore: cluster %q has open records %d and %d: %w",
				r.Cluster, other, r.ID, ErrSnapshotCorrupt)
		}
		s.open[r.Cluster] = r.ID
	}
	return nil
}
