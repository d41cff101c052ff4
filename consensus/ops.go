package consensus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/raft"
)

// Apply commits cmd through the raft log and returns the FSM's response for
// it. Only the leader can apply; elsewhere it returns ErrNotLeader so the
// caller can forward. A response that is an error is returned as the error,
// wrapped so errors.Is still matches the FSM's sentinel. A ctx error means the
// outcome is unknown: the command may still commit.
func (n *Node) Apply(ctx context.Context, cmd []byte) (any, error) {
	if n.isClosed() {
		return nil, ErrShutdown
	}
	if n.raft.State() != raft.Leader {
		return nil, ErrNotLeader
	}
	f := n.raft.Apply(cmd, timeout(ctx, n.cfg.Timings.ApplyTimeout))
	if err := n.await(ctx, f); err != nil {
		return nil, fmt.Errorf("consensus: apply: %w", mapApplyErr(err))
	}
	resp := f.Response()
	if err, ok := resp.(error); ok {
		return nil, fmt.Errorf("consensus: apply rejected by fsm: %w", err)
	}
	return resp, nil
}

// Barrier waits until every entry committed before it has been applied to this
// node's FSM, so leader reads that follow see all earlier writes.
func (n *Node) Barrier(ctx context.Context) error {
	if n.isClosed() {
		return ErrShutdown
	}
	if err := n.await(ctx, n.raft.Barrier(timeout(ctx, n.cfg.Timings.BarrierTimeout))); err != nil {
		return fmt.Errorf("consensus: barrier: %w", mapRaftErr(err))
	}
	return nil
}

// VerifyLeader confirms with a quorum that this node is still the leader; a
// leader cut off in a minority gets ErrNotLeader. Use it before a read that
// must be linearizable or an action that must not be taken by a stale leader.
func (n *Node) VerifyLeader(ctx context.Context) error {
	if n.isClosed() {
		return ErrShutdown
	}
	if err := n.await(ctx, n.raft.VerifyLeader()); err != nil {
		return fmt.Errorf("consensus: verify leader: %w", mapRaftErr(err))
	}
	return nil
}

// Join adds a server, first as a nonvoter: a voter that cannot be reached
// (a typo in its address, a controller not started yet) would count in
// every quorum, and in a one-node group leave no quorum at all. It is
// promoted to voter by a goroutine this Node owns once it has answered the
// leader's heartbeats for promoteStable (hashicorp/raft does not expose a
// follower's match index; a follower that answers heartbeats receives the
// log), and stays a nonvoter if that does not happen within promoteTimeout;
// a later leader resumes the promotion (resumePromotions).
// It is idempotent: joining an ID already present with the same address
// does nothing, and an ID present with another address (a rebuilt
// controller) is removed first so raft does not hold two entries.
// Only the leader can change membership (ErrNotLeader otherwise).
func (n *Node) Join(ctx context.Context, id, raftAddr string) error {
	if n.isClosed() {
		return ErrShutdown
	}
	if id == "" || raftAddr == "" {
		return fmt.Errorf("%w: join needs an id and an address", ErrInvalidConfig)
	}
	if n.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	conf, err := n.configuration()
	if err != nil {
		return err
	}
	d := timeout(ctx, n.cfg.Timings.ApplyTimeout)
	for _, s := range conf.Servers {
		sameID, sameAddr := string(s.ID) == id, string(s.Address) == raftAddr
		if sameID && sameAddr {
			if s.Suffrage == raft.Voter {
				return nil
			}
			n.startPromotion(id, raftAddr) // a nonvoter already: (re)try its promotion
			return nil
		}
		if sameID || sameAddr {
			if err := n.await(ctx, n.raft.RemoveServer(s.ID, 0, d)); err != nil {
				return fmt.Errorf("consensus: join %s: remove stale entry %s@%s: %w", id, s.ID, s.Address, mapRaftErr(err))
			}
			n.log.Info("removed stale raft server before join", "id", s.ID, "addr", s.Address)
		}
	}
	if err := n.await(ctx, n.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, d)); err != nil {
		return fmt.Errorf("consensus: join %s@%s: %w", id, raftAddr, mapRaftErr(err))
	}
	n.log.Info("added raft nonvoter; it becomes a voter once it answers heartbeats", "id", id, "addr", raftAddr)
	n.startPromotion(id, raftAddr)
	return nil
}

// resumePromotions starts the promotion of every nonvoter in the
// configuration. A promotion runs on the leader that accepted the join, and
// ends with that leader's term; when the leader died or lost an election
// before the joined server had answered its heartbeats long enough, the
// server stayed a nonvoter (in no quorum: a group that replaced a failed
// controller kept one voter fewer than the operator counted) until someone
// joined it again. Every nonvoter here came from Join.
func (n *Node) resumePromotions() {
	conf, err := n.configuration()
	if err != nil {
		n.log.Warn("read the configuration to resume promotions", "err", err)
		return
	}
	for _, s := range conf.Servers {
		if s.Suffrage == raft.Nonvoter {
			n.log.Info("resuming the promotion of a joined nonvoter", "id", s.ID, "addr", s.Address)
			n.startPromotion(string(s.ID), string(s.Address))
		}
	}
}

// startPromotion runs promote in loopWG, under the Node's lifetime.
func (n *Node) startPromotion(id, raftAddr string) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.closed {
		return
	}
	n.loopWG.Go(func() { n.promote(n.loopCtx, id, raftAddr) })
}

// promote makes nonvoter id a voter once the leader's heartbeats to it have
// succeeded for promoteStable without a failure, giving up after
// promoteTimeout, when ctx ends, or when this node stops leading.
func (n *Node) promote(ctx context.Context, id, raftAddr string) {
	obsCh := make(chan raft.Observation, 16)
	obs := raft.NewObserver(obsCh, false, func(o *raft.Observation) bool {
		f, ok := o.Data.(raft.FailedHeartbeatObservation)
		return ok && string(f.PeerID) == id
	})
	n.raft.RegisterObserver(obs)
	defer n.raft.DeregisterObserver(obs)
	stableFor := max(promoteStable, 4*n.cfg.Timings.HeartbeatTimeout)
	stable := time.NewTimer(stableFor)
	defer stable.Stop()
	giveUp := time.NewTimer(promoteTimeout)
	defer giveUp.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-giveUp.C:
			n.log.Warn("joined server never answered heartbeats steadily; it stays a nonvoter (remove it, or join it again once it runs)",
				"id", id, "addr", raftAddr)
			return
		case <-obsCh:
			if !stable.Stop() {
				select {
				case <-stable.C:
				default:
				}
			}
			stable.Reset(stableFor)
		case <-stable.C:
			if n.raft.State() != raft.Leader {
				return
			}
			conf, err := n.configuration()
			if err != nil {
				stable.Reset(stableFor)
				continue
			}
			if !slices.ContainsFunc(conf.Servers, func(s raft.Server) bool {
				return string(s.ID) == id && string(s.Address) == raftAddr && s.Suffrage == raft.Nonvoter
			}) {
				return // removed, replaced or already promoted meanwhile
			}
			if err := n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, n.cfg.Timings.ApplyTimeout).Error(); err != nil {
				n.log.Warn("promote nonvoter", "id", id, "addr", raftAddr, "err", err)
				stable.Reset(stableFor)
				continue
			}
			n.log.Info("promoted nonvoter to voter", "id", id, "addr", raftAddr)
			return
		}
	}
}

// Promotion bounds: how long a joined server must answer heartbeats
// without a failure before it votes, and how long the leader keeps trying.
const (
	promoteStable  = 2 * time.Second
	promoteTimeout = 5 * time.Minute
)

// Remove takes a server out of the raft configuration, e.g. a controller
// decommissioned for good. Only the leader can do it; an ID not in the
// configuration returns ErrUnknownPeer.
func (n *Node) Remove(ctx context.Context, id string) error {
	if n.isClosed() {
		return ErrShutdown
	}
	if n.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	conf, err := n.configuration()
	if err != nil {
		return err
	}
	found := false
	for _, s := range conf.Servers {
		if string(s.ID) == id {
			found = true
			break
		}
	}
	if !found {
		return fmt.Errorf("consensus: remove %q: %w", id, ErrUnknownPeer)
	}
	d := timeout(ctx, n.cfg.Timings.ApplyTimeout)
	if err := n.await(ctx, n.raft.RemoveServer(raft.ServerID(id), 0, d)); err != nil {
		return fmt.Errorf("consensus: remove %q: %w", id, mapRaftErr(err))
	}
	n.log.Info("removed raft server", "id", id)
	return nil
}

// WaitForLeader polls until a leader is known and returns its ID. When ctx
// ends first it returns ErrNoLeader (also matching ctx's error).
func (n *Node) WaitForLeader(ctx context.Context) (string, error) {
	every := max(n.cfg.Timings.HeartbeatTimeout/10, 5*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n.isClosed() {
			return "", ErrShutdown
		}
		if id, _ := n.Leader(); id != "" {
			return id, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w: %w", ErrNoLeader, ctx.Err())
		case <-t.C:
		}
	}
}

// configuration returns the latest raft configuration (committed or not).
func (n *Node) configuration() (raft.Configuration, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return raft.Configuration{}, fmt.Errorf("consensus: read configuration: %w", mapRaftErr(err))
	}
	return f.Configuration(), nil
}

// mapApplyErr is mapRaftErr for an Apply: leadership lost while the entry
// was in flight leaves its outcome unknown (ErrOutcomeUnknown, which is
// also ErrNotLeader).
func mapApplyErr(err error) error {
	if errors.Is(err, raft.ErrLeadershipLost) {
		return fmt.Errorf("%w: %w (%w)", ErrOutcomeUnknown, ErrNotLeader, err)
	}
	return mapRaftErr(err)
}

// mapRaftErr turns raft's errors into this package's sentinels where the
// caller's reaction differs (forward on ErrNotLeader, give up on ErrShutdown),
// keeping raft's error in the chain for the log.
func mapRaftErr(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w (%w)", ErrNotLeader, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w (%w)", ErrShutdown, err)
	default:
		return err
	}
}
