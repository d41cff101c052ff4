package api

import (
	"fmt"
	"time"

	"github.com/quorumha/quorumha/fsm"
)

// DefaultLeaderContactWindow is Config.LeaderContactWindow's default
// (api.leader_contact_window).
const DefaultLeaderContactWindow = 5 * time.Second

// raftLeaderState is consensus.Status.State on the leader.
const raftLeaderState = "Leader"

// Who the master is (safety rule 6). GET /v1/clusters/{name}/master and the
// "master" field of the cluster endpoints name a master only when all of
// these hold, and answer 503 (the field is left out) otherwise:
//
//  1. This controller has leader contact: it is the raft leader (raft
//     itself steps a leader down once it has not heard from a quorum for
//     LeaderLeaseTimeout, well inside the window), or it heard from the
//     leader within api.leader_contact_window. An election does not end
//     that: a follower whose leader died turns candidate and forgets the
//     leader's name, but until the window since its last contact runs out
//     it knows as much as a follower that heard from the leader then (no
//     new master can be committed without a leader it would hear from), so
//     proxies asking it do not drop a live master at every leader election.
//     A controller cut off from the group thus stops naming a master the
//     group may already have replaced once the window runs out.
//  2. The master is the one recorded in the replicated state
//     (fsm.ClusterState.Master), never this controller's detector view: a
//     master recorded by a failover or switchover is named as soon as the
//     record closes, and every controller with leader contact names the same
//     one.
//  3. The recorded master is not known to be unhealthy: no failover (or
//     detection) record of the cluster is open, and this controller's
//     assessment does not say the recorded master is dead (DeadConfirmed: a
//     quorum of controllers and the replicas agree). An open switchover does
//     not count: the old master stays named, read-only and under its global
//     read lock, until the switchover records the new one.

// leaderContact reports whether this controller may name a master now.
func (s *Server) leaderContact() error {
	st := s.raft.Status()
	if st.State == raftLeaderState {
		return nil
	}
	leader := "leader " + st.LeaderID
	if st.LeaderID == "" {
		leader = fmt.Sprintf("a leader (none known now, raft state %s)", st.State)
	}
	if st.LastContact.IsZero() {
		return fmt.Errorf("%w: never heard from %s", ErrNoLeaderContact, leader)
	}
	if age := s.now().Sub(st.LastContact); age > s.cfg.LeaderContactWindow {
		return fmt.Errorf("%w: last heard from %s %s ago (api.leader_contact_window %s)",
			ErrNoLeaderContact, leader, age.Round(time.Millisecond), s.cfg.LeaderContactWindow)
	}
	return nil
}

// authoritativeMaster is the master this controller may name for a known
// cluster, or why it may not (an error that maps to 503).
func (s *Server) authoritativeMaster(name string) (string, error) {
	if err := s.leaderContact(); err != nil {
		return "", fmt.Errorf("cluster %q: %w", name, err)
	}
	cs, ok := s.state.Cluster(name)
	if !ok || cs.Master == "" {
		return "", fmt.Errorf("cluster %q: %w (none recorded in the replicated state)", name, ErrNoMaster)
	}
	// At most one record per cluster is open and none opens while one is,
	// so an open record is always the newest.
	if recs := s.state.History(name, 1); len(recs) == 1 && recs[0].IsOpen() && recs[0].Kind != fsm.KindSwitchover && recs[0].Kind != fsm.KindRejoin {
		return "", fmt.Errorf("cluster %q: %w: %s record %d of %s is open", name, ErrNoMaster, recs[0].Kind, recs[0].ID, recs[0].OldMaster)
	}
	if s.view != nil && s.view.MasterDead(name, cs.Master) {
		return "", fmt.Errorf("cluster %q: %w: recorded master %s is assessed dead", name, ErrNoMaster, cs.Master)
	}
	return cs.Master, nil
}
