package fsm

import (
	"errors"
	"testing"
)

func fenceCmd(id uint64, state, proof string, sec int) cmd {
	u := FenceUpdate{RecordID: id, At: at(sec), State: state, Proof: proof,
		Targets: []FenceTarget{{Address: "m:3306"}}}
	switch state {
	case FenceAwaiting, FenceUnproven:
		u.Reason = "m:3306: sql: unreachable; agent: none configured"
	case FenceProven:
		u.Targets[0].Proof = proof
	case FenceAccepted:
		u.By = "alice"
		u.Targets = nil
	}
	return cmd{FenceUpdateType, u}
}

func TestFenceUpdate_Transitions(t *testing.T) {
	cases := []struct {
		name      string
		steps     []cmd // applied in order after the record opens; all accepted
		wantState string
		wantProof string
		wantSince int // seconds, -1 for zero
		wantBy    string
	}{
		{"proven at once", []cmd{fenceCmd(1, FenceProven, ProofSQL, 2)}, FenceProven, ProofSQL, -1, ""},
		{"awaiting, reason changes, keeps since", []cmd{fenceCmd(1, FenceAwaiting, ProofNone, 2),
			{FenceUpdateType, FenceUpdate{RecordID: 1, At: at(5), State: FenceAwaiting, Proof: ProofNone, Reason: "other"}}},
			FenceAwaiting, ProofNone, 2, ""},
		{"awaiting then lease lapses", []cmd{fenceCmd(1, FenceAwaiting, ProofNone, 2), fenceCmd(1, FenceProven, ProofLeaseExpired, 9)},
			FenceProven, ProofLeaseExpired, 2, ""},
		{"awaiting then operator", []cmd{fenceCmd(1, FenceAwaiting, ProofNone, 2), fenceCmd(1, FenceAccepted, ProofOperator, 7)},
			FenceAccepted, ProofOperator, 2, "alice"},
		{"best effort", []cmd{fenceCmd(1, FenceUnproven, ProofNone, 2)}, FenceUnproven, ProofNone, -1, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := testFSM(t)
			id := applyAll(t, f, []cmd{openFailover("app", 1)})[0].(uint64)
			if id != 1 {
				t.Fatalf("record id %d", id)
			}
			applyAll(t, f, c.steps)
			r, _ := f.Record(id)
			fi := r.Fence
			if fi == nil || fi.State != c.wantState || fi.Proof != c.wantProof || fi.By != c.wantBy {
				t.Fatalf("fence = %+v, want state %s proof %s by %q", fi, c.wantState, c.wantProof, c.wantBy)
			}
			if (c.wantSince < 0) != fi.Since.IsZero() || (c.wantSince >= 0 && !fi.Since.Equal(at(c.wantSince))) {
				t.Errorf("since = %v, want %d", fi.Since, c.wantSince)
			}
			if r.AwaitingFence() != (c.wantState == FenceAwaiting) {
				t.Errorf("AwaitingFence = %t", r.AwaitingFence())
			}
			if c.wantState == FenceAccepted && (len(fi.Targets) != 1 || fi.Reason == "") {
				t.Errorf("accepted lost the targets or reason it waited on: %+v", fi)
			}
			// Snapshot round trip keeps it.
			g := testFSM(t)
			if err := g.Restore(persist(t, f).Reader()); err != nil {
				t.Fatal(err)
			}
			if dump(t, f) != dump(t, g) {
				t.Error("fence state lost in snapshot round trip")
			}
			// Reads are copies.
			if len(r.Fence.Targets) > 0 {
				r.Fence.Targets[0].Address = "x"
				if again, _ := f.Record(id); again.Fence.Targets[0].Address == "x" {
					t.Error("Record shares the fence targets with the FSM")
				}
			}
		})
	}
}

func TestFenceUpdate_Rejections(t *testing.T) {
	f := testFSM(t)
	fo := applyAll(t, f, []cmd{openFailover("app", 1)})[0].(uint64)
	so := applyAll(t, f, []cmd{openKind("other", KindSwitchover, 1)})[0].(uint64)
	closed := applyAll(t, f, []cmd{openFailover("gone", 1)})[0].(uint64)
	applyAll(t, f, []cmd{closeRec(closed, ResultAborted, "", 2)})

	zero := FenceUpdate{RecordID: fo, State: FenceAwaiting, Proof: ProofNone, Reason: "x"}
	provenNoTargetProof := FenceUpdate{RecordID: fo, At: at(2), State: FenceProven, Proof: ProofSQL, Targets: []FenceTarget{{Address: "m"}}}
	dupTargets := FenceUpdate{RecordID: fo, At: at(2), State: FenceProven, Proof: ProofSQL,
		Targets: []FenceTarget{{Address: "m", Proof: ProofSQL}, {Address: "m", Proof: ProofSQL}}}
	acceptNoBy := FenceUpdate{RecordID: fo, At: at(2), State: FenceAccepted, Proof: ProofOperator}

	for name, c := range map[string]struct {
		c    cmd
		want error
	}{
		"unknown record":        {fenceCmd(999, FenceProven, ProofSQL, 2), ErrNoSuchRecord},
		"closed record":         {fenceCmd(closed, FenceProven, ProofSQL, 3), ErrRecordClosed},
		"switchover":            {fenceCmd(so, FenceProven, ProofSQL, 2), ErrInvalid},
		"bad state":             {fenceCmd(fo, "maybe", ProofNone, 2), ErrInvalid},
		"bad proof":             {fenceCmd(fo, FenceProven, "hope", 2), ErrInvalid},
		"awaiting with a proof": {cmd{FenceUpdateType, FenceUpdate{RecordID: fo, At: at(2), State: FenceAwaiting, Proof: ProofSQL, Reason: "x"}}, ErrInvalid},
		"awaiting no reason":    {cmd{FenceUpdateType, FenceUpdate{RecordID: fo, At: at(2), State: FenceAwaiting, Proof: ProofNone}}, ErrInvalid},
		"zero time":             {cmd{FenceUpdateType, zero}, ErrInvalid},
		"target without proof":  {cmd{FenceUpdateType, provenNoTargetProof}, ErrInvalid},
		"duplicate target":      {cmd{FenceUpdateType, dupTargets}, ErrInvalid},
		"accept without by":     {cmd{FenceUpdateType, acceptNoBy}, ErrInvalid},
		"accept not awaiting":   {fenceCmd(fo, FenceAccepted, ProofOperator, 2), ErrNotAwaitingFence},
	} {
		before := dump(t, f)
		err, _ := applyNext(t, f, c.c).(error)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
		if dump(t, f) != before {
			t.Errorf("%s: rejected command changed the state", name)
		}
	}

	// A settled fence never changes again.
	applyAll(t, f, []cmd{fenceCmd(fo, FenceProven, ProofAgent, 3)})
	for _, c := range []cmd{fenceCmd(fo, FenceAwaiting, ProofNone, 4), fenceCmd(fo, FenceProven, ProofSQL, 4),
		fenceCmd(fo, FenceAccepted, ProofOperator, 4), fenceCmd(fo, FenceUnproven, ProofNone, 4)} {
		before := dump(t, f)
		if err, _ := applyNext(t, f, c).(error); !errors.Is(err, ErrFenceSettled) {
			t.Errorf("%s after proven: %v, want ErrFenceSettled", c.p.(FenceUpdate).State, err)
		}
		if dump(t, f) != before {
			t.Error("rejected update changed the state")
		}
	}
}

// An FSM older than FenceUpdateType must stop on it rather than skip it:
// the type has no IgnoreUnknownTypeFlag.
func TestFenceUpdate_NotIgnorable(t *testing.T) {
	if FenceUpdateType&IgnoreUnknownTypeFlag != 0 {
		t.Fatal("FenceUpdateType is ignorable; skipping it would change what a record means")
	}
	if FenceUpdateType.String() != "FenceUpdate" {
		t.Errorf("String = %q", FenceUpdateType.String())
	}
}
