package controller

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumha/quorumha/agent"
	"github.com/quorumha/quorumha/config"
	"github.com/quorumha/quorumha/consensus"
	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/lease"
	"github.com/quorumha/quorumha/recovery"
)

// createLeaseKeeper builds the keeper that renews every cluster's recorded
// master's quorum lease with its host's agent on each probe cycle.
func createLeaseKeeper(cfg *config.Config, topo *topoSource, state *fsm.FSM, node *consensus.Node, reg prometheus.Registerer, logger *slog.Logger) (*lease.Keeper, error) {
	var clusters []lease.Cluster
	for _, rc := range topo.current().clusters {
		c := rc.Cluster
		lc := lease.Cluster{Name: c.Name, Agents: map[string]string{}}
		for _, in := range c.Instances {
			if in.Agent != "" {
				lc.Agents[in.Address] = in.Agent
			}
		}
		clusters = append(clusters, lc)
	}
	k, err := lease.NewKeeper(lease.KeeperConfig{
		Controller: cfg.Node.ID, Clusters: clusters, AgentOf: topo.agentOf,
		Interval: cfg.Detector.ProbeInterval, ProbeTimeout: cfg.Detector.ProbeTimeout, TTL: cfg.Recovery.LeaseTTL,
		Term: node.Term, Voters: voterIDs(node), CaughtUp: caughtUp(node), Logger: logger.With("pkg", "lease"), Registerer: reg,
	}, state, leaseDialer(cfg))
	if err != nil {
		return nil, fmt.Errorf("lease keeper: %w", err)
	}
	return k, nil
}

// leaseDialer builds agent clients with each cluster's agent credentials
// (clusters[].agent), as the salvage does.
func leaseDialer(cfg *config.Config) lease.Dialer {
	creds := map[string]config.AgentClient{}
	for _, c := range cfg.Clusters {
		creds[c.Name] = c.Agent
	}
	return func(cluster, url string, timeout time.Duration) (lease.Agent, error) {
		a, ok := creds[cluster]
		if !ok {
			return nil, fmt.Errorf("no cluster %q in the config", cluster)
		}
		return agent.NewClient(url, agent.ClientOptions{Token: a.Token.Reveal(), CAFile: a.CAFile,
			CertFile: a.CertFile, KeyFile: a.KeyFile, Timeout: timeout, OneShot: true})
	}
}

// newLeaseWitness answers the fence step's lease_expired question from this
// controller's grants, the gossiped ones and the raft voters.
func newLeaseWitness(cfg *config.Config, k *lease.Keeper, d *detection, state *fsm.FSM, node *consensus.Node) (recovery.LeaseWitness, error) {
	wc := lease.WitnessConfig{Controller: cfg.Node.ID, TTL: cfg.Recovery.LeaseTTL, Drift: cfg.Recovery.LeaseDrift,
		Own: k.Grant, Voters: voterIDs(node), Records: state}
	if d.gossip != nil { // a nil *Gossip in the interface would not be nil
		wc.Gossip = d.gossip
	}
	w, err := lease.NewWitness(wc)
	if err != nil {
		return nil, fmt.Errorf("lease witness: %w", err)
	}
	return w, nil
}

// voterIDs returns the ids of the voters in the raft configuration: the
// controllers whose grants count toward a master's lease.
func voterIDs(node *consensus.Node) func() ([]string, error) {
	return func() ([]string, error) {
		peers, err := node.Peers()
		if err != nil {
			return nil, err
		}
		var ids []string
		for _, p := range peers {
			if p.Suffrage == "voter" {
				ids = append(ids, p.ID)
			}
		}
		return ids, nil
	}
}

// caughtUp reports whether this node has heard of a leader and applied
// every entry it knows committed: its replicated state is no longer the
// snapshot it restored at start.
func caughtUp(node *consensus.Node) func() bool {
	return func() bool {
		st := node.Status()
		return st.LeaderID != "" && st.CommitIndex > 0 && st.AppliedIndex >= st.CommitIndex
	}
}
