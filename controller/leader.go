package controller

import (
	"context"
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"time"

	"github.com/quorumha/quorumha/consensus"
	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/recovery"
)

// onLeader is everything only the leader does. First it records its own
// HTTP address in the replicated state, so followers can forward writes to
// it; then it runs the decision loop until leadership is lost.
func (c *Controller) onLeader(ctx context.Context) {
	select {
	case <-c.ready:
	case <-ctx.Done():
		return
	}
	logger := c.log.With("pkg", "leader")
	cmd, err := fsm.Encode(fsm.NodeMetaType, fsm.NodeMeta{ID: c.cfg.Node.ID, HTTPAddr: advertisedHTTP(c.cfg), Zone: c.cfg.Node.Zone})
	if err != nil {
		logger.Error("encode node meta", "err", err)
		return
	}
	cmds := [][]byte{cmd}
	if c.detect.signKey != nil {
		// The verdict key first: once a controller's HTTP address is
		// recorded, so is its key (registerSelf has nothing left to do).
		pub := c.detect.signKey.Public().(ed25519.PublicKey)
		if k, ok := c.state.NodeKey(c.cfg.Node.ID); !ok || !k.Equal(pub) {
			kc, err := fsm.Encode(fsm.NodeKeyType, fsm.NodeKey{ID: c.cfg.Node.ID, PublicKey: pub})
			if err != nil {
				logger.Error("encode node key", "err", err)
				return
			}
			cmds = [][]byte{kc, cmd}
		}
	}
	for len(cmds) > 0 {
		_, err := c.node.Apply(ctx, cmds[0])
		if err == nil {
			cmds = cmds[1:]
			continue
		}
		if errors.Is(err, consensus.ErrNotLeader) || ctx.Err() != nil {
			return
		}
		logger.Warn("record leader address", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	logger.Info("leadership established")
	c.seedTopology(ctx, logger)
	runner := recovery.NewRunner(recovery.RunnerConfig{
		NodeID: c.cfg.Node.ID, AntiFlap: c.cfg.Recovery.AntiFlap, Logger: logger,
		ClustersFunc: func() []recovery.ClusterConfig { return recoveryClusters(c.cfg, c.topo.current().clusters) },
		Executor: recovery.ExecutorConfig{ApplyTimeout: c.cfg.Recovery.ApplyTimeout, StepDelay: c.stepDelay, SalvagePause: c.salvagePause, PromotePause: c.promotePause, Metrics: c.hookMetrics,
			Agents: agentDialer(c.cfg), ApplyBinlog: recovery.ExecBinlogApplier, SalvageTimeout: c.cfg.Recovery.SalvageTimeout,
			SalvageConnectTimeout: c.cfg.Recovery.SalvageConnectTimeout, DialAgentTCP: recovery.NetDialAgentTCP,
			FenceMode: c.cfg.Recovery.Fence, Lease: c.witness, FenceAgents: fenceAgentDialer(c.cfg),
			RewindDir: filepath.Join(c.cfg.Node.DataDir, "rewind"), Flashback: recovery.ExecFlashbackApplier},
	}, newMasterGuard(c.node, c.state, c.topo.current), c.state, c.detect.det, dialInstance(c.cfg, c.topo.current, c.log.With("pkg", "topology")),
		recovery.HookRunner{Timeout: hookTimeout, Logger: logger.With("pkg", "hooks"), Secrets: append(configSecrets(c.cfg), topologySecrets(c.topo.current())...)}.Run)
	c.runner.Store(runner)
	defer c.runner.CompareAndSwap(runner, nil)
	// After the Store: a reload that ran before it left its hooks in
	// c.hooks; one that runs after finds this runner (see applyPlan).
	if h := c.hooks.Load(); h != nil {
		runner.SetHooks(*h)
	}
	done := make(chan struct{})
	go func() { // owned here: waited for below
		defer close(done)
		c.discoverLoop(ctx, logger.With("pkg", "discovery"))
	}()
	runner.Run(ctx)
	<-done
}

// hookTimeout bounds one hook run: a hung fencing script must not hold a
// failover forever.
const hookTimeout = 60 * time.Second
