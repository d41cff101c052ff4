package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/quorumha/quorumha/config"
	"github.com/quorumha/quorumha/recovery"
	"github.com/quorumha/quorumha/topology"
)

// problemSlowLossDetection is check-repl's warning that a replica would
// notice a vanished master late (heartbeat period or slave_net_timeout).
const problemSlowLossDetection recovery.ProblemCode = "slow_master_loss_detection"

// maxNetTimeout is the slave_net_timeout above which check-repl warns. The
// IO thread says "Yes" for that long after a master host vanishes; the
// detector has faster signals (heartbeats, the replica hosts' agents), but
// when neither is available (no agents, heartbeats unreadable) this is the
// fallback, and the servers' default of 60 s is a minute of downtime. 30 s
// halves it while staying far above any heartbeat period and above the
// short network blips after which a lower value would make replicas
// reconnect for nothing.
const maxNetTimeout = 30 * time.Second

// replicaAddrs lists the instances the report found replicating.
func (cr replClusterReport) replicaAddrs() []string {
	var out []string
	for _, i := range cr.Instances {
		if i.Role == "replica" {
			out = append(out, i.Address)
		}
	}
	return out
}

// checkDetectionSettings warns, with the statement to run, about replicas
// whose heartbeat period exceeds 2 x detector.replica_heartbeat (the
// detector's stall rule waits two periods) or whose slave_net_timeout
// exceeds maxNetTimeout.
func checkDetectionSettings(ctx context.Context, cl config.Cluster, to topology.Timeouts, replicas []string,
	want time.Duration, logger *slog.Logger) []recovery.Problem {
	cred := topology.Credentials{User: cl.User, Password: cl.Password.Reveal()}
	var out []recovery.Problem
	for _, addr := range replicas {
		c, err := topology.Open(ctx, addr, cred, to, logger)
		if err != nil {
			continue
		}
		period, netTimeout, err := c.ReadDetectionSettings(ctx)
		mariadb := c.Version().IsMariaDB()
		_ = c.Close()
		if err != nil {
			out = append(out, recovery.Problem{Severity: recovery.SeverityWarning, Code: problemSlowLossDetection,
				Instance: addr, Message: "cannot read the heartbeat period and slave_net_timeout: " + err.Error()})
			continue
		}
		for _, msg := range topology.CheckDetectionSettings(period, netTimeout, want, maxNetTimeout, mariadb) {
			out = append(out, recovery.Problem{Severity: recovery.SeverityWarning, Code: problemSlowLossDetection,
				Instance: addr, Message: msg})
		}
	}
	return out
}

// addProblems appends warnings or errors and recounts.
func (cr *replClusterReport) addProblems(ps []recovery.Problem) {
	for _, p := range ps {
		cr.Problems = append(cr.Problems, p)
		if p.Severity == recovery.SeverityError {
			cr.Errors++
		} else {
			cr.Warnings++
		}
	}
	cr.OK = cr.Errors == 0
}
