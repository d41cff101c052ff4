package recovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
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

// DeciderConfig configures the leader's decision loop.
type DeciderConfig struct {
	// NodeID is this controller's id, written into records.
	NodeID string
	// AntiFlap is recovery.anti_flap.
	AntiFlap time.Duration
	// Now is the clock for command times; nil means time.Now.
	Now func() time.Time
	// Logger receives decisions; nil discards.
	Logger *slog.Logger
}

// Decider is the leader-only loop that turns a DeadConfirmed assessment into
// a committed decision. It runs inside consensus' OnLeader, so it starts
// after raft's barrier and stops when leadership is lost.
type Decider struct {
	cfg    DeciderConfig
	group  Group
	state  History
	assess Assessor
	log    *slog.Logger

	mu sync.Mutex
	// decided holds, per cluster, the master already decided dead: one
	// decision per incident. Set to "" when the master is seen healthy again.
	decided map[string]string
}

// NewDecider builds a decision loop.
func NewDecider(cfg DeciderConfig, group Group, state History, assess Assessor) *Decider {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Decider{cfg: cfg, group: group, state: state, assess: assess, log: log, decided: map[string]string{}}
}

// Evidence is what a detection record keeps: the assessment that fired and
// the leader's own re-probe right before it decided.
type Evidence struct {
	Assessment detector.Assessment  `json:"assessment"`
	Recheck    detector.ProbeResult `json:"recheck"`
	Rule       string               `json:"rule"`
}

// resweep is how often the loop re-reads every cluster's current assessment
// besides reacting to updates: a leader elected while nothing changes still
// sees every cluster, and a failed decision is retried.
const resweep = 2 * time.Second

// Run handles assessments until ctx ends (leadership lost or shutdown). It
// starts from the current assessments, not from updates queued while this
// controller was a follower.
func (d *Decider) Run(ctx context.Context) {
	for {
		select {
		case <-d.assess.Updates():
			continue
		default:
		}
		break
	}
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

func (d *Decider) sweep(ctx context.Context) {
	for _, a := range d.assess.Assessments() {
		d.handleLogged(ctx, a)
	}
}

func (d *Decider) handleLogged(ctx context.Context, a detector.Assessment) {
	if err := d.Handle(ctx, a); err != nil && ctx.Err() == nil {
		d.log.Warn("decision failed", "cluster", a.Cluster, "master", a.Master, "err", err)
	}
}

// Handle acts on one assessment. Only DeadConfirmed leads to a record; a
// healthy master ends the current incident so a later death is decided anew.
func (d *Decider) Handle(ctx context.Context, a detector.Assessment) error {
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
	if d.alreadyDecided(a.Cluster, a.Master) {
		return nil
	}
	for _, r := range d.state.OpenRecords() {
		if r.Cluster == a.Cluster {
			d.log.Info("record already open, no second decision", "cluster", a.Cluster, "record", r.ID)
			return nil
		}
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
	if err := d.group.VerifyLeader(ctx); err != nil {
		return fmt.Errorf("verify leadership before deciding: %w", err)
	}
	ev, err := json.Marshal(Evidence{Assessment: a, Recheck: re, Rule: a.Reason})
	if err != nil {
		return fmt.Errorf("encode evidence: %w", err)
	}
	now := d.cfg.Now()
	id, err := d.apply(ctx, fsm.RecordOpenType, fsm.RecordOpen{
		Cluster: a.Cluster, Kind: fsm.KindDetection, Trigger: "automatic", OldMaster: a.Master,
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
		"down_votes", a.DownCount, "needed", a.Needed, "zones", a.Zones)
	detail := "detected; no recovery configured"
	if cs, ok := d.state.Cluster(a.Cluster); ok {
		if allowed, why := AutoFailoverAllowed(cs, now, d.cfg.AntiFlap); !allowed {
			detail = "detected; automatic failover refused: " + why
		}
	}
	_, err = d.apply(ctx, fsm.RecordCloseType, fsm.RecordClose{RecordID: recID, At: d.cfg.Now(), Result: fsm.ResultDetected, Detail: detail})
	if err != nil {
		return fmt.Errorf("close record %d: %w", recID, err)
	}
	return nil
}

// recordFirstMaster writes a healthy master into the replicated state when
// none is recorded yet (a cluster seen for the first time), so every
// controller and /v1/clusters/{name}/master agree on it. A recorded master is
// only ever changed by a failover or switchover record.
func (d *Decider) recordFirstMaster(ctx context.Context, a detector.Assessment) error {
	if cs, ok := d.state.Cluster(a.Cluster); ok && cs.Master != "" {
		return nil
	}
	if _, err := d.apply(ctx, fsm.SetMasterType, fsm.SetMaster{Cluster: a.Cluster, Master: a.Master, At: d.cfg.Now()}); err != nil {
		return fmt.Errorf("record master of %s: %w", a.Cluster, err)
	}
	d.log.Info("recorded master", "cluster", a.Cluster, "master", a.Master)
	return nil
}

func (d *Decider) apply(ctx context.Context, t fsm.MessageType, payload any) (any, error) {
	cmd, err := fsm.Encode(t, payload)
	if err != nil {
		return nil, err
	}
	return d.group.Apply(ctx, cmd)
}

// alreadyDecided reports whether this master's death was decided already,
// by this leader or (read from the replicated history) by a previous one.
func (d *Decider) alreadyDecided(cluster, master string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if m, ok := d.decided[cluster]; ok {
		return m == master
	}
	// A new leader has no memory of the incident: the newest record tells
	// whether this master was already declared dead.
	if recs := d.state.History(cluster, 1); len(recs) == 1 {
		r := recs[0]
		if r.OldMaster == master && r.Kind == fsm.KindDetection && !r.IsOpen() {
			d.decided[cluster] = master
			return true
		}
	}
	return false
}

func (d *Decider) markDecided(cluster, master string) {
	d.mu.Lock()
	d.decided[cluster] = master
	d.mu.Unlock()
}
