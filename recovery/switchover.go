package recovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/topology"
)

// Switchover defaults.
const (
	// DefaultSwitchoverTimeout bounds the wait for the target to apply the
	// old master's final position.
	DefaultSwitchoverTimeout = 30 * time.Second
	// DefaultSwitchoverGrace is how long open transactions on the old master
	// may finish before their connections are killed.
	DefaultSwitchoverGrace = 2 * time.Second
)

// SwitchoverRequest is an operator's planned switchover of a live master.
type SwitchoverRequest struct {
	Cluster, To string
	// Timeout bounds the wait for the target to catch up (0: default).
	Timeout time.Duration
	// Grace is how long open transactions may run before being killed
	// (0: default; negative: kill at once).
	Grace  time.Duration
	DryRun bool
	By     string
}

// SwitchoverResult answers a switchover request.
type SwitchoverResult struct {
	RecordID  uint64     `json:"record_id,omitempty"`
	DryRun    bool       `json:"dry_run"`
	OldMaster string     `json:"old_master,omitempty"`
	Target    string     `json:"target,omitempty"`
	Selection *Selection `json:"selection,omitempty"`
	Message   string     `json:"message"`
}

// SwitchoverEvidence is the evidence of a switchover record: everything a
// resuming leader needs (the target is fixed when the record opens).
type SwitchoverEvidence struct {
	By      string        `json:"by"`
	Target  string        `json:"target"`
	Timeout time.Duration `json:"timeout"`
	Grace   time.Duration `json:"grace"`
}

func switchoverEvidence(rec fsm.Record) (SwitchoverEvidence, bool) {
	var ev SwitchoverEvidence
	if rec.Kind != fsm.KindSwitchover || json.Unmarshal(rec.Evidence, &ev) != nil || ev.Target == "" {
		return SwitchoverEvidence{}, false
	}
	return ev, true
}

// Switchover checks the preconditions of a planned switchover and, unless
// DryRun, opens a switchover record (trigger manual) and runs it in the
// Runner's leadership-scoped goroutine, returning the record id at once.
// Every refusal leaves everything as it was.
func (d *Runner) Switchover(ctx context.Context, req SwitchoverRequest) (SwitchoverResult, error) {
	cc, ok := d.clusterConfig(req.Cluster)
	if !ok {
		return SwitchoverResult{}, fmt.Errorf("%w: %q", ErrUnknownCluster, req.Cluster)
	}
	if cc.ReplUser == "" {
		// The old master becomes a replica (it has no replication account
		// of its own) and a rollback repoints the target: both need one.
		return SwitchoverResult{}, fmt.Errorf("%w: cluster %q has no repl_user (clusters[].repl_user): the old master cannot be made a replica, nor the switchover rolled back, without a replication account",
			ErrSwitchoverRefused, req.Cluster)
	}
	if !d.inTerm() {
		return SwitchoverResult{}, ErrRunnerStopped
	}
	if req.Timeout <= 0 {
		req.Timeout = DefaultSwitchoverTimeout
	}
	if req.Grace == 0 {
		req.Grace = DefaultSwitchoverGrace
	}
	for _, r := range d.state.OpenRecords() {
		if r.Cluster == req.Cluster {
			return SwitchoverResult{RecordID: r.ID}, fmt.Errorf("%w: %s record %d is open", ErrFailoverInProgress, r.Kind, r.ID)
		}
	}
	if err := d.waitIdle(ctx, req.Cluster, idleWait); err != nil {
		return SwitchoverResult{}, err
	}
	cs, ok := d.state.Cluster(req.Cluster)
	if !ok || cs.Master == "" {
		return SwitchoverResult{}, fmt.Errorf("%w: no master recorded for %s yet", ErrSwitchoverRefused, req.Cluster)
	}
	old := cs.Master
	if req.To != "" && strings.EqualFold(req.To, old) {
		return SwitchoverResult{}, fmt.Errorf("%w: %s is already the master", ErrTargetIneligible, req.To)
	}
	cred := topology.Credentials{User: cc.User, Password: cc.Password}
	mc, err := d.exec.dial(ctx, old, cred)
	if err != nil {
		return SwitchoverResult{}, fmt.Errorf("%w: master %s unreachable: %w", ErrSwitchoverRefused, old, err)
	}
	defer mc.Close()
	mst, err := mc.Read(ctx)
	if err != nil {
		return SwitchoverResult{}, fmt.Errorf("%w: master %s unreadable: %w", ErrSwitchoverRefused, old, err)
	}
	if mst.ReadOnly {
		return SwitchoverResult{}, fmt.Errorf("%w: master %s is read_only", ErrSwitchoverRefused, old)
	}
	sel, err := d.plan(ctx, cc, old, req.To)
	if err != nil {
		return SwitchoverResult{DryRun: req.DryRun, OldMaster: old, Selection: &sel, Message: err.Error()}, err
	}
	target := sel.Chosen
	if err := d.checkTarget(ctx, cc, old, mc, target); err != nil {
		return SwitchoverResult{DryRun: req.DryRun, OldMaster: old, Target: target, Selection: &sel, Message: err.Error()}, err
	}
	if req.DryRun {
		return SwitchoverResult{DryRun: true, OldMaster: old, Target: target, Selection: &sel,
			Message: fmt.Sprintf("dry run: would switch the master of %s from %s to %s", req.Cluster, old, target)}, nil
	}
	ev, err := json.Marshal(SwitchoverEvidence{By: req.By, Target: target, Timeout: req.Timeout, Grace: req.Grace})
	if err != nil {
		return SwitchoverResult{}, fmt.Errorf("encode evidence: %w", err)
	}
	if err := d.group.VerifyLeader(ctx); err != nil {
		return SwitchoverResult{}, fmt.Errorf("verify leadership: %w", err)
	}
	id, err := d.apply(ctx, fsm.RecordOpenType, fsm.RecordOpen{Cluster: req.Cluster, Kind: fsm.KindSwitchover,
		Trigger: "manual", OldMaster: old, OpenedBy: req.By, At: d.cfg.Now(), Evidence: ev})
	if errors.Is(err, fsm.ErrRecordOpen) {
		return SwitchoverResult{}, fmt.Errorf("%w: %w", ErrFailoverInProgress, err)
	}
	if err != nil {
		return SwitchoverResult{}, fmt.Errorf("open switchover record: %w", err)
	}
	recID, _ := id.(uint64)
	if _, err := d.apply(ctx, fsm.CandidatesType, fsm.Candidates{RecordID: recID, Candidates: sel.FSMCandidates()}); err != nil {
		d.log.Warn("journal switchover candidates", "cluster", req.Cluster, "record", recID, "err", err)
	}
	if !d.startExecutor(req.Cluster, recID) {
		return SwitchoverResult{RecordID: recID, OldMaster: old, Target: target, Selection: &sel,
			Message: "switchover record opened; leadership ended before it started: the next leader rolls it back"}, nil
	}
	d.log.Warn("switchover started", "cluster", req.Cluster, "record", recID, "by", req.By, "from", old, "to", target)
	return SwitchoverResult{RecordID: recID, OldMaster: old, Target: target, Selection: &sel,
		Message: fmt.Sprintf("switchover of %s from %s to %s started (record %d)", req.Cluster, old, target, recID)}, nil
}

// idleWait is how long a switchover request waits for the executor of the
// cluster's previous record to finish (a closed switchover still releases
// the old master's lock for a moment).
const idleWait = 2 * time.Second

// waitIdle waits, at most d, until no executor goroutine runs for cluster.
func (d *Runner) waitIdle(ctx context.Context, cluster string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		d.mu.Lock()
		id, busy := d.running[cluster]
		d.mu.Unlock()
		if !busy {
			return nil
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%w: the executor of record %d is still running", ErrFailoverInProgress, id)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// checkTarget refuses a target that does not replicate from the master with
// both threads running and a lag under the limit, or that holds
// transactions the master lacks (errant GTIDs).
func (d *Runner) checkTarget(ctx context.Context, cc ClusterConfig, old string, mc Instance, target string) error {
	c, err := d.exec.dial(ctx, target, topology.Credentials{User: cc.User, Password: cc.Password})
	if err != nil {
		return fmt.Errorf("%w: target %s unreachable: %w", ErrSwitchoverRefused, target, err)
	}
	defer c.Close()
	in, err := c.Read(ctx)
	if err != nil {
		return fmt.Errorf("%w: target %s unreadable: %w", ErrSwitchoverRefused, target, err)
	}
	rs := in.Replica
	switch {
	case rs == nil:
		return fmt.Errorf("%w: target %s is not a replica", ErrSwitchoverRefused, target)
	case !sameAddr(in.MasterKey(), old):
		return fmt.Errorf("%w: target %s replicates from %s, not from the master %s", ErrSwitchoverRefused, target, in.MasterKey(), old)
	case !rs.Running():
		return fmt.Errorf("%w: target %s replication not running (IO %s, SQL %t) %s %s", ErrSwitchoverRefused, target,
			rs.IORunning, rs.SQLRunning, rs.LastIOError, rs.LastSQLError)
	}
	lag := time.Duration(0)
	if rs.SecondsBehind != nil {
		lag = time.Duration(*rs.SecondsBehind) * time.Second
	}
	lag = max(lag, time.Duration(rs.SQLDelay)*time.Second)
	if cc.MaxLag > 0 && lag > cc.MaxLag {
		return fmt.Errorf("%w: target %s lags %s (delay %ds), over the limit %s", ErrSwitchoverRefused, target, lag, rs.SQLDelay, cc.MaxLag)
	}
	// The master is read after the target, so a target that is merely
	// up to date is never seen ahead of it.
	master, err := mc.Read(ctx)
	if err != nil {
		return fmt.Errorf("%w: master %s unreadable: %w", ErrSwitchoverRefused, old, err)
	}
	return errantOnTarget(cc, master, in)
}

// errantOnTarget refuses a target that has executed transactions the
// master lacks (GTID setups only): promoting it would hand them to every
// replica. A MariaDB master that has not binlogged a GTID yet has the
// empty GTID position, not a file coordinate, so a fresh cluster compares.
func errantOnTarget(cc ClusterConfig, master, target *topology.Instance) error {
	if !cc.useGTID() {
		return nil
	}
	mp, err1 := master.BinlogPosition()
	if master.Version.Flavor == topology.MariaDB && master.GTIDBinlogPos == "" {
		mp, err1 = topology.MariaDBGTIDPosition(nil), nil
	}
	tp, err2 := target.ExecutedPosition()
	if err1 != nil || err2 != nil {
		return nil
	}
	o, err := topology.ComparePositions(tp, mp)
	if err != nil || o == topology.Ahead || o == topology.Diverged {
		return fmt.Errorf("%w: target %s has transactions the master lacks (errant GTIDs: target %s, master %s)",
			ErrSwitchoverRefused, target.Key, tp, mp)
	}
	return nil
}

// sameAddr compares host:port addresses, treating localhost and 127.0.0.1
// alike.
func sameAddr(a, b string) bool {
	if strings.EqualFold(a, b) {
		return true
	}
	ah, ap := hostPort(a)
	bh, bp := hostPort(b)
	norm := func(h string) string {
		if strings.EqualFold(h, "localhost") {
			return "127.0.0.1"
		}
		return strings.ToLower(h)
	}
	return ap == bp && norm(ah) == norm(bh)
}
