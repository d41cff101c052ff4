package recovery

import (
	"fmt"
	"slices"

	"github.com/quorumha/quorumha/fsm"
)

// Step names, as journalled in fsm.Step.Name. They are part of the replicated
// history and of the resume logic: never rename one, add new ones instead.
const (
	// StepFence proves the old master (and any server an earlier record of
	// the incident began to promote) unable to take writes: read_only and
	// killed sessions over SQL, its agent, its lapsed lease, or the ip hook
	// stop/stopssh and the shutdown hook (MHA phase 2). Without a proof it
	// waits (recovery.fence: required) and stays running in the journal.
	StepFence = "fence"
	// StepStopIO stops every replica's IO thread so positions stop moving
	// while they are compared.
	StepStopIO = "stop_io"
	// StepWaitRelay waits for replicas to apply the relay logs they hold.
	StepWaitRelay = "wait_relay"
	// StepSelect chooses the new master (SelectNewMaster) and journals the
	// candidates; a resumed failover uses the recorded choice.
	StepSelect = "select"
	// StepCatchUp brings the chosen replica level with the most advanced one.
	StepCatchUp = "catch_up"
	// StepSalvage applies what only the dead master had, read from its
	// binlog through its agent, to the chosen replica (and, with file/
	// position replication, to every replica) before promotion.
	StepSalvage = "salvage"
	// StepPromote makes the chosen replica the master (stops replication,
	// read_only off). Not safe to re-run blindly: see NotResumable.
	StepPromote = "promote"
	// StepRepoint points the other replicas at the new master.
	StepRepoint = "repoint"
	// StepIPStart runs the ip hook start, moving the writer address.
	StepIPStart = "ip_start"
	// StepReport runs the report hook.
	StepReport = "report"

	// StepOnlineStop runs the online-change hook stop (block new writes).
	StepOnlineStop = "online_stop"
	// StepReadOnlyOld sets read_only (and super_read_only where it exists)
	// on the old master.
	StepReadOnlyOld = "read_only_old"
	// StepKillOld kills the old master's client connections, since read_only
	// does not stop privileged sessions (the MHA bug that lost a write).
	StepKillOld = "kill_old"
	// StepWaitTarget waits until the target has applied everything the old
	// master wrote.
	StepWaitTarget = "wait_target"
	// StepOldAsReplica makes the old master a replica of the new one.
	StepOldAsReplica = "old_as_replica"
	// StepOnlineStart runs the online-change hook start.
	StepOnlineStart = "online_start"
)

// FailoverPlan returns the ordered steps of a failover (a dead master). Each
// call returns a fresh slice, so callers may keep or modify it. Replicas are
// repointed before the writer address moves, so semi-sync acknowledgements
// have replicas to come from as soon as writes arrive.
func FailoverPlan() []string {
	return []string{StepFence, StepStopIO, StepWaitRelay, StepSelect, StepCatchUp,
		StepSalvage, StepPromote, StepRepoint, StepIPStart, StepReport}
}

// SwitchoverPlan returns the ordered steps of a switchover (a live master
// handing over to a target). Each call returns a fresh slice.
func SwitchoverPlan() []string {
	return []string{StepOnlineStop, StepReadOnlyOld, StepKillOld, StepWaitTarget,
		StepPromote, StepRepoint, StepOldAsReplica, StepOnlineStart, StepReport}
}

// PlanFor returns the plan of a record kind; detection records have none.
func PlanFor(kind fsm.RecordKind) ([]string, error) {
	switch kind {
	case fsm.KindFailover:
		return FailoverPlan(), nil
	case fsm.KindSwitchover:
		return SwitchoverPlan(), nil
	default:
		return nil, fmt.Errorf("%w: %q", ErrNoPlan, kind)
	}
}

// NotResumable reports whether a step that began but never ended must not
// simply be run again. Every step is written to be idempotent except the
// promotion: after a crash mid-promote, the instance may already take
// writes, and promoting again another replica (after a new selection) could
// leave two masters. The Executor therefore re-runs it only with the
// journalled target, which makes it idempotent, and only when that target
// answers; otherwise it closes the record as aborted.
func NotResumable(step string) bool {
	return step == StepPromote
}

// NextStep says which step of plan to run next for an open record, from its
// journal, when a new leader takes over (or after each step). It returns ""
// when every step is done; the caller then closes the record.
//
// For each step, its latest journal entry counts. A step that began but never
// ended is run again (resume is true), since steps are idempotent; the
// earliest such step in plan order comes first. If it is NotResumable,
// NextStep returns it with ErrUnsafeResume: the caller closes the record as
// aborted with that reason, unless the instances prove the step completed
// (then it journals the end and asks again). Otherwise the step after the
// furthest finished one (ok, warning or skipped) is next, so an executor may
// leave out a step it does not need. A failed step is ErrStepFailed: the
// record should have been closed when it failed.
func NextStep(plan []string, rec fsm.Record) (step string, resume bool, err error) {
	if !rec.IsOpen() {
		return "", false, fmt.Errorf("record %d (result %s): %w", rec.ID, rec.Result, ErrRecordClosed)
	}
	latest := make([]*fsm.Step, len(plan))
	for i := range rec.Steps {
		s := &rec.Steps[i]
		k := slices.Index(plan, s.Name)
		if k < 0 {
			return "", false, fmt.Errorf("record %d step %d %q: %w", rec.ID, s.Seq, s.Name, ErrUnknownStep)
		}
		if latest[k] == nil || s.Seq >= latest[k].Seq {
			latest[k] = s
		}
	}
	for k, s := range latest {
		if s != nil && s.Outcome == fsm.OutcomeFailed {
			return plan[k], false, fmt.Errorf("record %d step %q: %s: %w", rec.ID, s.Name, s.Detail, ErrStepFailed)
		}
	}
	furthest := -1
	for k, s := range latest {
		if s == nil {
			continue
		}
		switch s.Outcome {
		case fsm.OutcomeOK, fsm.OutcomeWarning, fsm.OutcomeSkipped:
			furthest = k
		default: // running, or an outcome this version does not know: not proven done
			if NotResumable(s.Name) {
				return s.Name, true, fmt.Errorf("record %d step %q began at %s by %s: %w",
					rec.ID, s.Name, stamp(s.Start), s.Leader, ErrUnsafeResume)
			}
			return s.Name, true, nil
		}
	}
	if furthest+1 >= len(plan) {
		return "", false, nil
	}
	return plan[furthest+1], false, nil
}
