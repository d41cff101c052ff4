package consensus

import (
	"strconv"

	"github.com/hashicorp/raft"
)

// IsLeader reports whether this node currently believes it is the leader. It
// may be stale by up to LeaderLeaseTimeout; use VerifyLeader before acting.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the leader's ID and raft address as this node knows them,
// or empty strings when no leader is known.
func (n *Node) Leader() (id, raftAddr string) {
	addr, lid := n.raft.LeaderWithID()
	return string(lid), string(addr)
}

// Term returns the current raft term; a change means an election happened.
func (n *Node) Term() uint64 { return n.raft.CurrentTerm() }

// LeaderChanges counts how many times this node has learnt of a new leader
// (including itself), for metrics and Status.
func (n *Node) LeaderChanges() uint64 { return n.leaderChanges.Load() }

// Peers returns the latest raft configuration as Peers, marking the leader.
func (n *Node) Peers() ([]Peer, error) {
	conf, err := n.configuration()
	if err != nil {
		return nil, err
	}
	leaderID, _ := n.Leader()
	peers := make([]Peer, 0, len(conf.Servers))
	for _, s := range conf.Servers {
		peers = append(peers, Peer{
			ID:       string(s.ID),
			RaftAddr: string(s.Address),
			Suffrage: suffrageName(s.Suffrage),
			Leader:   leaderID != "" && string(s.ID) == leaderID,
		})
	}
	return peers, nil
}

// Status returns a cheap point-in-time view of this node for /v1/status. It
// never blocks on the network; Peers is left empty if the configuration
// cannot be read.
func (n *Node) Status() Status {
	leaderID, leaderAddr := n.Leader()
	st := Status{
		ID:            n.cfg.ID,
		RaftAddr:      string(n.trans.LocalAddr()),
		State:         n.raft.State().String(),
		Term:          n.raft.CurrentTerm(),
		LeaderID:      leaderID,
		LeaderAddr:    leaderAddr,
		CommitIndex:   n.raft.CommitIndex(),
		AppliedIndex:  n.raft.AppliedIndex(),
		LastIndex:     n.raft.LastIndex(),
		LeaderChanges: n.leaderChanges.Load(),
	}
	if st.State != raft.Leader.String() {
		st.LastContact = n.raft.LastContact()
	}
	if peers, err := n.Peers(); err == nil {
		st.Peers = peers
	}
	return st
}

// suffrageName spells raft's suffrage the way Peer documents it.
func suffrageName(s raft.ServerSuffrage) string {
	switch s {
	case raft.Voter:
		return "voter"
	case raft.Nonvoter:
		return "nonvoter"
	case raft.Staging:
		return "staging"
	default:
		return "suffrage(" + strconv.Itoa(int(s)) + ")"
	}
}
