package recovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/quorumha/quorumha/detector"
	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/topology"
)

// ManualFailoverRequest is an operator's failover of a dead master.
type ManualFailoverRequest struct {
	Cluster, To string
	DryRun      bool
	By          string
	// Force fails over a master that still answers the leader's probe or
	// that the controllers still assess alive (ErrMasterAlive otherwise).
	// The fence step still runs first.
	Force bool
}

// ManualFailoverResult answers a manual failover: the record that runs it,
// or the plan of a dry run.
type ManualFailoverResult struct {
	RecordID  uint64     `json:"record_id,omitempty"`
	DryRun    bool       `json:"dry_run"`
	Selection *Selection `json:"selection,omitempty"`
	Message   string     `json:"message"`
}

// ManualEvidence is the evidence of a manual failover record. Target is read
// back by the select step, so a resumed record keeps the operator's choice.
type ManualEvidence struct {
	By       string               `json:"by"`
	Target   string               `json:"target,omitempty"`
	Recheck  detector.ProbeResult `json:"recheck"`
	AntiFlap string               `json:"anti_flap"`
	// Force is set when the operator overrode a master seen alive; Alive
	// then says who saw it so.
	Force bool   `json:"force,omitempty"`
	Alive string `json:"alive,omitempty"`
}

// ManualFailover plans (DryRun) or starts a failover the operator asked
// for. It re-probes the master first (alive: ErrMasterAlive), computes the
// selection from the replicas as they are now (ErrTargetUnknown,
// ErrTargetIneligible, ErrNoCandidate with the selection in the result),
// and, unless DryRun, opens a failover record (trigger manual) and runs it
// in the Runner's leadership-scoped goroutine, returning the record id at
// once. Anti-flap and maintenance do not apply (the operator decided); the
// evidence says what they would have said.
func (d *Runner) ManualFailover(ctx context.Context, req ManualFailoverRequest) (ManualFailoverResult, error) {
	cc, ok := d.clusterConfig(req.Cluster)
	if !ok {
		return ManualFailoverResult{}, fmt.Errorf("%w: %q", ErrUnknownCluster, req.Cluster)
	}
	if !req.DryRun && !d.inTerm() {
		return ManualFailoverResult{}, ErrRunnerStopped
	}
	for _, r := range d.state.OpenRecords() {
		if r.Cluster == req.Cluster {
			if r.AwaitingFence() {
				return ManualFailoverResult{RecordID: r.ID}, fmt.Errorf("%w: failover record %d awaits a fence proof (%s); to promote without one, accept the risk with --unfenced",
					ErrFailoverInProgress, r.ID, r.Fence.Reason)
			}
			return ManualFailoverResult{RecordID: r.ID}, fmt.Errorf("%w: %s record %d is open", ErrFailoverInProgress, r.Kind, r.ID)
		}
	}
	re, err := d.assess.Recheck(ctx, req.Cluster)
	if err != nil {
		return ManualFailoverResult{}, fmt.Errorf("probe the master of %s: %w", req.Cluster, err)
	}
	alive := d.seenAlive(req.Cluster, re)
	if alive != "" && !req.Force {
		return ManualFailoverResult{}, fmt.Errorf("%w: %s; a switchover hands a live master over without loss, or repeat with --force (API: \"force\": true) to fail it over anyway, fenced first",
			ErrMasterAlive, alive)
	}
	oldMaster := re.Instance
	sel, err := d.plan(ctx, cc, oldMaster, req.To)
	if err != nil {
		return ManualFailoverResult{DryRun: req.DryRun, Selection: &sel, Message: err.Error()}, err
	}
	if req.DryRun {
		msg := fmt.Sprintf("dry run: would promote %s in place of %s", sel.Chosen, oldMaster)
		if sel.CatchUpFrom != "" {
			msg += " after catching it up from " + sel.CatchUpFrom
		}
		return ManualFailoverResult{DryRun: true, Selection: &sel, Message: msg}, nil
	}
	now := d.cfg.Now()
	flap := "no anti-flap state"
	if cs, ok := d.state.Cluster(req.Cluster); ok {
		allowed, why := AutoFailoverAllowed(cs, now, d.cfg.AntiFlap)
		if allowed {
			flap = "anti-flap would allow it: " + why
		} else {
			flap = "manual failover ignores: " + why
		}
	}
	ev, err := json.Marshal(ManualEvidence{By: req.By, Target: req.To, Recheck: re, AntiFlap: flap, Force: req.Force && alive != "", Alive: alive})
	if err != nil {
		return ManualFailoverResult{}, fmt.Errorf("encode evidence: %w", err)
	}
	if err := d.group.VerifyLeader(ctx); err != nil {
		return ManualFailoverResult{}, fmt.Errorf("verify leadership: %w", err)
	}
	id, err := d.apply(ctx, fsm.RecordOpenType, fsm.RecordOpen{Cluster: req.Cluster, Kind: fsm.KindFailover,
		Trigger: "manual", OldMaster: oldMaster, OpenedBy: req.By, At: now, Evidence: ev})
	if errors.Is(err, fsm.ErrRecordOpen) {
		return ManualFailoverResult{}, fmt.Errorf("%w: %w", ErrFailoverInProgress, err)
	}
	if err != nil {
		return ManualFailoverResult{}, fmt.Errorf("open failover record: %w", err)
	}
	recID, _ := id.(uint64)
	d.markDecided(req.Cluster, oldMaster)
	if !d.startExecutor(req.Cluster, recID) {
		// The term ended between the commit and now: the record is open in
		// the log and the next leader resumes it.
		return ManualFailoverResult{RecordID: recID, Selection: &sel,
			Message: "failover record opened; leadership ended before it started: the next leader resumes it"}, nil
	}
	d.log.Warn("manual failover started", "cluster", req.Cluster, "record", recID, "by", req.By, "to", req.To, "anti_flap", flap)
	return ManualFailoverResult{RecordID: recID, Selection: &sel,
		Message: fmt.Sprintf("failover of %s started (record %d); expected new master %s; %s", oldMaster, recID, sel.Chosen, flap)}, nil
}

// seenAlive says why the master counts as alive, "" when it does not: it
// answered the leader's probe just now, or the controllers' latest
// assessment says a quorum sees it up (healthy; isolated: only a minority
// sees it down) or its replicas still receive its binlog. Suspect, unknown
// and dead-confirmed leave the judgement to the operator.
func (d *Runner) seenAlive(cluster string, re detector.ProbeResult) string {
	if re.OK || re.Reason.Alive() {
		return fmt.Sprintf("%s answered the leader's probe (%s)", re.Instance, re.Reason)
	}
	for _, a := range d.assess.Assessments() {
		if a.Cluster != cluster || (re.Instance != "" && !strings.EqualFold(a.Master, re.Instance)) {
			continue
		}
		switch a.State {
		case detector.AssessHealthy, detector.AssessIsolated, detector.AssessReplicasStillConnected:
			return fmt.Sprintf("the controllers assess %s %s (%s)", a.Master, a.State, a.Reason)
		}
	}
	return ""
}

// inTerm reports whether Run is running (a leadership term to bind
// executor goroutines to).
func (d *Runner) inTerm() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.runCtx != nil
}

// plan computes a selection from the replicas as they are now, without
// changing anything.
func (d *Runner) plan(ctx context.Context, cc ClusterConfig, oldMaster, to string) (Selection, error) {
	read := func(ctx context.Context, addr string) (*topology.Instance, error) {
		c, err := d.exec.dial(ctx, addr, topology.Credentials{User: cc.User, Password: cc.Password})
		if err != nil {
			return nil, err
		}
		defer c.Close()
		return c.Read(ctx)
	}
	if to != "" && strings.EqualFold(to, oldMaster) {
		return Selection{}, fmt.Errorf("%w: %s is the dead master", ErrTargetIneligible, to)
	}
	cands := observeCandidates(ctx, cc, oldMaster, read)
	reachable := 0
	for _, c := range cands {
		if c.Reachable {
			reachable++
		}
	}
	return SelectNewMaster(cands, SelectRules{MaxLag: cc.MaxLag, NeedOthersFollow: reachable > 1, Target: to})
}
