package recovery

import (
	"testing"

	"github.com/quorumha/quorumha/fsm"
)

func TestSwitchoverStepState(t *testing.T) {
	rec := fsm.Record{Steps: []fsm.Step{
		{Seq: 1, Name: StepOnlineStop, Outcome: fsm.OutcomeOK},
		{Seq: 2, Name: StepPromote, Outcome: fsm.OutcomeRunning},
	}}
	if !stepBegan(rec, StepPromote) || stepEnded(rec, StepPromote) {
		t.Fatal("a running promote has begun and not ended")
	}
	if !stepEnded(rec, StepOnlineStop) || stepBegan(rec, StepRepoint) {
		t.Fatal("online_stop ended; repoint never began")
	}
}

func TestIsRead(t *testing.T) {
	for _, tt := range []struct {
		info string
		want bool
	}{
		{"", true},
		{"SELECT @@global.read_only", true},
		{"  show slave status", true},
		{"INSERT INTO t VALUES (1)", false},
		{"update t set a=1", false},
		{"COMMIT", false},
	} {
		if got := isRead(tt.info); got != tt.want {
			t.Errorf("isRead(%q) = %v, want %v", tt.info, got, tt.want)
		}
	}
}

func TestSameAddr(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"db1:3306", "DB1:3306", true},
		{"localhost:3306", "127.0.0.1:3306", true},
		{"db1:3306", "db1:3307", false},
		{"db1:3306", "db2:3306", false},
	} {
		if got := sameAddr(tt.a, tt.b); got != tt.want {
			t.Errorf("sameAddr(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestSwitchoverEvidence(t *testing.T) {
	rec := fsm.Record{Kind: fsm.KindSwitchover, Evidence: []byte(`{"by":"op","target":"db2:3306","timeout":1000000000}`)}
	ev, ok := switchoverEvidence(rec)
	if !ok || ev.Target != "db2:3306" || ev.By != "op" {
		t.Fatalf("evidence %+v ok=%v", ev, ok)
	}
	rec.Kind = fsm.KindFailover
	if _, ok := switchoverEvidence(rec); ok {
		t.Fatal("a failover record has no switchover evidence")
	}
}
