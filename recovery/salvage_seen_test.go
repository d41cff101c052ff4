package recovery

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/detector"
	"github.com/quorumha/quorumha/fsm"
)

func evidenceWith(t *testing.T, votes ...detector.Verdict) []byte {
	t.Helper()
	b, err := json.Marshal(Evidence{Assessment: detector.Assessment{Votes: votes}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLastSeenOf(t *testing.T) {
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	v := func(c, inst, pos string, ms int) detector.Verdict {
		return detector.Verdict{Controller: c, Instance: inst, LastPosition: pos, LastPositionAt: at(ms)}
	}
	tests := []struct {
		name     string
		evidence []byte
		want     string
		by       string
	}{
		{"furthest MariaDB position wins over a later read", evidenceWith(t, v("c1", mOld, "0-1-9", 500), v("c2", mOld, "0-1-12", 400), v("c3", mOld, "0-1-10", 600)), "0-1-12", "c2"},
		{"votes on another instance are ignored", evidenceWith(t, v("c1", rA, "0-1-99", 500), v("c2", mOld, "0-1-3", 400)), "0-1-3", "c2"},
		{"MySQL sets: the superset wins", evidenceWith(t, v("c1", mOld, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-7", 900), v("c2", mOld, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-9", 100)), "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-9", "c2"},
		{"no positions", evidenceWith(t, v("c1", mOld, "", 0)), "", ""},
		{"manual evidence", []byte(`{"by":"ops","anti_flap":"x"}`), "", ""},
		{"no evidence", nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := lastSeenOf(tt.evidence, mOld)
			if got.Position != tt.want || got.By != tt.by {
				t.Errorf("lastSeenOf = %+v, want %s by %s", got, tt.want, tt.by)
			}
		})
	}
}

func TestLossWindow(t *testing.T) {
	seen := lastSeen{Position: "0-1-15", By: "c2", At: t0}
	for _, tt := range []struct {
		name string
		have string
		seen lastSeen
		want string
	}{
		{"counted", "0-1-12", seen, "at least 3 committed transactions are lost"},
		{"other domain counted whole", "1-2-4", seen, "at least 15 committed"},
		{"survivors have it", "0-1-15", seen, "only what it committed after that probe"},
		{"unknown", "0-1-12", lastSeen{}, "its own last position is unknown"},
		{"file coordinates", "mysql-bin.000001:521", seen, "the transactions between them are lost"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := lossWindow("agent down", mOld, tt.have, tt.seen)
			if !strings.Contains(got, tt.want) || !strings.Contains(got, mOld) || !strings.Contains(got, tt.have) {
				t.Errorf("lossWindow = %q, want it to contain %q, the master and %q", got, tt.want, tt.have)
			}
		})
	}
}

// An unreachable agent's loss window counts what the probes saw the dead
// master commit beyond what the survivors have.
func TestSalvage_LossWindowFromTheLastProbe(t *testing.T) {
	e := newExecEnv(t)
	ev := evidenceWith(t, detector.Verdict{Controller: "c2", Instance: mOld, State: detector.StateDown, LastPosition: "0-1-15", LastPositionAt: t0})
	cmd, _ := fsm.Encode(fsm.RecordOpenType, fsm.RecordOpen{Cluster: "app1", Kind: fsm.KindFailover, Trigger: "automatic",
		OldMaster: mOld, OpenedBy: "c1", At: t0, Evidence: ev})
	idAny, err := e.g.Apply(context.Background(), cmd)
	if err != nil {
		t.Fatal(err)
	}
	id := idAny.(uint64)
	if res, err := e.salvager(&fakeAgent{upTo: 15, hang: true}, fakeApplier(e.f, nil), 50*time.Millisecond).Execute(context.Background(), e.cc, id); err != nil || res != fsm.ResultSuccess {
		t.Fatalf("Execute = %q, %v", res, err)
	}
	s := e.record(t, id).Salvage
	if s == nil || !strings.Contains(s.LossWindow, "at least 3 committed transactions") || !strings.HasPrefix(s.MasterLastSeen, "0-1-15 (read by c2") {
		t.Fatalf("salvage %+v", s)
	}
}
