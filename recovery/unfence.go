package recovery

import (
	"context"
	"strings"
	"time"

	"github.com/quorumha/quorumha/agent"
	"github.com/quorumha/quorumha/detector"
	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/topology"
)

// unfenceTimeout bounds one look at a recorded master's agent and server.
const unfenceTimeout = 5 * time.Second

// SelfFencedMaster reports whether the leader may lift the fence of the
// cluster's recorded master: its agent fenced it on its own because the
// quorum lease lapsed (the controllers lost it for longer than the TTL),
// yet no failover followed (the replicas still received its binlog, say)
// and the cut has healed: a majority of the voters renews its lease again
// and this leader sees it healthy. Nothing else can be writable then: no
// record is open, the newest one does not need an operator (a failover
// aborted at or after promote may have left a second server writable),
// and the recorded master is the one assessed. Without this the cluster
// stayed read-only for ever after a cut of the controllers alone (found by
// make chaos, seed 942). A pure function of what the leader read.
func SelfFencedMaster(recorded string, openRecord bool, newest *fsm.Record, a detector.Assessment, st agent.FenceStatus) (bool, string) {
	switch {
	case recorded == "" || openRecord:
		return false, "no recorded master, or a record is open"
	case newest != nil && needsOperator(*newest):
		return false, "the newest record needs an operator"
	case !strings.EqualFold(a.Master, recorded) || a.State != detector.AssessHealthy:
		return false, "the recorded master is not assessed healthy"
	case !st.Enforced || !st.Fenced:
		return false, "its agent has not fenced it"
	case !strings.HasPrefix(st.Reason, leaseLapsedReason):
		return false, "its agent was asked to fence it (" + st.Reason + ")"
	case st.Voters < 1 || len(st.Holders) < st.Voters/2+1:
		return false, "a majority does not renew its lease yet"
	}
	return true, "its agent fenced it when the lease lapsed, no failover followed, and a majority renews the lease again"
}

// leaseLapsedReason starts the agent's reason for a fence it applied on its
// own (agent/fence.go); a fence a controller asked for says "requested by".
const leaseLapsedReason = "lease lapsed"

// unfenceRecordedMasters lifts, on the leader's sweep, the fence of every
// recorded master that SelfFencedMaster allows: the agent's fence cleared
// first (or it would fence again), then read_only off, each right after
// VerifyLeader. The agent re-arms on the next majority of renewals.
func (d *Runner) unfenceRecordedMasters(ctx context.Context) {
	dial := d.exec.cfg.FenceAgents
	if dial == nil {
		return
	}
	open := map[string]bool{}
	for _, r := range d.state.OpenRecords() {
		open[r.Cluster] = true
	}
	assessed := map[string]detector.Assessment{}
	for _, a := range d.assess.Assessments() {
		assessed[a.Cluster] = a
	}
	for _, cc := range d.clusters() {
		cs, ok := d.state.Cluster(cc.Name)
		a, seen := assessed[cc.Name]
		if !ok || !seen || cs.Master == "" || open[cc.Name] || a.State != detector.AssessHealthy {
			continue
		}
		url := ""
		for _, in := range cc.Instances {
			if strings.EqualFold(in.Address, cs.Master) {
				url = in.Agent
			}
		}
		if url == "" {
			continue
		}
		d.unfenceOne(ctx, cc, cs.Master, url, open[cc.Name], a, dial)
	}
}

func (d *Runner) unfenceOne(ctx context.Context, cc ClusterConfig, master, url string, openRecord bool, a detector.Assessment, dial FenceAgentDialer) {
	ctx, cancel := context.WithTimeout(ctx, unfenceTimeout)
	defer cancel()
	ag, err := dial(cc.Name, url)
	if err != nil {
		return
	}
	st, err := ag.FenceStatus(ctx)
	if err != nil || !st.Fenced {
		return
	}
	var newest *fsm.Record
	if recs := d.state.History(cc.Name, 1); len(recs) == 1 {
		newest = &recs[0]
	}
	ok, why := SelfFencedMaster(master, openRecord, newest, a, st)
	log := d.log.With("cluster", cc.Name, "master", master)
	if !ok {
		log.Debug("recorded master stays fenced", "why", why)
		return
	}
	if err := d.group.VerifyLeader(ctx); err != nil {
		return
	}
	if _, err := ag.ClearFence(ctx, agent.FenceRequest{Controller: d.cfg.NodeID, Reason: "leader: " + why}); err != nil {
		log.Warn("clear the self-fenced recorded master's agent fence", "err", err)
		return
	}
	in, err := d.exec.dial(ctx, master, topology.Credentials{User: cc.User, Password: cc.Password})
	if err != nil {
		log.Warn("unfence the recorded master: connect", "err", err)
		return
	}
	defer in.Close()
	if err := d.group.VerifyLeader(ctx); err != nil {
		return
	}
	if err := in.SetReadOnly(ctx, false); err != nil {
		log.Warn("unfence the recorded master: read_only off", "err", err)
		return
	}
	log.Warn("recorded master writable again: "+why, "agent_reason", st.Reason, "holders", st.Holders)
}
