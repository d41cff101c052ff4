package recovery

import (
	"testing"

	"github.com/quorumha/quorumha/agent"
	"github.com/quorumha/quorumha/detector"
	"github.com/quorumha/quorumha/fsm"
)

func TestSelfFencedMaster(t *testing.T) {
	healthy := detector.Assessment{Cluster: "app1", Master: "db1:3306", State: detector.AssessHealthy}
	selfFenced := agent.FenceStatus{Enforced: true, Fenced: true, Reason: "lease lapsed: 0 of 3 voters renewed within their ttl (need 2)",
		Holders: []string{"c1", "c2"}, Voters: 3}
	abortedAfterPromote := fsm.Record{Kind: fsm.KindFailover, Result: fsm.ResultAborted,
		Steps: []fsm.Step{{Name: StepFence, Outcome: fsm.OutcomeOK}, {Name: StepPromote, Outcome: fsm.OutcomeRunning}}}
	success := fsm.Record{Kind: fsm.KindFailover, Result: fsm.ResultSuccess}
	with := func(f func(*agent.FenceStatus)) agent.FenceStatus { s := selfFenced; f(&s); return s }
	tests := []struct {
		name     string
		recorded string
		open     bool
		newest   *fsm.Record
		a        detector.Assessment
		st       agent.FenceStatus
		want     bool
	}{
		{"self-fenced, healed, majority renews", "db1:3306", false, &success, healthy, selfFenced, true},
		{"no history at all", "db1:3306", false, nil, healthy, selfFenced, true},
		{"a record is open", "db1:3306", true, nil, healthy, selfFenced, false},
		{"newest record aborted after promote began", "db1:3306", false, &abortedAfterPromote, healthy, selfFenced, false},
		{"assessed dead", "db1:3306", false, nil, detector.Assessment{Master: "db1:3306", State: detector.AssessDeadConfirmed}, selfFenced, false},
		{"assessment of another master", "db1:3306", false, nil, detector.Assessment{Master: "db2:3306", State: detector.AssessHealthy}, selfFenced, false},
		{"fenced on a controller's request", "db1:3306", false, nil, healthy, with(func(s *agent.FenceStatus) { s.Reason = "requested by c1: failover record 7" }), false},
		{"minority renews", "db1:3306", false, nil, healthy, with(func(s *agent.FenceStatus) { s.Holders = []string{"c1"} }), false},
		{"not fenced", "db1:3306", false, nil, healthy, with(func(s *agent.FenceStatus) { s.Fenced = false }), false},
		{"agent without fencing", "db1:3306", false, nil, healthy, with(func(s *agent.FenceStatus) { s.Enforced = false }), false},
		{"no recorded master", "", false, nil, healthy, selfFenced, false},
	}
	for _, tt := range tests {
		if got, why := SelfFencedMaster(tt.recorded, tt.open, tt.newest, tt.a, tt.st); got != tt.want {
			t.Errorf("%s: %v (%s), want %v", tt.name, got, why, tt.want)
		}
	}
}
