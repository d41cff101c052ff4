package detector

import (
	"strings"
	"testing"
	"time"
)

func u64(n uint64) *uint64 { return &n }

func TestNextVerdict_ProcessGone(t *testing.T) {
	gone := func(r Reason) ProbeResult { p := fail(r); p.ProcessGone = true; return p }
	tests := []struct {
		name    string
		results []ProbeResult
		want    State
		gone    bool
	}{
		{"refused and process gone is down at once", []ProbeResult{gone(ReasonRefused)}, StateDown, true},
		{"refused with the process running waits for the threshold", []ProbeResult{fail(ReasonRefused)}, StateSuspect, false},
		{"timeout never takes the fast path", []ProbeResult{gone(ReasonTimeout)}, StateSuspect, false},
		{"a restarted server answers: up again", []ProbeResult{gone(ReasonRefused), okResult()}, StateUp, false},
		{"restarted then refused with the process running: counting goes on", []ProbeResult{gone(ReasonRefused), fail(ReasonRefused)}, StateSuspect, false},
		{"an ok result never carries it", []ProbeResult{func() ProbeResult { r := okResult(); r.ProcessGone = true; return r }()}, StateUp, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Verdict{Controller: "c1", Instance: "m:3306"}
			for _, r := range tt.results {
				v = NextVerdict(v, r, 3)
			}
			if v.State != tt.want || v.ProcessGone != tt.gone {
				t.Errorf("state %s process_gone %t, want %s %t", v.State, v.ProcessGone, tt.want, tt.gone)
			}
		})
	}
}

func TestHeartbeatStalled(t *testing.T) {
	base := func() ReplicaObservation {
		o := replica("r1:3306", "Yes", false)
		o.Heartbeats, o.HeartbeatPeriod, o.ProgressAt = u64(10), time.Second, t0
		return o
	}
	tests := []struct {
		name string
		mod  func(*ReplicaObservation)
		at   time.Duration
		want bool
	}{
		{"within two periods", nil, 2 * time.Second, false},
		{"beyond two periods", nil, 2*time.Second + time.Millisecond, true},
		{"advancing is never stalled", func(o *ReplicaObservation) { o.Advancing = true }, time.Minute, false},
		{"io not Yes is the IO thread's call", func(o *ReplicaObservation) { o.IORunning = "Connecting" }, time.Minute, false},
		{"heartbeats unknown", func(o *ReplicaObservation) { o.Heartbeats = nil }, time.Minute, false},
		{"heartbeats off", func(o *ReplicaObservation) { o.HeartbeatPeriod = 0 }, time.Minute, false},
		{"no progress baseline", func(o *ReplicaObservation) { o.ProgressAt = time.Time{} }, time.Minute, false},
		{"long period (MariaDB default 30s)", func(o *ReplicaObservation) { o.HeartbeatPeriod = 30 * time.Second }, 59 * time.Second, false},
		{"unreachable replica", func(o *ReplicaObservation) { o.Reachable = false }, time.Minute, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base()
			if tt.mod != nil {
				tt.mod(&o)
			}
			if got := o.HeartbeatStalled(t0.Add(tt.at)); got != tt.want {
				t.Errorf("HeartbeatStalled at +%s = %t, want %t", tt.at, got, tt.want)
			}
		})
	}
}

func TestNextProgress(t *testing.T) {
	now := t0.Add(5 * time.Second)
	obs := func(pos string, hb *uint64) ReplicaObservation {
		o := replica("r1:3306", "Yes", false)
		o.ReadPos, o.Heartbeats, o.ProgressAt = pos, hb, t0
		return o
	}
	down := obs("f:1", nil)
	down.Reachable = false
	other := obs("f:1", u64(1))
	other.Replica = "r2:3306"
	tests := []struct {
		name      string
		prev, cur ReplicaObservation
		want      time.Time
	}{
		{"nothing moved", obs("f:1", u64(3)), obs("f:1", u64(3)), t0},
		{"heartbeat arrived", obs("f:1", u64(3)), obs("f:1", u64(4)), now},
		{"events arrived", obs("f:1", u64(3)), obs("f:9", u64(3)), now},
		{"no heartbeat count: position only", obs("f:1", nil), obs("f:1", nil), t0},
		{"count appeared", obs("f:1", nil), obs("f:1", u64(0)), now},
		{"first sight", ReplicaObservation{}, obs("f:1", u64(3)), now},
		{"another replica's observation", other, obs("f:1", u64(1)), now},
		{"replica unreachable keeps the last progress", obs("f:1", u64(3)), down, t0},
		{"back after being unreachable starts afresh", down, obs("f:1", u64(3)), now},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NextProgress(tt.prev, tt.cur, now); !got.Equal(tt.want) {
				t.Errorf("NextProgress = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestAssess_ReplicaSignals: the controllers' quorum sees the master down;
// what the replicas say decides.
func TestAssess_ReplicaSignals(t *testing.T) {
	votes := []Verdict{vote("c1", "a", StateDown), vote("c2", "b", StateDown), vote("c3", "c", StateDown)}
	reach := func(answered, reachable bool, age time.Duration) *AgentReach {
		a := &AgentReach{Answered: answered, Reachable: reachable, At: t0.Add(-age)}
		switch {
		case !answered:
			a.Error = "agent http://r1:7080: context deadline exceeded"
		case reachable:
			a.Stage = "ok"
		default:
			a.Stage, a.Error = "connect", "i/o timeout"
		}
		return a
	}
	with := func(o ReplicaObservation, f func(*ReplicaObservation)) ReplicaObservation { f(&o); return o }
	ioYes := replica("r1:3306", "Yes", false)
	ioYes2 := replica("r2:3306", "Yes", false)
	stalled := func(o *ReplicaObservation) {
		o.Heartbeats, o.HeartbeatPeriod, o.ProgressAt = u64(7), time.Second, t0.Add(-3*time.Second)
	}
	tests := []struct {
		name     string
		replicas []ReplicaObservation
		want     AssessState
		contains string
	}{
		{"io Yes, no other signal: still connected",
			[]ReplicaObservation{ioYes}, AssessReplicasStillConnected, "io=Yes"},
		{"io Yes but the agents say unreachable: dead confirmed",
			[]ReplicaObservation{with(ioYes, func(o *ReplicaObservation) { o.Reach = reach(true, false, 0) }),
				with(ioYes2, func(o *ReplicaObservation) { o.Reach = reach(true, false, 0) })},
			AssessDeadConfirmed, "agent cannot reach the master"},
		{"io Yes and the agents reach it: not confirmed",
			[]ReplicaObservation{with(ioYes, func(o *ReplicaObservation) { o.Reach = reach(true, true, 0) }),
				with(ioYes2, func(o *ReplicaObservation) { o.Reach = reach(true, true, 0) })},
			AssessReplicasStillConnected, "agent reaches the master"},
		{"one agent unreachable, the other replica's agent reaches it: not confirmed",
			[]ReplicaObservation{with(ioYes, func(o *ReplicaObservation) { o.Reach = reach(true, false, 0) }),
				with(ioYes2, func(o *ReplicaObservation) { o.Reach = reach(true, true, 0) })},
			AssessReplicasStillConnected, "r2:3306"},
		{"io Connecting but the agent gets a greeting: the master lives",
			[]ReplicaObservation{with(replica("r1:3306", "Connecting", false), func(o *ReplicaObservation) { o.Reach = reach(true, true, 0) })},
			AssessReplicasStillConnected, "agent reaches the master"},
		{"an agent that did not answer is unknown: the IO thread decides",
			[]ReplicaObservation{with(ioYes, func(o *ReplicaObservation) { o.Reach = reach(false, false, 0) })},
			AssessReplicasStillConnected, "io=Yes"},
		{"a stale agent answer is ignored",
			[]ReplicaObservation{with(ioYes, func(o *ReplicaObservation) { o.Reach = reach(true, false, time.Minute) })},
			AssessReplicasStillConnected, "io=Yes"},
		{"advancing beats an agent saying unreachable",
			[]ReplicaObservation{with(replica("r1:3306", "Yes", true), func(o *ReplicaObservation) { o.Reach = reach(true, false, 0) })},
			AssessReplicasStillConnected, "position advancing"},
		{"advanced before its link broke (io Connecting, agent cannot reach): dead confirmed",
			[]ReplicaObservation{with(replica("r1:3306", "Connecting", true), func(o *ReplicaObservation) { o.Reach = reach(true, false, 0) })},
			AssessDeadConfirmed, "agent cannot reach the master"},
		{"advancing with io Connecting and no agent: still connected",
			[]ReplicaObservation{replica("r1:3306", "Connecting", true)}, AssessReplicasStillConnected, "position advancing"},
		{"io Yes with heartbeats stalled: dead confirmed",
			[]ReplicaObservation{with(ioYes, stalled)}, AssessDeadConfirmed, "nothing received for 3s"},
		{"heartbeats stalled but the agent reaches it: not confirmed",
			[]ReplicaObservation{with(ioYes, func(o *ReplicaObservation) { stalled(o); o.Reach = reach(true, true, 0) })},
			AssessReplicasStillConnected, "agent reaches the master"},
		{"heartbeats still arriving: connected",
			[]ReplicaObservation{with(ioYes, func(o *ReplicaObservation) { stalled(o); o.ProgressAt = t0 })},
			AssessReplicasStillConnected, "io=Yes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Assess("app1", master, votes, tt.replicas, 3, threeZones, t0, strict)
			if a.State != tt.want || !strings.Contains(a.Reason, tt.contains) {
				t.Errorf("got %s (%s), want %s containing %q", a.State, a.Reason, tt.want, tt.contains)
			}
		})
	}
}
