package recovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/topology"
)

// Instance is what a failover does to one MySQL/MariaDB server. It is
// declared here, where it is used; *topology.Conn satisfies it, and tests use
// a fake cluster with positions.
type Instance interface {
	Read(ctx context.Context) (*topology.Instance, error)
	SetReadOnly(ctx context.Context, on bool) error
	SetSemiSyncMaster(ctx context.Context, on bool) error
	KillClientSessions(ctx context.Context, spareIDs ...uint64) ([]topology.Process, error)
	// FenceWrites sets read_only while killing client sessions, so a commit
	// waiting for a semi-sync acknowledgement cannot hold the fence back.
	FenceWrites(ctx context.Context, spareIDs ...uint64) ([]topology.Process, error)
	StopReplica(ctx context.Context, threads topology.ReplicaThreads) error
	StartReplica(ctx context.Context, threads topology.ReplicaThreads) error
	ChangeMaster(ctx context.Context, opts topology.ChangeMasterOptions) error
	// SetGTIDSlavePos sets MariaDB's gtid_slave_pos (replication stopped).
	SetGTIDSlavePos(ctx context.Context, pos string) error
	ResetReplicaAll(ctx context.Context) error
	WaitForPosition(ctx context.Context, target topology.Position) error
	WaitRelayLogApplied(ctx context.Context) error
	Close() error
}

// Dialer connects to one instance of a cluster with the cluster's
// administrative credentials.
type Dialer func(ctx context.Context, addr string, cred topology.Credentials) (Instance, error)

// HookRun runs one hook; HookRunner.Run satisfies it.
type HookRun func(ctx context.Context, path string, args []string, env ...string) HookResult

// ClusterInstance is one configured server of a cluster, in config order.
type ClusterInstance struct {
	Address         string
	Zone            string
	CandidateMaster bool
	NoMaster        bool
	CheckReplDelay  bool
	// Agent is the base URL of the binlog agent beside this server ("" =
	// none): a failover of this server salvages its binlog through it.
	Agent string
}

// ClusterHooks are the hook paths of a cluster ("" = not configured).
type ClusterHooks struct {
	IPFailover string
	// OnlineChange is MHA's master_ip_online_change_script (switchover).
	OnlineChange string
	Shutdown     string
	Report       string
	// SecondaryCheck is MHA's secondary_check_script, asked right before a
	// death is decided (exit 0 = dead from every route).
	SecondaryCheck string
}

// ClusterConfig is what recovery needs to know about one cluster: plain
// values copied from config.Cluster by the caller, so recovery does not
// depend on the config package.
type ClusterConfig struct {
	Name     string
	User     string // administrative account
	Password string
	// ReplUser and ReplPassword go into the change of master. With ReplUser empty
	// the replica's current Master_User is kept (and said so in the step).
	ReplUser        string
	ReplPassword    string
	SSHUser         string
	ReplicationMode string // "gtid" (default) or "file"
	MaxLag          time.Duration
	Hooks           ClusterHooks
	Instances       []ClusterInstance
	// Conf is passed to the report hook as --conf (the config file path).
	Conf string
	// HeartbeatPeriod is the MASTER_HEARTBEAT_PERIOD set whenever a
	// replica is pointed at a master (detector.replica_heartbeat): the
	// detector's replica view counts two periods without events or
	// heartbeats as a lost master. 0 leaves the servers' period.
	HeartbeatPeriod time.Duration
}

func (c ClusterConfig) useGTID() bool { return c.ReplicationMode != "file" }

// ExecutorConfig configures failover execution.
type ExecutorConfig struct {
	// NodeID is this controller's id, journalled as the step leader.
	NodeID string
	// ApplyTimeout bounds waiting for relay logs and catch-up (recovery.apply_timeout).
	ApplyTimeout time.Duration
	// StepDelay is TEST-ONLY: a pause before every step, so end-to-end tests
	// can kill the leader in the middle of a failover. The controller sets
	// it from QUORUMHA_TEST_STEP_DELAY only in a binary built with the
	// quorumha_testhooks tag; unit tests set it directly. 0 in production.
	StepDelay time.Duration
	// SalvagePause is TEST-ONLY, like StepDelay (QUORUMHA_TEST_SALVAGE_PAUSE):
	// a pause after a file/position salvage applied onto a replica other
	// than the new master, before the salvage is journalled.
	SalvagePause time.Duration
	// PromotePause is TEST-ONLY, like StepDelay (QUORUMHA_TEST_PROMOTE_PAUSE):
	// a pause at the start of a switchover's promote step, once its begin
	// is journalled, so end-to-end tests can kill the leader inside it.
	PromotePause time.Duration
	// Agents connects to a dead master's binlog agent; with Agents or
	// ApplyBinlog nil the salvage step is skipped (and says so).
	Agents AgentDialer
	// ApplyBinlog applies salvaged binlog files (ExecBinlogApplier).
	ApplyBinlog BinlogApplier
	// SalvageTimeout bounds talking to the agent (recovery.salvage_timeout):
	// an agent that does not answer in time is given up, and the failover
	// goes on with the possible loss recorded.
	SalvageTimeout time.Duration
	// SalvageConnectTimeout (recovery.salvage_connect_timeout) is how long
	// the dead master's agent may refuse or ignore TCP connections before
	// salvage gives it up at once; 0 means 1s. The run starts trying to
	// connect when the failover starts (see agentReach).
	SalvageConnectTimeout time.Duration
	// DialAgentTCP opens a TCP connection to an agent's host:port, only to
	// learn that it accepts one (NetDialAgentTCP); nil runs no early probe,
	// and salvage then learns it from the agent client's connect timeout.
	DialAgentTCP func(ctx context.Context, addr string) (net.Conn, error)
	// FenceMode is FenceRequired ("" means it) or FenceBestEffort.
	FenceMode string
	// FenceAgents connects to a fence target's host agent (the agent proof,
	// and clearing an agent's fence before its server is promoted); nil
	// never proves agent and clears nothing.
	FenceAgents FenceAgentDialer
	// Lease answers the lease_expired fence proof; nil never proves it.
	Lease LeaseWitness
	// RewindDir is where a rejoin with --rewind saves the errant
	// transactions it reverts (node.data_dir/rewind); "" refuses rewinds.
	RewindDir string
	// Flashback reverts saved binlog files on an instance
	// (ExecFlashbackApplier); nil refuses rewinds.
	Flashback BinlogApplier
	// Now is the clock for journal times; nil means time.Now.
	Now func() time.Time
	// Logger receives progress; nil discards.
	Logger *slog.Logger
	// Metrics observes hook runs; nil observes nothing.
	Metrics Metrics
}

// Executor runs failover records step by step, journal first: every step's
// StepBegin is committed before the step touches anything and its StepEnd
// after, so a new leader knows exactly how far its predecessor got.
type Executor struct {
	cfg   ExecutorConfig
	group Group
	state History
	dial  Dialer
	hooks HookRun
	log   *slog.Logger
}

// NewExecutor builds an executor.
func NewExecutor(cfg ExecutorConfig, group Group, state History, dial Dialer, hooks HookRun) *Executor {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ApplyTimeout <= 0 {
		cfg.ApplyTimeout = 60 * time.Second
	}
	if cfg.SalvageTimeout <= 0 {
		cfg.SalvageTimeout = 10 * time.Second
	}
	if cfg.SalvageConnectTimeout <= 0 {
		cfg.SalvageConnectTimeout = time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Executor{cfg: cfg, group: group, state: state, dial: dial, hooks: hooks, log: log}
}

// stepResult is how a step ended. close, when set, closes the record with
// that result right after the step's end is journalled.
type stepResult struct {
	outcome fsm.Outcome
	detail  string
	close   fsm.Result
}

func stepOK(format string, args ...any) stepResult {
	return stepResult{outcome: fsm.OutcomeOK, detail: fmt.Sprintf(format, args...)}
}

func stepWarning(format string, args ...any) stepResult {
	return stepResult{outcome: fsm.OutcomeWarning, detail: fmt.Sprintf(format, args...)}
}

func stepSkipped(format string, args ...any) stepResult {
	return stepResult{outcome: fsm.OutcomeSkipped, detail: fmt.Sprintf(format, args...)}
}

func stepFailed(result fsm.Result, format string, args ...any) stepResult {
	return stepResult{outcome: fsm.OutcomeFailed, detail: fmt.Sprintf(format, args...), close: result}
}

// operatorNote ends the detail of a failover aborted at its fence or after
// its promote began: automatic failover does not decide that incident again.
const operatorNote = "not retried automatically: check the instances, then run a manual failover (quorumha failover) or ack the cluster (quorumha ack) to let automatic failover decide again"

// Execute runs (or resumes) failover record id of cluster cc until it is
// closed, leadership is lost or ctx ends. It returns the record's final
// result. A resumed record continues from NextStep of its journal and reuses
// the journalled choice of new master.
func (e *Executor) Execute(ctx context.Context, cc ClusterConfig, id uint64) (fsm.Result, error) {
	run := &failoverRun{e: e, cc: cc, id: id, conns: map[string]Instance{}, log: e.log.With("cluster", cc.Name, "record", id)}
	defer run.closeConns()
	if rec, found := e.state.Record(id); found && rec.Kind == fsm.KindSwitchover {
		return e.executeSwitchover(ctx, run)
	} else if found && rec.Kind == fsm.KindRejoin {
		return e.executeRejoin(ctx, run)
	}
	plan := FailoverPlan()
	// Learn early, while fence and the steps before salvage run, whether
	// the old master's agent still accepts connections, so salvage does
	// not spend its connect timeout after the decision when the master's
	// host vanished.
	defer run.startAgentReach(ctx)()
	for {
		rec, found := e.state.Record(id)
		if !found {
			return "", fmt.Errorf("record %d: %w", id, fsm.ErrNoSuchRecord)
		}
		if !rec.IsOpen() {
			return rec.Result, nil
		}
		run.rec = rec
		step, resume, err := NextStep(plan, rec)
		switch {
		case errors.Is(err, ErrUnsafeResume):
			// A promote began but never ended. Promotion is idempotent for a
			// fixed target (stop replication, reset it, read_only off, all
			// no-ops the second time), and the target is the journalled
			// choice, never a new selection: re-running it cannot create a
			// second master. Only an unreachable target stops us, since then
			// nobody can tell whether it was promoted.
			target := chosenOf(rec)
			if target == "" {
				return e.closeRecord(ctx, id, fsm.ResultAborted, "", "promote began without a journalled target: "+err.Error())
			}
			if _, rerr := run.conn(ctx, target); rerr != nil {
				return e.closeRecord(ctx, id, fsm.ResultAborted, "",
					fmt.Sprintf("promote of %s began but never ended and %s is unreachable (%v): cannot tell whether it was promoted", target, target, rerr))
			}
			run.log.Warn("resuming an interrupted promote with the journalled target", "target", target)
		case errors.Is(err, ErrStepFailed):
			return e.closeUnpromoted(ctx, run, fsm.ResultFailed, err.Error())
		case err != nil:
			return e.closeUnpromoted(ctx, run, fsm.ResultAborted, err.Error())
		case step == "":
			target := chosenOf(rec)
			if target == "" {
				return e.closeRecord(ctx, id, fsm.ResultFailed, "", "every step done but no new master journalled")
			}
			detail := fmt.Sprintf("%s promoted in place of %s", target, rec.OldMaster)
			if m, ok := manualEvidence(rec); ok {
				detail += fmt.Sprintf("; manual failover by %s (%s)", m.By, m.AntiFlap)
			}
			return e.closeRecord(ctx, id, fsm.ResultSuccess, target, detail)
		}
		if resume {
			run.log.Info("resuming step", "step", step)
		}
		if e.cfg.StepDelay > 0 {
			if err := sleepCtx(ctx, e.cfg.StepDelay); err != nil {
				return "", err
			}
		}
		// Checked before every step, not only those that change instances:
		// the check is one quorum round trip, and a deposed leader must not
		// even journal.
		if err := e.group.VerifyLeader(ctx); err != nil {
			return "", fmt.Errorf("record %d before %s: %w: %w", id, step, ErrLeadershipLost, err)
		}
		if err := e.apply(ctx, fsm.StepBeginType, fsm.StepBegin{RecordID: id, Name: step, Leader: e.cfg.NodeID, Term: e.group.Term(), At: e.cfg.Now()}); err != nil {
			return "", fmt.Errorf("record %d: journal begin of %s: %w", id, step, err)
		}
		start := time.Now()
		res := run.step(ctx, step)
		if ctx.Err() != nil {
			// Leadership lost mid-step: leave the step running in the journal.
			return "", fmt.Errorf("record %d step %s: %w: %w", id, step, ErrLeadershipLost, ctx.Err())
		}
		if run.lost != nil {
			// A leadership check before a role-changing statement failed:
			// journal nothing more, the next leader resumes the step.
			return "", fmt.Errorf("record %d step %s: %w", id, step, run.lost)
		}
		run.log.Info("step done", "step", step, "outcome", res.outcome, "took", time.Since(start).Round(time.Millisecond), "detail", res.detail)
		// A failover names its new master at the close only: the lease
		// keepers tell a failover's replaced master by the open record
		// and, once closed, by LastFailoverID, which the close sets.
		end := fsm.StepEnd{RecordID: id, Name: step, At: e.cfg.Now(), Outcome: res.outcome, Detail: res.detail}
		if err := e.apply(ctx, fsm.StepEndType, end); err != nil {
			return "", fmt.Errorf("record %d: journal end of %s: %w", id, step, err)
		}
		if res.close != "" {
			return e.closeUnpromoted(ctx, run, res.close, step+": "+res.detail)
		}
	}
}

func (e *Executor) closeRecord(ctx context.Context, id uint64, result fsm.Result, newMaster, detail string) (fsm.Result, error) {
	if rec, ok := e.state.Record(id); ok {
		rec.Result = result
		if needsOperator(rec) {
			detail += "; " + operatorNote
		}
	}
	if err := e.apply(ctx, fsm.RecordCloseType, fsm.RecordClose{RecordID: id, At: e.cfg.Now(), Result: result, NewMaster: newMaster, Detail: detail}); err != nil {
		return "", fmt.Errorf("close record %d as %s: %w", id, result, err)
	}
	lvl := slog.LevelInfo
	if result != fsm.ResultSuccess {
		lvl = slog.LevelWarn
	}
	log, kind := e.log.With("record", id), "record"
	if rec, ok := e.state.Record(id); ok {
		log, kind = log.With("cluster", rec.Cluster), string(rec.Kind)
	}
	log.Log(ctx, lvl, kind+" closed", "result", result, "new_master", newMaster, "detail", detail)
	return result, nil
}

// runHook runs one hook, reports its duration and outcome to Metrics and
// logs it with the cluster and record (the hook runner's own line has the
// path, arguments and, on failure, the output).
func (r *failoverRun) runHook(ctx context.Context, kind HookKind, path string, args []string, env ...string) HookResult {
	res := r.e.hooks(ctx, path, args, env...)
	outcome := HookOutcome(res)
	if r.e.cfg.Metrics != nil {
		r.e.cfg.Metrics.HookRan(kind, outcome, res.Duration)
	}
	r.log.Info("hook finished", "hook", kind, "outcome", outcome, "exit_code", res.ExitCode, "took", res.Duration.Round(time.Millisecond))
	return res
}

func (e *Executor) apply(ctx context.Context, t fsm.MessageType, payload any) error {
	cmd, err := fsm.Encode(t, payload)
	if err != nil {
		return err
	}
	_, err = e.group.Apply(ctx, cmd)
	return err
}

// announced is the new master a step's end names (fsm.StepEnd.NewMaster):
// the target of a promote that succeeded, so the replicated state sends
// clients to it in the same journal entry that records the promotion,
// while the later steps run; "" for every other step.
func announced(step string, res stepResult, target string) string {
	if step != StepPromote || res.close != "" || (res.outcome != fsm.OutcomeOK && res.outcome != fsm.OutcomeWarning) {
		return ""
	}
	return target
}

// chosenOf is the journalled new master of a record ("" before select).
func chosenOf(rec fsm.Record) string {
	for _, c := range rec.Candidates {
		if c.Chosen {
			return c.Address
		}
	}
	return ""
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
