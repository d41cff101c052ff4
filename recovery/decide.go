package recovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumha/quorumha/detector"
	"github.com/quorumha/quorumha/fsm"
)

// Group is what the decision loop needs from the consensus node.
type Group interface {
	// Apply commits an encoded fsm command on the leader.
	Apply(ctx context.Context, cmd []byte) (any, error)
	// VerifyLeader confirms this node still leads (a quorum answers).
	VerifyLeader(ctx context.Context) error
	// Term is the current raft term, journalled with every step.
	Term() uint64
}

// History is what the decision loop reads from the replicated state.
type History interface {
	Cluster(name string) (fsm.ClusterState, bool)
	OpenRecords() []fsm.Record
	History(cluster string, limit int) []fsm.Record
	Record(id uint64) (fsm.Record, bool)
}

// Assessor is what the decision loop needs from the detector.
type Assessor interface {
	// Updates delivers assessments as they change (newest wins).
	Updates() <-chan detector.Assessment
	// Assessments returns the latest assessment of every cluster.
	Assessments() []detector.Assessment
	// Recheck probes the cluster's master once more, right now.
	Recheck(ctx context.Context, cluster string) (detector.ProbeResult, error)
}

// RunnerConfig configures the leader's recovery runner.
type RunnerConfig struct {
	// NodeID is this controller's id, written into records.
	NodeID string
	// AntiFlap is recovery.anti_flap.
	AntiFlap time.Duration
	// Clusters are the configured clusters; a cluster not listed here is
	// only detected, never recovered.
	Clusters []ClusterConfig
	// ClustersFunc, when set, is called instead of reading Clusters, each
	// time the runner needs them: the clusters come from the replicated
	// state and change while a leader leads.
	ClustersFunc func() []ClusterConfig
	// Executor configures failover execution (NodeID, Now and Logger are
	// taken from this config when unset there).
	Executor ExecutorConfig
	// Now is the clock for command times; nil means time.Now.
	Now func() time.Time
	// Logger receives decisions; nil discards.
	Logger *slog.Logger
}

// Runner is the leader-only object of one leadership term: it turns a
// DeadConfirmed assessment into a committed failover record and runs it,
// resumes the records a previous leader left open, and runs manual
// failovers. It lives inside consensus' OnLeader, so it starts after raft's
// barrier; every goroutine it starts is bound to Run's context and waited
// for before Run returns.
type Runner struct {
	cfg    RunnerConfig
	group  Group
	state  History
	assess Assessor
	exec   *Executor
	log    *slog.Logger

	mu sync.Mutex
	// decided holds, per cluster, the master already decided dead: one
	// decision per incident. Set to "" when the master is seen healthy again.
	decided map[string]string
	// running holds the clusters whose record an executor goroutine runs.
	running map[string]uint64
	// runCtx is Run's context (nil before Run and after it returns): the
	// lifetime of executor goroutines, never a request's.
	runCtx context.Context
	wg     sync.WaitGroup
	// hooks, when set, replace the configured clusters' hook paths: a
	// config reload (SIGHUP) changes them without a new leadership term.
	// A failover takes its cluster's hooks when it starts (or resumes).
	hooks atomic.Pointer[map[string]ClusterHooks]
}

// SetHooks replaces the hook paths of the clusters named in hooks, for the
// failovers, switchovers and checks that start from now on; clusters not
// named keep their configured hooks.
func (d *Runner) SetHooks(hooks map[string]ClusterHooks) {
	h := maps.Clone(hooks)
	d.hooks.Store(&h)
}

// NewRunner builds a runner. dial and hooks are how the executor reaches
// instances and runs hooks.
func NewRunner(cfg RunnerConfig, group Group, state History, assess Assessor, dial Dialer, hooks HookRun) *Runner {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ec := cfg.Executor
	if ec.NodeID == "" {
		ec.NodeID = cfg.NodeID
	}
	if ec.Now == nil {
		ec.Now = cfg.Now
	}
	if ec.Logger == nil {
		ec.Logger = log
	}
	return &Runner{cfg: cfg, group: group, state: state, assess: assess, log: log,
		exec:    NewExecutor(ec, group, state, dial, hooks),
		decided: map[string]string{}, running: map[string]uint64{}}
}

// Evidence is what a detection record keeps: the assessment that fired and
// the leader's own re-probe right before it decided.
type Evidence struct {
	Assessment detector.Assessment  `json:"assessment"`
	Recheck    detector.ProbeResult `json:"recheck"`
	Rule       string               `json:"rule"`
	// SecondaryCheck is the cluster's hooks.secondary_check run right
	// before the decision (absent when none is configured).
	SecondaryCheck *SecondaryCheck `json:"secondary_check,omitempty"`
}

// resweep is how often the loop re-reads every cluster's current assessment
// besides reacting to updates: a leader elected while nothing changes still
// sees every cluster, and a failed decision is retried.
const resweep = 2 * time.Second

// Run handles assessments until ctx ends (leadership lost or shutdown). It
// first resumes every failover record a previous leader left open, then
// starts from the current assessments, not from updates queued while this
// controller was a follower. It returns once every executor it started has
// stopped.
func (d *Runner) Run(ctx context.Context) {
	d.mu.Lock()
	d.runCtx = ctx
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.runCtx = nil
		d.mu.Unlock()
		d.wg.Wait()
	}()
	for {
		select {
		case <-d.assess.Updates():
			continue
		default:
		}
		break
	}
	d.resumeOpen(ctx)
	tick := time.NewTicker(resweep)
	defer tick.Stop()
	d.sweep(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			d.sweep(ctx)
		case a := <-d.assess.Updates():
			d.handleLogged(ctx, a)
		}
	}
}

// sweep decides on every current assessment, then does the upkeep that
// talks to old and recorded masters (fenceReturned, unfenceRecordedMasters)
// unless an assessment update arrives first: those calls wait up to seconds
// on a master whose host has just vanished (the recorded master's agent is
// asked while the master still looks healthy), and a decision waiting
// behind them was committed 3.3 s after its quorum formed in a chaos run.
// The update cancels the upkeep, which is waited for (it never runs beside
// a decision on this leader) and done again at the next sweep.
func (d *Runner) sweep(ctx context.Context) {
	for _, a := range d.assess.Assessments() {
		d.handleLogged(ctx, a)
	}
	uctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() { // owned by sweep: waited for below
		defer close(done)
		d.fenceReturned(uctx)
		d.unfenceRecordedMasters(uctx)
	}()
	select {
	case <-done:
	case a := <-d.assess.Updates():
		cancel()
		<-done
		d.handleLogged(ctx, a)
	}
}

// resumeOpen handles the records a previous leader left open (safety rule
// 4): failovers are resumed from their journal; a detection record (its
// leader died between opening and closing it) is closed.
func (d *Runner) resumeOpen(ctx context.Context) {
	for _, r := range d.state.OpenRecords() {
		switch r.Kind {
		case fsm.KindSwitchover:
			d.log.Warn("resuming switchover left open by a previous leader", "cluster", r.Cluster, "record", r.ID, "steps", len(r.Steps))
			d.startExecutor(r.Cluster, r.ID)
		case fsm.KindFailover:
			if d.answeredBeforeFence(ctx, r) {
				continue
			}
			d.log.Warn("resuming failover left open by a previous leader", "cluster", r.Cluster, "record", r.ID, "steps", len(r.Steps))
			d.markDecided(r.Cluster, r.OldMaster)
			d.startExecutor(r.Cluster, r.ID)
		case fsm.KindRejoin:
			// A rejoin is not resumed: its steps keep what they learnt in
			// memory, and a flashback cut off halfway cannot be told from
			// one not begun. Closing it unblocks the cluster; the operator
			// checks the instance and asks again (the check step re-reads
			// everything).
			detail := "leadership changed during the rejoin; check the instance and run rejoin again"
			if stepBegan(r, StepRejoinFlashback) {
				detail = "leadership changed after the flashback began: the instance may be partly reverted; compare it with the saved file and the master, re-clone it if unsure"
			}
			if _, err := d.apply(ctx, fsm.RecordCloseType, fsm.RecordClose{RecordID: r.ID, At: d.cfg.Now(),
				Result: fsm.ResultAborted, Detail: detail}); err != nil {
				d.log.Warn("close rejoin record", "cluster", r.Cluster, "record", r.ID, "err", err)
			}
		case fsm.KindDetection:
			if _, err := d.apply(ctx, fsm.RecordCloseType, fsm.RecordClose{RecordID: r.ID, At: d.cfg.Now(),
				Result: fsm.ResultDetected, Detail: "detected; closed by the next leader"}); err != nil {
				d.log.Warn("close detection record", "cluster", r.Cluster, "record", r.ID, "err", err)
			}
		default:
			d.log.Warn("open record of a kind this leader does not resume", "cluster", r.Cluster, "record", r.ID, "kind", r.Kind)
		}
	}
}

// answeredBeforeFence re-checks, for a failover record left open before its
// fence began, that the master is still dead: the previous leader decided
// on evidence that may be long stale (it died, or the group had no leader
// for a while). If the master answers the leader's probe now the record is
// closed as aborted, nothing having been changed, and true is returned. A
// forced manual failover (the operator knew it was alive) is resumed as is.
func (d *Runner) answeredBeforeFence(ctx context.Context, r fsm.Record) bool {
	if stepBegan(r, StepFence) {
		return false
	}
	if ev, ok := manualEvidence(r); ok && ev.Force {
		return false
	}
	re, err := d.assess.Recheck(ctx, r.Cluster)
	switch {
	case err != nil:
		d.log.Warn("recheck before resuming a failover failed: resuming on the recorded evidence", "cluster", r.Cluster, "record", r.ID, "err", err)
		return false
	case !re.OK && !re.Reason.Alive():
		return false
	case re.Instance != "" && !strings.EqualFold(re.Instance, r.OldMaster):
		return false // the probe was not of the record's master: it proves nothing
	}
	if err := d.group.VerifyLeader(ctx); err != nil {
		d.log.Warn("verify leadership before closing a failover", "cluster", r.Cluster, "record", r.ID, "err", err)
		return true // not leading: the next leader decides
	}
	detail := fmt.Sprintf("master answered again before fencing (%s): %s still the master; nothing was changed", re.Reason, r.OldMaster)
	if _, err := d.apply(ctx, fsm.RecordCloseType, fsm.RecordClose{RecordID: r.ID, At: d.cfg.Now(), Result: fsm.ResultAborted, Detail: detail}); err != nil {
		d.log.Warn("close failover whose master answered again", "cluster", r.Cluster, "record", r.ID, "err", err)
		return true
	}
	d.mu.Lock()
	d.decided[r.Cluster] = "" // alive: a later death is a new incident
	d.mu.Unlock()
	d.log.Warn("failover left open before its fence closed: the master answered again", "cluster", r.Cluster, "record", r.ID, "master", r.OldMaster, "reason", re.Reason)
	return true
}

// startExecutor runs a failover record in a goroutine bound to Run's
// context, at most one per cluster. It reports false when Run is not
// running (no leadership term to bind the goroutine to).
func (d *Runner) startExecutor(cluster string, id uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx := d.runCtx
	if ctx == nil {
		return false
	}
	if _, busy := d.running[cluster]; busy {
		return true
	}
	cc, ok := d.clusterConfig(cluster)
	if !ok {
		d.log.Error("failover record of an unconfigured cluster", "cluster", cluster, "record", id)
		return false
	}
	d.running[cluster] = id
	d.wg.Add(1)
	go func() { // owned by the Runner: Run waits for it
		defer d.wg.Done()
		res, err := d.exec.Execute(ctx, cc, id)
		d.mu.Lock()
		delete(d.running, cluster)
		d.mu.Unlock()
		if err != nil {
			if ctx.Err() == nil {
				d.log.Warn("failover stopped; record stays open", "cluster", cluster, "record", id, "err", err)
			}
			return
		}
		if res == fsm.ResultAborted {
			rec, ok := d.state.Record(id)
			switch {
			case ok && needsOperator(rec):
				d.log.Error("failover aborted at its fence or after its promote began: not retried automatically; an operator must check the instances, then run a manual failover or ack the cluster",
					"cluster", cluster, "record", id, "detail", rec.Detail)
			case ok:
				// Aborted before anything changed a server's role: it no
				// longer blocks, the next assessment decides again with a
				// new record.
				d.mu.Lock()
				d.decided[cluster] = ""
				d.mu.Unlock()
			}
		}
	}()
	return true
}

// needsOperator reports an aborted failover that is never decided again
// automatically: aborted by a failing fence hook, or aborted at or after its
// promote step began (a replica may have been promoted, or half promoted:
// only an operator can tell). A manual failover, or an ack given after the
// record closed, takes it from there.
func needsOperator(rec fsm.Record) bool {
	return rec.Kind == fsm.KindFailover && rec.Result == fsm.ResultAborted &&
		(abortedAtFence(rec) || stepBegan(rec, StepPromote))
}

// abortedAtFence reports a failover aborted by a failing fence hook: an
// operator must look at it, so it is not retried every sweep.
func abortedAtFence(rec fsm.Record) bool {
	for _, s := range rec.Steps {
		if s.Name == StepFence && s.Outcome == fsm.OutcomeFailed {
			return true
		}
	}
	return false
}

// clusters returns the clusters as they are now.
func (d *Runner) clusters() []ClusterConfig {
	if d.cfg.ClustersFunc != nil {
		return d.cfg.ClustersFunc()
	}
	return d.cfg.Clusters
}

func (d *Runner) clusterConfig(name string) (ClusterConfig, bool) {
	for _, c := range d.clusters() {
		if c.Name == name {
			if h := d.hooks.Load(); h != nil {
				if hk, ok := (*h)[name]; ok {
					c.Hooks = hk
				}
			}
			return c, true
		}
	}
	return ClusterConfig{}, false
}

func (d *Runner) handleLogged(ctx context.Context, a detector.Assessment) {
	if err := d.Handle(ctx, a); err != nil && ctx.Err() == nil {
		d.log.Warn("decision failed", "cluster", a.Cluster, "master", a.Master, "err", err)
	}
}

// Handle acts on one assessment. Only DeadConfirmed leads to a record; a
// healthy master ends the current incident so a later death is decided anew.
// A configured cluster gets a failover record (or, under anti-flap or
// maintenance, a refused one, once per incident); an unknown one only a
// detection record.
func (d *Runner) Handle(ctx context.Context, a detector.Assessment) error {
	if a.State == detector.AssessHealthy {
		// "" (not a deleted key) records that this leader saw the master
		// healthy, which outranks an older decision found in the history.
		d.mu.Lock()
		d.decided[a.Cluster] = ""
		d.mu.Unlock()
		return d.recordFirstMaster(ctx, a)
	}
	if a.State != detector.AssessDeadConfirmed {
		return nil
	}
	for _, r := range d.state.OpenRecords() {
		if r.Cluster == a.Cluster {
			if r.Kind == fsm.KindFailover {
				// Left open by an executor that stopped (a journal write
				// failed while still leading): resume it.
				d.startExecutor(r.Cluster, r.ID)
			}
			return nil
		}
	}
	if d.alreadyDecided(a) {
		return nil
	}
	// The leader's own look, right before deciding: a master that answers
	// now is not declared dead on older evidence.
	re, err := d.assess.Recheck(ctx, a.Cluster)
	if err != nil {
		return fmt.Errorf("recheck %s: %w", a.Cluster, err)
	}
	if re.OK || re.Reason.Alive() {
		d.log.Info("master answered the leader's recheck: no decision", "cluster", a.Cluster, "master", a.Master, "reason", re.Reason)
		return nil
	}
	// MHA's secondary_check_script, when configured: asked last, right
	// before the decision is committed; anything but "dead from every
	// route" keeps the master (MHA keeps monitoring and asks again).
	sc := d.secondaryCheck(ctx, a)
	if sc != nil && !sc.Dead {
		d.log.Warn("secondary check did not confirm the death: no decision", "cluster", a.Cluster, "master", a.Master,
			"exit_code", sc.ExitCode, "verdict", sc.Verdict, "output", sc.Output)
		return nil
	}
	if err := d.group.VerifyLeader(ctx); err != nil {
		return fmt.Errorf("verify leadership before deciding: %w", err)
	}
	ev, err := json.Marshal(Evidence{Assessment: a, Recheck: re, Rule: a.Reason, SecondaryCheck: sc})
	if err != nil {
		return fmt.Errorf("encode evidence: %w", err)
	}
	now := d.cfg.Now()
	_, configured := d.clusterConfig(a.Cluster)
	kind := fsm.KindFailover
	if !configured {
		kind = fsm.KindDetection
	}
	id, err := d.apply(ctx, fsm.RecordOpenType, fsm.RecordOpen{
		Cluster: a.Cluster, Kind: kind, Trigger: "automatic", OldMaster: a.Master,
		OpenedBy: d.cfg.NodeID, At: now, Evidence: ev,
	})
	if errors.Is(err, fsm.ErrRecordOpen) {
		return nil // another decision raced ours into the log: it stands
	}
	if err != nil {
		return fmt.Errorf("commit decision: %w", err)
	}
	recID, _ := id.(uint64)
	d.markDecided(a.Cluster, a.Master)
	d.log.Warn("master dead: decision committed", "cluster", a.Cluster, "master", a.Master, "record", recID,
		"kind", kind, "down_votes", a.DownCount, "needed", a.Needed, "zones", a.Zones)
	result, detail := fsm.ResultDetected, "detected; no recovery configured for this cluster"
	if configured {
		allowed, why := true, ""
		if cs, ok := d.state.Cluster(a.Cluster); ok {
			allowed, why = AutoFailoverAllowed(cs, now, d.cfg.AntiFlap)
		}
		if allowed {
			d.startExecutor(a.Cluster, recID)
			return nil
		}
		result, detail = fsm.ResultRefused, "automatic failover refused: "+why
	}
	_, err = d.apply(ctx, fsm.RecordCloseType, fsm.RecordClose{RecordID: recID, At: d.cfg.Now(), Result: result, Detail: detail})
	if err != nil {
		return fmt.Errorf("close record %d: %w", recID, err)
	}
	return nil
}

// recordFirstMaster writes a healthy master into the replicated state when
// none is recorded yet (a cluster seen for the first time), so every
// controller and /v1/clusters/{name}/master agree on it. A recorded master is
// only ever changed by a failover or switchover record.
func (d *Runner) recordFirstMaster(ctx context.Context, a detector.Assessment) error {
	if cs, ok := d.state.Cluster(a.Cluster); ok && cs.Master != "" {
		return nil
	}
	if _, err := d.apply(ctx, fsm.SetMasterType, fsm.SetMaster{Cluster: a.Cluster, Master: a.Master, At: d.cfg.Now()}); err != nil {
		return fmt.Errorf("record master of %s: %w", a.Cluster, err)
	}
	d.log.Info("recorded master", "cluster", a.Cluster, "master", a.Master)
	return nil
}

func (d *Runner) apply(ctx context.Context, t fsm.MessageType, payload any) (any, error) {
	cmd, err := fsm.Encode(t, payload)
	if err != nil {
		return nil, err
	}
	return d.group.Apply(ctx, cmd)
}

// alreadyDecided reports whether this incident of the master's death was
// decided already, by this leader or (read from the replicated history) by
// a previous one.
func (d *Runner) alreadyDecided(a detector.Assessment) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	cs, _ := d.state.Cluster(a.Cluster)
	var newest *fsm.Record
	if recs := d.state.History(a.Cluster, 1); len(recs) == 1 {
		newest = &recs[0]
	}
	if m, ok := d.decided[a.Cluster]; ok {
		if m != a.Master {
			return false
		}
		if newest != nil && needsOperator(*newest) && ackedAfter(cs, *newest) {
			d.decided[a.Cluster] = ""
			return false
		}
		return true
	}
	// A new leader has no memory of the incident: the newest record tells
	// whether this incident was already decided.
	if newest != nil && DecidedThisIncident(*newest, a.Master, cs, LastSeenAlive(a)) {
		d.decided[a.Cluster] = a.Master
		return true
	}
	return false
}

// LastSeenAlive is the last time any controller's probe read the assessed
// master successfully, as the assessment's verdicts carry it (zero when no
// controller has seen it answer since it started).
func LastSeenAlive(a detector.Assessment) time.Time {
	var last time.Time
	for _, vs := range [][]detector.Verdict{a.Votes, a.Stale} {
		for _, v := range vs {
			if strings.EqualFold(v.Instance, a.Master) && v.LastPositionAt.After(last) {
				last = v.LastPositionAt
			}
		}
	}
	return last
}

// DecidedThisIncident reports whether rec, the cluster's newest record,
// already decided the current death of master, so a new leader must not
// decide it again. An incident is the time since master was last known
// alive; a record counts only when all of these hold:
//   - it is a closed failover or detection record of master (a switchover,
//     rolled back or not, never declared a death; it also proves the master
//     was alive when it ran);
//   - it was opened after master became the recorded master
//     (cs.MasterSetAt): a master that was replaced and came back is a new
//     incident even though an old record names it;
//   - no controller saw master answer after the record closed
//     (lastAlive): a master that came back and died again is a new incident,
//     however long ago the old record was;
//   - it is not an aborted record that changed nothing (aborted before its
//     fence or promote: the next assessment decides again), and not one that
//     needs an operator (needsOperator) that an operator has acknowledged
//     since.
//
// lastAlive is read on the probing controllers' clocks and the record's
// times on the leaders'; a prober whose clock runs ahead by more than the
// time between the master's last answer and the record's close could make
// an old decision look like a new incident, never the reverse.
func DecidedThisIncident(rec fsm.Record, master string, cs fsm.ClusterState, lastAlive time.Time) bool {
	if rec.IsOpen() || !strings.EqualFold(rec.OldMaster, master) ||
		(rec.Kind != fsm.KindFailover && rec.Kind != fsm.KindDetection) {
		return false
	}
	if rec.Opened.Before(cs.MasterSetAt) {
		return false
	}
	end := rec.Closed
	if end.IsZero() {
		end = rec.Opened
	}
	if lastAlive.After(end) {
		return false
	}
	if rec.Result == fsm.ResultAborted {
		return needsOperator(rec) && !ackedAfter(cs, rec)
	}
	return true
}

// ackedAfter reports an operator's ack of the cluster given after rec closed.
func ackedAfter(cs fsm.ClusterState, rec fsm.Record) bool {
	return !cs.AckedAt.IsZero() && !rec.Closed.IsZero() && cs.AckedAt.After(rec.Closed)
}

func (d *Runner) markDecided(cluster, master string) {
	d.mu.Lock()
	d.decided[cluster] = master
	d.mu.Unlock()
}
