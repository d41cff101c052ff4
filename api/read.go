package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/quorumha/quorumha/consensus"
	"github.com/quorumha/quorumha/detector"
	"github.com/quorumha/quorumha/fsm"
)

// Read endpoints answer from this controller's own copy of the state: they
// may lag the leader. Each answer carries the FSM index it reflects (read
// before the data, so the data is at least that fresh) and /v1/status says
// when this node last heard from the leader.

// History limits.
const (
	DefaultHistoryLimit = 100
	MaxHistoryLimit     = 10000
)

// LeaderResponse is the answer of GET /v1/leader.
type LeaderResponse struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"` // "" until the leader has recorded it
	Term     uint64 `json:"term"`
}

// PeerInfo is one member of the raft configuration with what the FSM knows
// about it.
type PeerInfo struct {
	consensus.Peer
	HTTPAddr string `json:"http_addr,omitempty"`
	Zone     string `json:"zone,omitempty"`
}

// PeersResponse is the answer of GET /v1/raft/peers.
type PeersResponse struct {
	LeaderID string     `json:"leader_id,omitempty"`
	Peers    []PeerInfo `json:"peers"`
}

// StatusResponse is the answer of GET /v1/status: this controller's view.
type StatusResponse struct {
	ID              string     `json:"id"`
	Zone            string     `json:"zone,omitempty"`
	HTTPAddr        string     `json:"http_addr,omitempty"`
	RaftAddr        string     `json:"raft_addr"`
	RaftState       string     `json:"raft_state"`
	Term            uint64     `json:"term"`
	CommitIndex     uint64     `json:"commit_index"`
	AppliedIndex    uint64     `json:"applied_index"`
	LastIndex       uint64     `json:"last_index"`
	LastContact     time.Time  `json:"last_contact,omitzero"`
	KnownLeader     bool       `json:"known_leader"`
	Leader          PeerInfo   `json:"leader,omitzero"`
	Peers           []PeerInfo `json:"peers"`
	LeaderChanges   uint64     `json:"leader_changes"`
	FSMAppliedIndex uint64     `json:"fsm_applied_index"`
	RecordCount     int        `json:"record_count"`
	// GossipMembers are the controllers this one hears over gossip, with
	// their zones; absent when gossip is off.
	GossipMembers []detector.Member `json:"gossip_members,omitempty"`
}

// HistoryResponse is the answer of GET /v1/history. Index is the FSM applied
// index read before the records: they reflect at least that index.
type HistoryResponse struct {
	Index   uint64       `json:"index"`
	Cluster string       `json:"cluster,omitempty"`
	Records []fsm.Record `json:"records"`
}

// RecordResponse is the answer of GET /v1/history/{id}.
type RecordResponse struct {
	Index  uint64     `json:"index"`
	Record fsm.Record `json:"record"`
}

// ClusterInfo is one cluster as the controllers see it: the FSM's replicated
// state plus, when the detector provides it, the live topology. Master is
// named under the same rule as GET /v1/clusters/{name}/master (master.go);
// when it may not be, MasterUnavailable says why.
type ClusterInfo struct {
	Name              string            `json:"name"`
	Master            string            `json:"master,omitempty"`
	MasterUnavailable string            `json:"master_unavailable,omitempty"`
	State             *fsm.ClusterState `json:"state,omitempty"`
	Topology          *ClusterTopology  `json:"topology,omitempty"`
	// AwaitingFence is set while the cluster's failover waits for a fence
	// proof of the old master (recovery.fence: required).
	AwaitingFence *AwaitingFence `json:"awaiting_fence,omitempty"`
}

// AwaitingFence is a failover held back until a fence proof or an
// operator's `failover --unfenced`.
type AwaitingFence struct {
	RecordID uint64            `json:"record_id"`
	Reason   string            `json:"reason"`
	Since    time.Time         `json:"since"`
	Targets  []fsm.FenceTarget `json:"targets,omitempty"`
}

// ClustersResponse is the answer of GET /v1/clusters.
type ClustersResponse struct {
	Index    uint64        `json:"index"`
	Clusters []ClusterInfo `json:"clusters"`
}

// ClusterResponse is the answer of GET /v1/clusters/{name}.
type ClusterResponse struct {
	Index   uint64      `json:"index"`
	Cluster ClusterInfo `json:"cluster"`
}

// MasterResponse is the answer of GET /v1/clusters/{name}/master.
type MasterResponse struct {
	Cluster string `json:"cluster"`
	Master  string `json:"master"`
	Source  string `json:"source"` // "fsm": the replicated state (the only source)
	// Index is the recorded master's change index (fsm MasterIndex): pass
	// it back as ?index=N&wait=30s to be answered at the next change.
	Index uint64 `json:"index"`
}

func (s *Server) healthz(http.ResponseWriter, *http.Request) (any, error) {
	return map[string]string{"status": "ok", "id": s.cfg.NodeID}, nil
}

func (s *Server) readyz(http.ResponseWriter, *http.Request) (any, error) {
	st := s.raft.Status()
	if st.LeaderID == "" {
		return nil, fmt.Errorf("not ready: %w", consensus.ErrNoLeader)
	}
	if !isMember(st, s.cfg.NodeID) {
		return nil, fmt.Errorf("not ready: %s is %w", s.cfg.NodeID, ErrNotMember)
	}
	return map[string]any{"status": "ready", "id": s.cfg.NodeID, "leader": st.LeaderID}, nil
}

func isMember(st consensus.Status, id string) bool {
	for _, p := range st.Peers {
		if p.ID == id {
			return true
		}
	}
	return false
}

func (s *Server) leader(http.ResponseWriter, *http.Request) (any, error) {
	id, addr := s.raft.Leader()
	if id == "" {
		return nil, consensus.ErrNoLeader
	}
	resp := LeaderResponse{ID: id, RaftAddr: addr, Term: s.raft.Term()}
	if meta, ok := s.state.Node(id); ok {
		resp.HTTPAddr = meta.HTTPAddr
	}
	return resp, nil
}

func (s *Server) peerInfo(p consensus.Peer) PeerInfo {
	info := PeerInfo{Peer: p}
	if meta, ok := s.state.Node(p.ID); ok {
		info.HTTPAddr, info.Zone = meta.HTTPAddr, meta.Zone
	}
	return info
}

func (s *Server) peerInfos(st consensus.Status) []PeerInfo {
	out := make([]PeerInfo, 0, len(st.Peers))
	for _, p := range st.Peers {
		out = append(out, s.peerInfo(p))
	}
	return out
}

func (s *Server) status(http.ResponseWriter, *http.Request) (any, error) {
	st := s.raft.Status()
	resp := StatusResponse{
		ID:              s.cfg.NodeID,
		Zone:            s.cfg.Zone,
		HTTPAddr:        s.cfg.HTTPAddr,
		RaftAddr:        st.RaftAddr,
		RaftState:       st.State,
		Term:            st.Term,
		CommitIndex:     st.CommitIndex,
		AppliedIndex:    st.AppliedIndex,
		LastIndex:       st.LastIndex,
		LastContact:     st.LastContact,
		KnownLeader:     st.LeaderID != "",
		Peers:           s.peerInfos(st),
		LeaderChanges:   st.LeaderChanges,
		FSMAppliedIndex: s.state.AppliedIndex(),
		RecordCount:     s.state.RecordCount(),
	}
	if s.members != nil {
		resp.GossipMembers = s.members.Members()
	}
	if st.LeaderID != "" {
		resp.Leader = s.peerInfo(consensus.Peer{ID: st.LeaderID, RaftAddr: st.LeaderAddr, Leader: true})
		for _, p := range resp.Peers {
			if p.ID == st.LeaderID {
				resp.Leader = p
			}
		}
	}
	return resp, nil
}

func (s *Server) peers(http.ResponseWriter, *http.Request) (any, error) {
	st := s.raft.Status()
	return PeersResponse{LeaderID: st.LeaderID, Peers: s.peerInfos(st)}, nil
}

func (s *Server) history(_ http.ResponseWriter, r *http.Request) (any, error) {
	q := r.URL.Query()
	limit := DefaultHistoryLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%w: limit must be a positive integer, got %q", ErrBadRequest, v)
		}
		limit = min(n, MaxHistoryLimit)
	}
	cluster := q.Get("cluster")
	index := s.state.AppliedIndex()
	records := s.state.History(cluster, limit)
	if records == nil {
		records = []fsm.Record{}
	}
	return HistoryResponse{Index: index, Cluster: cluster, Records: records}, nil
}

func (s *Server) record(_ http.ResponseWriter, r *http.Request) (any, error) {
	raw := r.PathValue("id")
	id, err := strconv.ParseUint(raw, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: record id must be a number, got %q", ErrBadRequest, raw)
	}
	index := s.state.AppliedIndex()
	rec, ok := s.state.Record(id)
	if !ok {
		return nil, fmt.Errorf("record %d: %w", id, fsm.ErrNoSuchRecord)
	}
	return RecordResponse{Index: index, Record: rec}, nil
}

// knownCluster reports whether the FSM or the detector knows the cluster.
func (s *Server) knownCluster(name string) bool {
	if _, ok := s.state.Cluster(name); ok {
		return true
	}
	return s.view != nil && s.view.KnownCluster(name)
}

// clusterInfo merges the FSM's state and the detector's view of one cluster.
func (s *Server) clusterInfo(name string) (ClusterInfo, bool) {
	info := ClusterInfo{Name: name}
	known := false
	if cs, ok := s.state.Cluster(name); ok {
		info.State, known = &cs, true
	}
	for _, r := range s.state.History(name, 1) {
		if r.AwaitingFence() {
			info.AwaitingFence = &AwaitingFence{RecordID: r.ID, Reason: r.Fence.Reason, Since: r.Fence.Since, Targets: r.Fence.Targets}
		}
	}
	if s.view != nil && s.view.KnownCluster(name) {
		known = true
		if topo, ok := s.view.ClusterInfo(name); ok {
			info.Topology = &topo
		}
	}
	if known {
		m, err := s.authoritativeMaster(name)
		if err != nil {
			info.MasterUnavailable = err.Error()
		}
		info.Master = m
	}
	return info, known
}

func (s *Server) clusters(http.ResponseWriter, *http.Request) (any, error) {
	index := s.state.AppliedIndex()
	var names []string
	seen := map[string]bool{}
	if s.view != nil {
		for _, n := range s.view.ClusterNames() {
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	for _, cs := range s.state.Clusters() {
		if !seen[cs.Name] {
			seen[cs.Name] = true
			names = append(names, cs.Name)
		}
	}
	out := make([]ClusterInfo, 0, len(names))
	for _, n := range names {
		if info, ok := s.clusterInfo(n); ok {
			out = append(out, info)
		}
	}
	return ClustersResponse{Index: index, Clusters: out}, nil
}

func (s *Server) cluster(_ http.ResponseWriter, r *http.Request) (any, error) {
	name := r.PathValue("name")
	index := s.state.AppliedIndex()
	info, ok := s.clusterInfo(name)
	if !ok {
		return nil, fmt.Errorf("cluster %q: %w", name, ErrNotFound)
	}
	return ClusterResponse{Index: index, Cluster: info}, nil
}

// master answers GET /v1/clusters/{name}/master[?index=N&wait=D]: with an
// index, it first waits (up to D, at most MaxMasterWait) for the recorded
// master's change index to differ from N, then answers the current state.
func (s *Server) master(w http.ResponseWriter, r *http.Request) (any, error) {
	name := r.PathValue("name")
	if !s.knownCluster(name) {
		return nil, fmt.Errorf("cluster %q: %w", name, ErrNotFound)
	}
	wait, index, hasIndex, err := masterWaitParams(r)
	if err != nil {
		return nil, err
	}
	if hasIndex {
		s.waitMasterChange(r.Context(), name, index, wait)
	}
	idx := s.masterIndex(name)
	w.Header().Set(MasterIndexHeader, strconv.FormatUint(idx, 10))
	m, err := s.authoritativeMaster(name)
	if err != nil {
		return nil, err
	}
	return MasterResponse{Cluster: name, Master: m, Source: "fsm", Index: idx}, nil
}
