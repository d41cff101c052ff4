package detector

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

const master = "10.0.0.1:3306"

// vote builds a fresh verdict about master from controller c in zone z.
func vote(c, z string, s State) Verdict {
	return Verdict{Controller: c, Zone: z, Instance: master, State: s, ObservedAt: t0, Seq: 1}
}

func aged(v Verdict, age time.Duration) Verdict { v.ObservedAt = t0.Add(-age); return v }

func replica(name, io string, advancing bool) ReplicaObservation {
	return ReplicaObservation{Replica: name, Reachable: true, MasterHost: "10.0.0.1", MasterPort: 3306,
		IORunning: io, Advancing: advancing, SQLRunning: true, ObservedAt: t0}
}

var (
	threeZones = map[string]string{"c1": "a", "c2": "b", "c3": "c"}
	oneZone    = map[string]string{"c1": "a", "c2": "a", "c3": "a"}
	deadRepls  = []ReplicaObservation{replica("r1:3306", "Connecting", false), replica("r2:3306", "No", false)}
	strict     = Rules{ReplicaCheck: true, Freshness: 5 * time.Second, MultiZone: true}
)

func TestAssess_States(t *testing.T) {
	tests := []struct {
		name     string
		votes    []Verdict
		replicas []ReplicaObservation
		live     int
		zones    map[string]string
		rules    Rules
		want     AssessState
		down     int
		needed   int
		stale    int
		contains string
	}{
		{name: "all up", votes: []Verdict{vote("c1", "a", StateUp), vote("c2", "b", StateUp), vote("c3", "c", StateUp)},
			replicas: deadRepls, live: 3, zones: threeZones, rules: strict, want: AssessHealthy, needed: 2},
		{name: "degraded counts alive and is surfaced",
			votes:    []Verdict{{Controller: "c1", Zone: "a", Instance: master, State: StateDegraded, Reason: ReasonTooManyConnections, ObservedAt: t0}, vote("c2", "b", StateDown), vote("c3", "c", StateUp)},
			replicas: deadRepls, live: 3, zones: threeZones, rules: strict, want: AssessIsolated, down: 1, needed: 2, contains: "c1: too_many_connections"},
		{name: "all degraded is healthy",
			votes:    []Verdict{{Controller: "c1", Zone: "a", Instance: master, State: StateDegraded, Reason: ReasonAuthError, ObservedAt: t0}},
			replicas: deadRepls, live: 1, rules: strict, want: AssessHealthy, needed: 1, contains: "auth_error"},
		{name: "dead confirmed exact quorum 2 of 3",
			votes:    []Verdict{vote("c1", "a", StateDown), vote("c2", "b", StateDown), vote("c3", "c", StateSuspect)},
			replicas: deadRepls, live: 3, zones: threeZones, rules: strict, want: AssessDeadConfirmed, down: 2, needed: 2, contains: "replicas agree"},
		{name: "one below quorum with a suspect is suspect",
			votes:    []Verdict{vote("c1", "a", StateDown), vote("c2", "b", StateSuspect), vote("c3", "c", StateUp)},
			replicas: deadRepls, live: 3, zones: threeZones, rules: strict, want: AssessSuspect, down: 1, needed: 2},
		{name: "minority down others up is isolated",
			votes:    []Verdict{vote("c1", "a", StateDown), vote("c2", "b", StateUp), vote("c3", "c", StateUp)},
			replicas: deadRepls, live: 3, zones: threeZones, rules: strict, want: AssessIsolated, down: 1, needed: 2, contains: "only c1"},
		{name: "only suspects",
			votes:    []Verdict{vote("c1", "a", StateSuspect), vote("c2", "b", StateSuspect), vote("c3", "c", StateUp)},
			replicas: deadRepls, live: 3, zones: threeZones, rules: strict, want: AssessSuspect, needed: 2},
		{name: "lone down vote with no other votes is suspect",
			votes:    []Verdict{vote("c1", "a", StateDown)},
			replicas: deadRepls, live: 3, zones: threeZones, rules: strict, want: AssessSuspect, down: 1, needed: 2},
		{name: "quorum down but replica io yes",
			votes:    []Verdict{vote("c1", "a", StateDown), vote("c2", "b", StateDown), vote("c3", "c", StateDown)},
			replicas: []ReplicaObservation{replica("r1:3306", "Connecting", false), replica("r2:3306", "Yes", false)},
			live:     3, zones: threeZones, rules: strict, want: AssessReplicasStillConnected, down: 3, needed: 2, contains: "r2:3306"},
		{name: "quorum down but replica advancing",
			votes:    []Verdict{vote("c1", "a", StateDown), vote("c2", "b", StateDown)},
			replicas: []ReplicaObservation{replica("r1:3306", "No", true)},
			live:     3, zones: threeZones, rules: strict, want: AssessReplicasStillConnected, down: 2, needed: 2},
		{name: "replica io yes to another master does not vouch",
			votes: []Verdict{vote("c1", "a", StateDown), vote("c2", "b", StateDown)},
			replicas: []ReplicaObservation{{Replica: "r1:3306", Reachable: true, MasterHost: "10.0.0.9", MasterPort: 3306, IORunning: "Yes", ObservedAt: t0},
				replica("r2:3306", "Connecting", false)},
			live: 3, zones: threeZones, rules: strict, want: AssessDeadConfirmed, down: 2, needed: 2, contains: "not following it"},
		{name: "only replicas of another server cannot confirm",
			votes:    []Verdict{vote("c1", "a", StateDown), vote("c2", "b", StateDown)},
			replicas: []ReplicaObservation{{Replica: "r1:3306", Reachable: true, MasterHost: "db1", MasterPort: 3306, IORunning: "Connecting", ObservedAt: t0}},
			live:     3, zones: threeZones, rules: strict, want: AssessUnknown, down: 2, needed: 2, contains: "not following it"},
		{name: "replica naming the master by an alias still vouches (same server_id)",
			votes:    []Verdict{vote("c1", "a", StateDown), vote("c2", "b", StateDown), vote("c3", "c", StateDown)},
			replicas: []ReplicaObservation{{Replica: "r1:3306", Reachable: true, MasterHost: "db1.example", MasterPort: 3306, IORunning: "Yes", SameServer: true, ObservedAt: t0}},
			live:     3, zones: threeZones, rules: strict, want: AssessReplicasStillConnected, down: 3, needed: 2},
		{name: "replica check off ignores connected replica",
			votes:    []Verdict{vote("c1", "a", StateDown), vote("c2", "b", StateDown)},
			replicas: []ReplicaObservation{replica("r1:3306", "Yes", true)},
			live:     3, zones: threeZones, rules: Rules{Freshness: 5 * time.Second, MultiZone: true}, want: AssessDeadConfirmed, down: 2, needed: 2, contains: "replica check off"},
		{name: "no replica reachable cannot confirm",
			votes: []Verdict{vote("c1", "a", StateDown), vote("c2", "b", StateDown), vote("c3", "c", StateDown)},
			replicas: []ReplicaObservation{{Replica: "r1:3306", Error: "refused", ObservedAt: t0},
				{Replica: "r2:3306", Error: "timeout", ObservedAt: t0}},
			live: 3, zones: threeZones, rules: strict, want: AssessUnknown, down: 3, needed: 2, contains: "no replica that follows it is reachable"},
		{name: "stale replica observation cannot vouch",
			votes: []Verdict{vote("c1", "a", StateDown), vote("c2", "b", StateDown)},
			replicas: []ReplicaObservation{func() ReplicaObservation {
				o := replica("r1:3306", "Yes", true)
				o.ObservedAt = t0.Add(-time.Minute)
				return o
			}()},
			live: 3, zones: threeZones, rules: strict, want: AssessUnknown, down: 2, needed: 2, contains: "stale r1:3306"},
		{name: "one replica unreachable the other agrees",
			votes:    []Verdict{vote("c1", "a", StateDown), vote("c2", "b", StateDown)},
			replicas: []ReplicaObservation{{Replica: "r1:3306", ObservedAt: t0}, replica("r2:3306", "Connecting", false)},
			live:     3, zones: threeZones, rules: strict, want: AssessDeadConfirmed, down: 2, needed: 2, contains: "unreachable r1:3306"},
		{name: "no replicas configured",
			votes: []Verdict{vote("c1", "a", StateDown)}, live: 1, rules: strict, want: AssessDeadConfirmed, down: 1, needed: 1,
			contains: "no replicas configured"},
		{name: "stale down votes ignored",
			votes:    []Verdict{aged(vote("c1", "a", StateDown), 10*time.Second), aged(vote("c2", "b", StateDown), 6*time.Second), vote("c3", "c", StateDown)},
			replicas: deadRepls, live: 3, zones: threeZones, rules: strict, want: AssessSuspect, down: 1, needed: 2, stale: 2, contains: "stale"},
		{name: "vote exactly at freshness still counts",
			votes:    []Verdict{aged(vote("c1", "a", StateDown), 5*time.Second), vote("c2", "b", StateDown)},
			replicas: deadRepls, live: 3, zones: threeZones, rules: strict, want: AssessDeadConfirmed, down: 2, needed: 2},
		{name: "all stale is unknown",
			votes:    []Verdict{aged(vote("c1", "a", StateUp), time.Minute)},
			replicas: deadRepls, live: 3, zones: threeZones, rules: strict, want: AssessUnknown, needed: 2, stale: 1},
		{name: "freshness zero never stale",
			votes:    []Verdict{aged(vote("c1", "a", StateDown), time.Hour), aged(vote("c2", "b", StateDown), time.Hour)},
			replicas: deadRepls, live: 3, zones: threeZones, rules: Rules{ReplicaCheck: true, MultiZone: true}, want: AssessDeadConfirmed, down: 2, needed: 2},
		{name: "votes about the old master are ignored",
			votes:    []Verdict{{Controller: "c1", Zone: "a", Instance: "10.0.0.2:3306", State: StateDown, ObservedAt: t0}, vote("c2", "b", StateUp)},
			replicas: deadRepls, live: 3, zones: threeZones, rules: strict, want: AssessHealthy, needed: 2, stale: 1},
		{name: "receiver clock bounds a peer running ahead",
			votes: []Verdict{func() Verdict {
				v := vote("c1", "a", StateDown)
				v.ObservedAt = t0.Add(time.Hour) // peer clock ahead
				v.ReceivedAt = t0.Add(-time.Minute)
				return v
			}(), vote("c2", "b", StateDown)},
			replicas: deadRepls, live: 3, zones: threeZones, rules: strict, want: AssessSuspect, down: 1, needed: 2, stale: 1},
		{name: "single zone quorum is enough",
			votes:    []Verdict{vote("c1", "a", StateDown), vote("c2", "a", StateDown), vote("c3", "a", StateUp)},
			replicas: deadRepls, live: 3, zones: oneZone, rules: strict, want: AssessDeadConfirmed, down: 2, needed: 2},
		{name: "two zones: quorum from one zone while the other sees it up is isolated",
			votes:    []Verdict{vote("c1", "a", StateDown), vote("c2", "a", StateDown), vote("c3", "b", StateUp)},
			replicas: deadRepls, live: 3, zones: map[string]string{"c1": "a", "c2": "a", "c3": "b"}, rules: strict,
			want: AssessIsolated, down: 2, needed: 2, contains: "all from zone a"},
		{name: "two zones: quorum from one zone, other silent is suspect",
			votes:    []Verdict{vote("c1", "a", StateDown), vote("c2", "a", StateDown), vote("c3", "b", StateSuspect)},
			replicas: deadRepls, live: 3, zones: map[string]string{"c1": "a", "c2": "a", "c3": "b"}, rules: strict,
			want: AssessSuspect, down: 2, needed: 2, contains: "second zone"},
		{name: "two zones: both zones down confirms",
			votes:    []Verdict{vote("c1", "a", StateDown), vote("c2", "a", StateDown), vote("c3", "b", StateDown)},
			replicas: deadRepls, live: 3, zones: map[string]string{"c1": "a", "c2": "a", "c3": "b"}, rules: strict,
			want: AssessDeadConfirmed, down: 3, needed: 2},
		{name: "two zones with multi-zone off",
			votes:    []Verdict{vote("c1", "a", StateDown), vote("c2", "a", StateDown), vote("c3", "b", StateUp)},
			replicas: deadRepls, live: 3, zones: map[string]string{"c1": "a", "c2": "a", "c3": "b"},
			rules: Rules{ReplicaCheck: true, Freshness: 5 * time.Second}, want: AssessDeadConfirmed, down: 2, needed: 2},
		{name: "five controllers exact majority",
			votes: []Verdict{vote("c1", "a", StateDown), vote("c2", "b", StateDown), vote("c3", "c", StateDown),
				vote("c4", "a", StateUp), vote("c5", "b", StateUp)},
			replicas: deadRepls, live: 5, rules: strict, want: AssessDeadConfirmed, down: 3, needed: 3},
		{name: "five controllers one short",
			votes: []Verdict{vote("c1", "a", StateDown), vote("c2", "b", StateDown), vote("c3", "c", StateUp),
				vote("c4", "a", StateUp), vote("c5", "b", StateUp)},
			replicas: deadRepls, live: 5, rules: strict, want: AssessIsolated, down: 2, needed: 3},
		{name: "five controllers two short with suspects",
			votes: []Verdict{vote("c1", "a", StateDown), vote("c2", "b", StateSuspect), vote("c3", "c", StateSuspect),
				vote("c4", "a", StateUp), vote("c5", "b", StateUp)},
			replicas: deadRepls, live: 5, rules: strict, want: AssessSuspect, down: 1, needed: 3},
		{name: "fixed quorum above live count cannot confirm",
			votes:    []Verdict{vote("c1", "a", StateDown), vote("c2", "b", StateDown)},
			replicas: deadRepls, live: 2, zones: map[string]string{"c1": "a", "c2": "b"},
			rules: Rules{Quorum: 3, ReplicaCheck: true, Freshness: 5 * time.Second, MultiZone: true}, want: AssessSuspect, down: 2, needed: 3},
		{name: "fixed quorum 1",
			votes:    []Verdict{vote("c1", "a", StateDown), vote("c2", "b", StateUp), vote("c3", "c", StateUp)},
			replicas: deadRepls, live: 3, rules: Rules{Quorum: 1, ReplicaCheck: true}, want: AssessDeadConfirmed, down: 1, needed: 1},
		{name: "single controller",
			votes: []Verdict{vote("c1", "a", StateDown)}, replicas: deadRepls, live: 1, zones: map[string]string{"c1": "a"},
			rules: strict, want: AssessDeadConfirmed, down: 1, needed: 1},
		{name: "not probed yet",
			votes: []Verdict{{Controller: "c1", Instance: master, ObservedAt: t0}}, live: 1, rules: strict, want: AssessUnknown, needed: 1},
		{name: "no verdicts", live: 3, rules: strict, want: AssessUnknown, needed: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Assess("app1", master, tt.votes, tt.replicas, tt.live, tt.zones, t0, tt.rules)
			if a.State != tt.want {
				t.Fatalf("state = %s, want %s (reason: %s)", a.State, tt.want, a.Reason)
			}
			if a.DownCount != tt.down || a.Needed != tt.needed || len(a.Stale) != tt.stale {
				t.Errorf("down=%d needed=%d stale=%d, want %d %d %d (reason: %s)", a.DownCount, a.Needed, len(a.Stale), tt.down, tt.needed, tt.stale, a.Reason)
			}
			if len(a.Votes)+len(a.Stale) != len(tt.votes) {
				t.Errorf("votes %d + stale %d != %d", len(a.Votes), len(a.Stale), len(tt.votes))
			}
			if tt.contains != "" && !strings.Contains(a.Reason, tt.contains) {
				t.Errorf("reason %q does not mention %q", a.Reason, tt.contains)
			}
			if a.Reason == "" || a.Cluster != "app1" || a.Master != master || !a.At.Equal(t0) {
				t.Errorf("incomplete assessment: %+v", a)
			}
		})
	}
}

func TestAssess_ZonesAndOrder(t *testing.T) {
	votes := []Verdict{vote("c3", "", StateDown), vote("c1", "a", StateDown), vote("c2", "b", StateUp)}
	a := Assess("app1", master, votes, deadRepls, 3, threeZones, t0, strict)
	if a.State != AssessDeadConfirmed {
		t.Fatalf("state %s: %s", a.State, a.Reason)
	}
	if !slices.Equal(a.Zones, []string{"a", "c"}) {
		t.Errorf("zones = %v, want [a c] (c3's zone from the map)", a.Zones)
	}
	var order []string
	for _, v := range a.Votes {
		order = append(order, v.Controller)
	}
	if !slices.Equal(order, []string{"c1", "c2", "c3"}) {
		t.Errorf("votes not sorted: %v", order)
	}
}

func TestRules_Needed(t *testing.T) {
	tests := []struct {
		quorum, live, want int
	}{
		{0, 1, 1}, {0, 2, 2}, {0, 3, 2}, {0, 4, 3}, {0, 5, 3}, {0, 0, 1}, {2, 5, 2}, {3, 1, 3},
	}
	for _, tt := range tests {
		if got := (Rules{Quorum: tt.quorum}).Needed(tt.live); got != tt.want {
			t.Errorf("quorum %d live %d: got %d, want %d", tt.quorum, tt.live, got, tt.want)
		}
	}
}

func TestParseQuorum_Values(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"majority", QuorumMajority, false}, {"Majority", QuorumMajority, false}, {"", QuorumMajority, false},
		{"2", 2, false}, {" 3 ", 3, false}, {"0", 0, true}, {"-1", 0, true}, {"most", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseQuorum(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseQuorum(%q) = %d, %v", tt.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrBadQuorum) {
			t.Errorf("error not wrapping ErrBadQuorum: %v", err)
		}
	}
}
