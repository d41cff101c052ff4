// Package consensus runs this controller's member of the Raft group: stores,
// transport, bootstrap, join/remove, leadership watching and Apply. It never
// interprets a command; the fsm package does.
package consensus

import "time"

// Peer is one voter or non-voter in the raft configuration.
type Peer struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	Suffrage string `json:"suffrage"` // "voter", "nonvoter", "staging"
	Leader   bool   `json:"leader"`
}

// Status is a point-in-time view of this node's raft state, cheap to build.
type Status struct {
	ID            string    `json:"id"`
	RaftAddr      string    `json:"raft_addr"`
	State         string    `json:"state"` // "Leader", "Follower", "Candidate", "Shutdown"
	Term          uint64    `json:"term"`
	LeaderID      string    `json:"leader_id,omitempty"`
	LeaderAddr    string    `json:"leader_addr,omitempty"`
	CommitIndex   uint64    `json:"commit_index"`
	AppliedIndex  uint64    `json:"applied_index"`
	LastIndex     uint64    `json:"last_index"`
	LastContact   time.Time `json:"last_contact,omitempty"` // zero if never heard from a leader (or we are it)
	Peers         []Peer    `json:"peers"`
	LeaderChanges uint64    `json:"leader_changes"` // times this node learnt of a new leader (itself included)
}
