package recovery

import (
	"context"
	"errors"
	"testing"
	"time"

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

// blockingStatusAgent is a recorded master's agent whose host vanished:
// FenceStatus waits until its context ends and reports why it ended.
type blockingStatusAgent struct {
	fakeFenceAgent
	entered chan struct{}
	ended   chan error
}

func (a *blockingStatusAgent) FenceStatus(ctx context.Context) (agent.FenceStatus, error) {
	select {
	case a.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	a.ended <- ctx.Err()
	return agent.FenceStatus{}, ctx.Err()
}

// TestRunner_DecisionPreemptsUpkeep: the sweep asks the recorded master's
// agent whether it fenced itself while the master still looks healthy; the
// host vanishes at that moment and the call hangs. The dead assessment
// that arrives meanwhile must be decided at once, the upkeep cancelled,
// not after the call's own 5 s timeout (a chaos run's decision waited
// 3.3 s there).
func TestRunner_DecisionPreemptsUpkeep(t *testing.T) {
	e := newRunnerEnv(t)
	ag := &blockingStatusAgent{entered: make(chan struct{}, 1), ended: make(chan error, 1)}
	for i, in := range e.cc.Instances {
		if in.Address == mOld {
			e.cc.Instances[i].Agent = "http://agent-old"
		}
	}
	e.r = NewRunner(RunnerConfig{NodeID: "c1", AntiFlap: time.Hour, Now: func() time.Time { return t0 }, Clusters: []ClusterConfig{e.cc},
		Executor: ExecutorConfig{ApplyTimeout: time.Second, Lease: leaseLapsed(),
			FenceAgents: func(string, string) (FenceAgent, error) { return ag, nil }}},
		e.g, e.g.f, e.a, e.f.dial, e.hooks.run)
	e.a.mu.Lock()
	e.a.current = []detector.Assessment{{Cluster: "app1", Master: mOld, State: detector.AssessHealthy, At: t0}}
	e.a.mu.Unlock()
	e.run(t)
	select {
	case <-ag.entered: // the first sweep recorded the master and asks its agent
	case <-time.After(10 * time.Second):
		t.Fatal("the sweep never asked the recorded master's agent")
	}
	e.a.mu.Lock()
	e.a.current = []detector.Assessment{deadApp(mOld)}
	e.a.mu.Unlock()
	e.a.ch <- deadApp(mOld)
	var why error
	select {
	case why = <-ag.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the agent call never ended")
	}
	if !errors.Is(why, context.Canceled) {
		t.Fatalf("the upkeep's agent call ended with %v: it ran to its own timeout while a decision waited", why)
	}
	poll(t, func() error {
		if recs := e.g.f.History("app1", 0); len(recs) == 0 || recs[0].Kind != fsm.KindFailover {
			return errors.New("no failover record")
		}
		return nil
	})
}
