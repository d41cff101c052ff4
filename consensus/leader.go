package consensus

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/raft"
)

// observerBuffer sizes the leader-observation channel; observations are only
// counted, so a dropped one costs a metric tick, never correctness.
const observerBuffer = 16

// leadershipLoop owns leader-only work. It reads raft.Config.NotifyCh rather
// than raft.LeaderCh(): LeaderCh is a one-slot channel raft writes to without
// blocking on the reader, so a quick lose-win-lose can be collapsed and a
// leader could keep running leader work after losing (consul's
// monitorLeadership makes the same choice). NotifyCh is buffered and raft
// blocks on it, so every transition arrives in order.
// It also counts leader observations (a new leader became known to this node,
// itself included) for Status.LeaderChanges.
func (n *Node) leadershipLoop(ctx context.Context, obsCh <-chan raft.Observation, obs *raft.Observer) {
	defer n.raft.DeregisterObserver(obs)

	var stop func() // stops the current term's leader work; nil when not leading
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-obsCh:
			if lo, ok := o.Data.(raft.LeaderObservation); ok && lo.LeaderID != "" {
				n.leaderChanges.Add(1)
				n.log.Info("leader known", "leader", lo.LeaderID, "addr", lo.LeaderAddr, "term", n.raft.CurrentTerm())
			}
		case isLeader := <-n.notify:
			switch {
			case isLeader && stop == nil:
				n.log.Info("gained leadership", "term", n.raft.CurrentTerm())
				stop = n.startLeading(ctx)
			case !isLeader && stop != nil:
				n.log.Info("lost leadership")
				stop()
				stop = nil
			}
		}
	}
}

// startLeading runs one term's leader work in a goroutine and returns the
// function that cancels it and waits for it to finish.
func (n *Node) startLeading(parent context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(parent)
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.lead(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// lead takes a Barrier so the FSM holds every earlier leader's commits, then
// runs OnLeader until ctx ends. If the barrier fails this node cannot serve as
// leader, so it hands leadership away; when that also fails (e.g. no other
// voter), it retries the barrier after a heartbeat interval.
func (n *Node) lead(ctx context.Context) {
	retry := n.cfg.Timings.HeartbeatTimeout
	for {
		bctx, cancel := context.WithTimeout(ctx, n.cfg.Timings.BarrierTimeout)
		err := n.await(bctx, n.raft.Barrier(n.cfg.Timings.BarrierTimeout))
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			break
		}
		if errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrNotLeader) {
			return // already lost; the loop cancels ctx when NotifyCh says so
		}
		n.log.Warn("barrier after gaining leadership failed; transferring leadership", "err", err)
		terr := n.await(ctx, n.raft.LeadershipTransfer())
		if terr == nil || ctx.Err() != nil {
			return // the loop will see leadership lost and cancel ctx
		}
		n.log.Warn("leadership transfer failed; retrying barrier", "err", terr)
		t := time.NewTimer(retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	n.log.Info("leadership established", "term", n.raft.CurrentTerm())
	n.resumePromotions()
	if n.cfg.OnLeader != nil {
		n.cfg.OnLeader(ctx)
	}
}
