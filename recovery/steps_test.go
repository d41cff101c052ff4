package recovery

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/quorumha/quorumha/fsm"
)

// journal builds steps from name/outcome pairs, numbering them in order.
func journal(pairs ...string) []fsm.Step {
	t0 := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
	var out []fsm.Step
	for i := 0; i+1 < len(pairs); i += 2 {
		s := fsm.Step{Seq: len(out) + 1, Name: pairs[i], Leader: "c1", Start: t0.Add(time.Duration(i) * time.Second),
			Outcome: fsm.Outcome(pairs[i+1])}
		if s.Outcome != fsm.OutcomeRunning {
			s.End = s.Start.Add(time.Second)
		}
		out = append(out, s)
	}
	return out
}

func TestNextStep_Journals(t *testing.T) {
	const (
		ok      = string(fsm.OutcomeOK)
		running = string(fsm.OutcomeRunning)
		skipped = string(fsm.OutcomeSkipped)
		warning = string(fsm.OutcomeWarning)
		failed  = string(fsm.OutcomeFailed)
	)
	fo, so := FailoverPlan(), SwitchoverPlan()
	tests := []struct {
		name    string
		plan    []string
		steps   []fsm.Step
		result  fsm.Result
		want    string
		resume  bool
		wantErr error
	}{
		{"fresh failover starts with fence", fo, nil, fsm.ResultOpen, StepFence, false, nil},
		{"fresh switchover starts with online stop", so, nil, fsm.ResultOpen, StepOnlineStop, false, nil},
		{"after an ok step", fo, journal(StepFence, ok, StepStopIO, ok), fsm.ResultOpen, StepWaitRelay, false, nil},
		{"warning and skipped count as done", fo,
			journal(StepFence, warning, StepStopIO, ok, StepWaitRelay, ok, StepSelect, ok, StepCatchUp, skipped),
			fsm.ResultOpen, StepSalvage, false, nil},
		{"a journal written before the salvage step existed goes on after promote", fo,
			journal(StepFence, ok, StepStopIO, ok, StepWaitRelay, ok, StepSelect, ok, StepCatchUp, ok, StepPromote, ok),
			fsm.ResultOpen, StepRepoint, false, nil},
		{"an unjournalled step is passed over", fo,
			journal(StepFence, ok, StepStopIO, ok, StepWaitRelay, ok, StepSelect, ok, StepPromote, ok),
			fsm.ResultOpen, StepRepoint, false, nil},
		{"begun but never ended is re-run", fo, journal(StepFence, ok, StepStopIO, running),
			fsm.ResultOpen, StepStopIO, true, nil},
		{"re-run that ended supersedes the crash", fo,
			journal(StepFence, ok, StepStopIO, running, StepStopIO, ok),
			fsm.ResultOpen, StepWaitRelay, false, nil},
		{"repoint interrupted after promote is re-run", fo,
			journal(StepFence, ok, StepStopIO, ok, StepWaitRelay, ok, StepSelect, ok, StepCatchUp, ok, StepPromote, ok, StepRepoint, running),
			fsm.ResultOpen, StepRepoint, true, nil},
		{"promote interrupted is unsafe", fo,
			journal(StepFence, ok, StepStopIO, ok, StepWaitRelay, ok, StepSelect, ok, StepCatchUp, ok, StepPromote, running),
			fsm.ResultOpen, StepPromote, true, ErrUnsafeResume},
		{"switchover promote interrupted is unsafe", so,
			journal(StepOnlineStop, ok, StepReadOnlyOld, ok, StepKillOld, ok, StepWaitTarget, ok, StepPromote, running),
			fsm.ResultOpen, StepPromote, true, ErrUnsafeResume},
		{"promote proven and ended by the new leader", so,
			journal(StepOnlineStop, ok, StepReadOnlyOld, ok, StepKillOld, ok, StepWaitTarget, ok, StepPromote, running, StepPromote, ok),
			fsm.ResultOpen, StepRepoint, false, nil},
		{"every step done", fo,
			journal(StepFence, ok, StepStopIO, ok, StepWaitRelay, ok, StepSelect, ok, StepCatchUp, ok, StepPromote, ok,
				StepRepoint, ok, StepIPStart, ok, StepReport, warning),
			fsm.ResultOpen, "", false, nil},
		{"failed step", fo, journal(StepFence, failed), fsm.ResultOpen, StepFence, false, ErrStepFailed},
		{"failed before a later running one", fo, journal(StepFence, ok, StepStopIO, failed, StepWaitRelay, running),
			fsm.ResultOpen, StepStopIO, false, ErrStepFailed},
		{"unknown outcome is not proof", fo, journal(StepFence, "paused"), fsm.ResultOpen, StepFence, true, nil},
		{"step of another plan", fo, journal(StepOnlineStop, ok), fsm.ResultOpen, "", false, ErrUnknownStep},
		{"closed record", fo, journal(StepFence, ok), fsm.ResultAborted, "", false, ErrRecordClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := fsm.Record{ID: 7, Cluster: "app1", Steps: tt.steps, Result: tt.result}
			got, resume, err := NextStep(tt.plan, rec)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want || resume != tt.resume {
				t.Errorf("got (%q, resume %v), want (%q, %v)", got, resume, tt.want, tt.resume)
			}
		})
	}
}

func TestNextStep_UnsafeResumeNamesLeader(t *testing.T) {
	rec := fsm.Record{ID: 9, Steps: journal(StepPromote, string(fsm.OutcomeRunning))}
	_, _, err := NextStep(FailoverPlan(), rec)
	want := `record 9 step "promote" began at 2026-11-23T01:00:00Z by c1: ` + ErrUnsafeResume.Error()
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
}

func TestPlanFor_Kinds(t *testing.T) {
	tests := []struct {
		kind    fsm.RecordKind
		want    []string
		wantErr error
	}{
		{fsm.KindFailover, FailoverPlan(), nil},
		{fsm.KindSwitchover, SwitchoverPlan(), nil},
		{fsm.KindDetection, nil, ErrNoPlan},
	}
	for _, tt := range tests {
		got, err := PlanFor(tt.kind)
		if !errors.Is(err, tt.wantErr) || !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %v, %v", tt.kind, got, err)
		}
	}
	// Plans are fresh copies: changing one must not change the next.
	p := FailoverPlan()
	p[0] = "mutated"
	if FailoverPlan()[0] != StepFence {
		t.Error("FailoverPlan shares its slice")
	}
}

func TestPlans_EveryStepOnceAndOnlyPromoteUnsafe(t *testing.T) {
	for name, plan := range map[string][]string{"failover": FailoverPlan(), "switchover": SwitchoverPlan()} {
		seen := map[string]bool{}
		for _, s := range plan {
			if seen[s] {
				t.Errorf("%s: step %q twice", name, s)
			}
			seen[s] = true
			if NotResumable(s) != (s == StepPromote) {
				t.Errorf("%s: NotResumable(%q) = %v", name, s, NotResumable(s))
			}
		}
		if !slices.Contains(plan, StepPromote) || plan[len(plan)-1] != StepReport {
			t.Errorf("%s plan %v: needs promote and ends with report", name, plan)
		}
	}
}
