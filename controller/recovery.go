package controller

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"github.com/quorumha/quorumha/config"
	"github.com/quorumha/quorumha/consensus"
	"github.com/quorumha/quorumha/recovery"
	"github.com/quorumha/quorumha/topology"
)

// Switchover hands a planned switchover to the leader's runner.
// Rejoin hands the rejoin of a former master to the leader's runner.
func (m manualFailover) Rejoin(ctx context.Context, req recovery.RejoinRequest) (recovery.RejoinResult, error) {
	r := m.c.runner.Load()
	if r == nil {
		return recovery.RejoinResult{}, consensus.ErrNotLeader
	}
	return r.Rejoin(ctx, req)
}

func (m manualFailover) Switchover(ctx context.Context, req recovery.SwitchoverRequest) (recovery.SwitchoverResult, error) {
	r := m.c.runner.Load()
	if r == nil {
		return recovery.SwitchoverResult{}, consensus.ErrNotLeader
	}
	return r.Switchover(ctx, req)
}

// manualFailover is what the API calls for a manual failover: the current
// term's runner, or consensus.ErrNotLeader on a follower (the API then
// forwards the request to the leader).
type manualFailover struct{ c *Controller }

// ManualFailover hands the request to the leader's runner.
func (m manualFailover) ManualFailover(ctx context.Context, req recovery.ManualFailoverRequest) (recovery.ManualFailoverResult, error) {
	r := m.c.runner.Load()
	if r == nil {
		return recovery.ManualFailoverResult{}, consensus.ErrNotLeader
	}
	return r.ManualFailover(ctx, req)
}

// recoveryClusters copies what recovery needs from the resolved clusters.
func recoveryClusters(cfg *config.Config, clusters []resolvedCluster) []recovery.ClusterConfig {
	var out []recovery.ClusterConfig
	for _, rc := range clusters {
		c := rc.Cluster
		rc := recovery.ClusterConfig{
			Name: c.Name, User: c.User, Password: c.Password.Reveal(),
			ReplUser: c.ReplUser, ReplPassword: c.ReplPassword.Reveal(), SSHUser: c.SSHUser,
			ReplicationMode: c.ReplicationMode, MaxLag: c.LagLimit(cfg.Recovery),
			Hooks: recoveryHooks(c.Hooks),
			Conf:  c.Source, HeartbeatPeriod: cfg.Detector.ReplicaHeartbeat,
		}
		for _, in := range c.Instances {
			rc.Instances = append(rc.Instances, recovery.ClusterInstance{Address: in.Address, Zone: in.Zone,
				CandidateMaster: in.CandidateMaster, NoMaster: in.NoMaster, CheckReplDelay: in.ChecksReplDelay(cfg.Recovery),
				Agent: in.Agent})
		}
		out = append(out, rc)
	}
	return out
}

// dialInstance connects recovery to an instance. Connects are short (a dead
// master must not hold the failover), reads long enough for server-side waits.
// It logs in only to configured instances, with their cluster's TLS: the
// admin account never goes to an address someone else named.
func dialInstance(cfg *config.Config, topo func() *resolvedTopology, logger *slog.Logger) recovery.Dialer {
	to := topology.Timeouts{Connect: max(cfg.Detector.ProbeTimeout, time.Second), Read: 10 * time.Second, Write: 5 * time.Second}
	type dbTLS struct {
		conf *tls.Config
		err  error // validated at start: an error here is a file changed since
	}
	tlsFor := func(addr string) (dbTLS, bool) {
		for _, c := range topo().clusters {
			if c.configured(addr) {
				return dbTLS{c.TLS, c.TLSErr}, true
			}
		}
		return dbTLS{}, false
	}
	return func(ctx context.Context, addr string, cred topology.Credentials) (recovery.Instance, error) {
		t, ok := tlsFor(addr)
		switch {
		case !ok:
			return nil, fmt.Errorf("%s: %w: recovery does not log in to it", addr, topology.ErrNotConfigured)
		case t.err != nil:
			return nil, fmt.Errorf("%s: database TLS: %w", addr, t.err)
		}
		cred.TLS = t.conf
		c, err := topology.Open(ctx, addr, cred, to, logger)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

// configSecrets lists every secret value of the config, for redaction of
// hook output before it is logged or written into a replicated record.
func configSecrets(cfg *config.Config) []string {
	out := []string{cfg.API.Token.Reveal(), cfg.API.ReadToken.Reveal()}
	for _, c := range cfg.Clusters {
		out = append(out, c.Password.Reveal(), c.ReplPassword.Reveal(), c.Agent.Token.Reveal())
	}
	return out
}

// topologySecrets lists the secrets resolved from the replicated state's
// references, for the same redaction.
func topologySecrets(r *resolvedTopology) []string {
	var out []string
	for _, c := range r.clusters {
		out = append(out, c.Password.Reveal(), c.ReplPassword.Reveal())
	}
	return out
}
