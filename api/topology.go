package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/quorumha/quorumha/fsm"
)

// Topology endpoints: the clusters and instances every controller watches
// live in the replicated state. Writes go to the leader like every write;
// a bad request is refused before anything reaches the log, and the FSM
// checks the same rules again (removing the current master, changing
// instances while a failover or switchover is open).

// ClusterRequest is the body of POST /v1/clusters/{name}/definition:
// op "add" (with instances) or "set" (only the fields given change).
// Passwords are never sent: password_file / password_env name where each
// controller reads them (none: each controller's own config file's).
type ClusterRequest struct {
	Op string `json:"op"`
	By string `json:"by,omitempty"`
	fsm.ClusterPatch
	Instances []fsm.InstanceDef `json:"instances,omitempty"`
}

// InstanceRequest is the body of POST /v1/clusters/{name}/instances:
// op "add" or "set" of one instance; only the fields given change.
type InstanceRequest struct {
	Op      string `json:"op"`
	Address string `json:"address"`
	By      string `json:"by,omitempty"`
	fsm.InstancePatch
}

// TopologyResponse is the answer of GET /v1/topology and of the topology
// writes: the replicated definitions, and the clusters an operator removed.
type TopologyResponse struct {
	Index    uint64           `json:"index"`
	Clusters []fsm.ClusterDef `json:"clusters"`
	Removed  []string         `json:"removed,omitempty"`
	// Node is the controller that answered, and LocalDiff how its config
	// file differs from the replicated state (which wins).
	Node      string   `json:"node,omitempty"`
	LocalDiff []string `json:"local_diff,omitempty"`
}

// topologyReader is the part of the FSM the topology reads need; *fsm.FSM
// has it (optional, so State fakes need not).
type topologyReader interface {
	Topology() ([]fsm.ClusterDef, []string)
}

func (s *Server) topology(http.ResponseWriter, *http.Request) (any, error) {
	tr, ok := s.state.(topologyReader)
	if !ok {
		return nil, fmt.Errorf("%w: no replicated topology", ErrNotImplemented)
	}
	index := s.state.AppliedIndex()
	defs, removed := tr.Topology()
	if defs == nil {
		defs = []fsm.ClusterDef{}
	}
	resp := TopologyResponse{Index: index, Clusters: defs, Removed: removed, Node: s.cfg.NodeID}
	if s.topoDiff != nil {
		resp.LocalDiff = s.topoDiff()
	}
	return resp, nil
}

func actor(by string) string {
	if by == "" {
		return defaultActor
	}
	return by
}

func (s *Server) applyTopology(r *http.Request, t fsm.MessageType, payload any) (any, error) {
	if _, err := s.apply(r.Context(), t, payload); err != nil {
		return nil, err
	}
	return s.topology(nil, r)
}

func (s *Server) clusterDefine(r *http.Request, body []byte) (any, error) {
	name := r.PathValue("name")
	var req ClusterRequest
	if err := decodeStrict(body, &req, false); err != nil {
		return nil, err
	}
	cmd := fsm.ClusterDefine{Op: req.Op, Name: name, By: actor(req.By), At: s.now().UTC()}
	switch req.Op {
	case fsm.OpAdd:
		d := fsm.ClusterDef{Name: name, Instances: req.Instances}
		p := req.ClusterPatch
		deref(&d.User, p.User)
		deref(&d.PasswordFile, p.PasswordFile)
		deref(&d.PasswordEnv, p.PasswordEnv)
		deref(&d.ReplUser, p.ReplUser)
		deref(&d.ReplPasswordFile, p.ReplPasswordFile)
		deref(&d.ReplPasswordEnv, p.ReplPasswordEnv)
		deref(&d.SSHUser, p.SSHUser)
		deref(&d.MasterBinlogDir, p.MasterBinlogDir)
		deref(&d.ReplicationMode, p.ReplicationMode)
		deref(&d.MaxLag, p.MaxLag)
		deref(&d.AutoAdd, p.AutoAdd)
		for i := range d.Instances {
			d.Instances[i].AddedBy = cmd.By
		}
		if err := fsm.ValidateClusterDef(d); err != nil {
			return nil, err
		}
		cmd.Def = &d
	case fsm.OpSet:
		if len(req.Instances) > 0 {
			return nil, fmt.Errorf("%w: cluster %q: instances: change them with /v1/clusters/%s/instances", ErrBadRequest, name, name)
		}
		if req.ClusterPatch == (fsm.ClusterPatch{}) {
			return nil, fmt.Errorf("%w: cluster %q: nothing to set", ErrBadRequest, name)
		}
		p := req.ClusterPatch
		cmd.Patch = &p
	default:
		return nil, fmt.Errorf("%w: op %q: want add or set", ErrBadRequest, req.Op)
	}
	return s.applyTopology(r, fsm.ClusterDefineType, cmd)
}

func deref[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func (s *Server) clusterRemove(r *http.Request, _ []byte) (any, error) {
	return s.applyTopology(r, fsm.ClusterRemoveType, fsm.ClusterRemove{Name: r.PathValue("name"), By: actor(r.URL.Query().Get("by")), At: s.now().UTC()})
}

func (s *Server) instanceSet(r *http.Request, body []byte) (any, error) {
	name := r.PathValue("name")
	var req InstanceRequest
	if err := decodeStrict(body, &req, false); err != nil {
		return nil, err
	}
	req.Address = strings.TrimSpace(req.Address)
	if err := fsm.ValidAddress(req.Address); err != nil {
		return nil, fmt.Errorf("%w: cluster %q: %w", ErrBadRequest, name, err)
	}
	if req.Op != fsm.OpAdd && req.Op != fsm.OpSet {
		return nil, fmt.Errorf("%w: op %q: want add or set", ErrBadRequest, req.Op)
	}
	p := req.InstancePatch
	if req.Op == fsm.OpSet && p == (fsm.InstancePatch{}) {
		return nil, fmt.Errorf("%w: cluster %q: instance %s: nothing to set", ErrBadRequest, name, req.Address)
	}
	if p.CandidateMaster != nil && p.NoMaster != nil && *p.CandidateMaster && *p.NoMaster {
		return nil, fmt.Errorf("%w: cluster %q: instance %s: candidate_master and no_master are both true", ErrBadRequest, name, req.Address)
	}
	return s.applyTopology(r, fsm.InstanceSetType, fsm.InstanceSet{Op: req.Op, Cluster: name, Address: req.Address,
		Patch: p, By: actor(req.By), At: s.now().UTC()})
}

func (s *Server) instanceRemove(r *http.Request, _ []byte) (any, error) {
	name, addr := r.PathValue("name"), r.PathValue("address")
	// The FSM refuses the recorded master; the master this (leading)
	// controller watches is refused too, for a cluster with none recorded.
	if s.view != nil {
		if info, ok := s.view.ClusterInfo(name); ok && strings.EqualFold(info.WatchedMaster, addr) {
			return nil, fmt.Errorf("cluster %q: instance %s: %w", name, addr, fsm.ErrRemoveMaster)
		}
	}
	return s.applyTopology(r, fsm.InstanceRemoveType, fsm.InstanceRemove{Cluster: name, Address: addr,
		By: actor(r.URL.Query().Get("by")), At: s.now().UTC()})
}
