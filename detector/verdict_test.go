package detector

import (
	"encoding/json"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)

func fail(reason Reason) ProbeResult {
	return ProbeResult{Instance: "m:3306", Reason: reason, At: t0}
}

func okResult() ProbeResult {
	return ProbeResult{Instance: "m:3306", OK: true, Reason: ReasonOK, At: t0}
}

func TestNextVerdict_Sequences(t *testing.T) {
	tests := []struct {
		name      string
		threshold int
		results   []ProbeResult
		want      State
		failures  int
		reason    Reason
	}{
		{"first ok", 3, []ProbeResult{okResult()}, StateUp, 0, ReasonOK},
		{"first failure is suspect", 3, []ProbeResult{fail(ReasonRefused)}, StateSuspect, 1, ReasonRefused},
		{"below threshold", 3, []ProbeResult{fail(ReasonRefused), fail(ReasonTimeout)}, StateSuspect, 2, ReasonTimeout},
		{"at threshold", 3, []ProbeResult{fail(ReasonRefused), fail(ReasonRefused), fail(ReasonRefused)}, StateDown, 3, ReasonRefused},
		{"beyond threshold stays down", 2, []ProbeResult{fail(ReasonRefused), fail(ReasonRefused), fail(ReasonUnknown)}, StateDown, 3, ReasonUnknown},
		{"ok resets", 2, []ProbeResult{fail(ReasonRefused), fail(ReasonRefused), okResult()}, StateUp, 0, ReasonOK},
		{"ok in between resets count", 3, []ProbeResult{fail(ReasonRefused), fail(ReasonRefused), okResult(), fail(ReasonRefused)}, StateSuspect, 1, ReasonRefused},
		{"too many connections is degraded", 1, []ProbeResult{fail(ReasonTooManyConnections)}, StateDegraded, 0, ReasonTooManyConnections},
		{"auth error is degraded", 1, []ProbeResult{fail(ReasonAuthError)}, StateDegraded, 0, ReasonAuthError},
		{"degraded resets count", 2, []ProbeResult{fail(ReasonTimeout), fail(ReasonAuthError), fail(ReasonTimeout)}, StateSuspect, 1, ReasonTimeout},
		{"shutdown counts as failure", 1, []ProbeResult{fail(ReasonReadOnlyOrShutdown)}, StateDown, 1, ReasonReadOnlyOrShutdown},
		{"query error counts as failure", 2, []ProbeResult{fail(ReasonQueryError)}, StateSuspect, 1, ReasonQueryError},
		{"threshold zero acts as one", 0, []ProbeResult{fail(ReasonTimeout)}, StateDown, 1, ReasonTimeout},
		{"threshold one", 1, []ProbeResult{fail(ReasonRefused)}, StateDown, 1, ReasonRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Verdict{Controller: "c1", Zone: "a"}
			for _, r := range tt.results {
				v = NextVerdict(v, r, tt.threshold)
			}
			if v.State != tt.want || v.Failures != tt.failures || v.Reason != tt.reason {
				t.Fatalf("got state=%s failures=%d reason=%s, want %s %d %s", v.State, v.Failures, v.Reason, tt.want, tt.failures, tt.reason)
			}
			if v.Seq != uint64(len(tt.results)) {
				t.Errorf("seq = %d, want %d", v.Seq, len(tt.results))
			}
			if v.Controller != "c1" || v.Zone != "a" || v.Instance != "m:3306" {
				t.Errorf("identity not kept: %+v", v)
			}
		})
	}
}

func TestNextVerdict_NewInstanceResetsCount(t *testing.T) {
	v := Verdict{Controller: "c1", Instance: "old:3306", State: StateSuspect, Failures: 2, Seq: 7}
	got := NextVerdict(v, ProbeResult{Instance: "new:3306", Reason: ReasonRefused, At: t0}, 3)
	if got.Instance != "new:3306" || got.Failures != 1 || got.State != StateSuspect || got.Seq != 8 {
		t.Fatalf("got %+v", got)
	}
}

// The last position a probe read survives the failures that follow (it is
// what the dead master is known to have committed), is replaced by a newer
// answer, and is forgotten when the master changes.
func TestNextVerdict_LastPosition(t *testing.T) {
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	ok := func(pos string, sec int) ProbeResult {
		return ProbeResult{Instance: "m:3306", OK: true, Reason: ReasonOK, At: at(sec), Position: pos}
	}
	v := Verdict{Controller: "c1"}
	v = NextVerdict(v, ok("", 0), 3) // flavor not known yet
	if v.LastPosition != "" {
		t.Fatalf("position before any was read: %+v", v)
	}
	v = NextVerdict(v, ok("0-1-5", 1), 3)
	v = NextVerdict(v, ok("0-1-9", 2), 3)
	for sec := 3; sec <= 5; sec++ {
		v = NextVerdict(v, ProbeResult{Instance: "m:3306", Reason: ReasonRefused, At: at(sec)}, 3)
	}
	if v.State != StateDown || v.LastPosition != "0-1-9" || !v.LastPositionAt.Equal(at(2)) {
		t.Fatalf("after the master died: %+v, want down with last position 0-1-9 at %s", v, at(2))
	}
	huge := ProbeResult{Instance: "m:3306", OK: true, Reason: ReasonOK, At: at(6), Position: string(make([]byte, maxGossipPosition+1))}
	if got := NextVerdict(v, huge, 3); got.LastPosition != "0-1-9" {
		t.Errorf("a position too large to gossip replaced the last one: %q", got.LastPosition)
	}
	if got := NextVerdict(v, ProbeResult{Instance: "r:3306", Reason: ReasonRefused, At: at(6)}, 3); got.LastPosition != "" || !got.LastPositionAt.IsZero() {
		t.Errorf("new master kept the old one's position: %+v", got)
	}
}

func TestReason_Alive(t *testing.T) {
	tests := []struct {
		r    Reason
		want bool
	}{
		{ReasonOK, true}, {ReasonAuthError, true}, {ReasonTooManyConnections, true},
		{ReasonRefused, false}, {ReasonTimeout, false}, {ReasonReadOnlyOrShutdown, false},
		{ReasonQueryError, false}, {ReasonUnknown, false},
	}
	for _, tt := range tests {
		if got := tt.r.Alive(); got != tt.want {
			t.Errorf("%s.Alive() = %t, want %t", tt.r, got, tt.want)
		}
	}
}

func TestVerdict_JSONRoundTrip(t *testing.T) {
	v := Verdict{Controller: "c1", Zone: "a", Instance: "m:3306", State: StateDown, Failures: 3,
		Reason: ReasonTooManyConnections, ObservedAt: t0, Seq: 9, ReceivedAt: t0}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var got Verdict
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	v.ReceivedAt = time.Time{} // local only
	if !got.ObservedAt.Equal(v.ObservedAt) || got.State != v.State || got.Reason != v.Reason || got.Seq != v.Seq || !got.ReceivedAt.IsZero() {
		t.Fatalf("round trip: got %+v from %s", got, b)
	}
	var r Reason
	if err := r.UnmarshalText([]byte("from_the_future")); err != nil || r != ReasonUnknown {
		t.Fatalf("unknown name: %v %v", r, err)
	}
}

func TestVerdict_NewerThan(t *testing.T) {
	tests := []struct {
		name     string
		v, old   Verdict
		expected bool
	}{
		{"later time", Verdict{ObservedAt: t0.Add(time.Second), Seq: 1}, Verdict{ObservedAt: t0, Seq: 5}, true},
		{"earlier time", Verdict{ObservedAt: t0, Seq: 9}, Verdict{ObservedAt: t0.Add(time.Second), Seq: 1}, false},
		{"same time higher seq", Verdict{ObservedAt: t0, Seq: 2}, Verdict{ObservedAt: t0, Seq: 1}, true},
		{"identical", Verdict{ObservedAt: t0, Seq: 2}, Verdict{ObservedAt: t0, Seq: 2}, false},
	}
	for _, tt := range tests {
		if got := tt.v.NewerThan(tt.old); got != tt.expected {
			t.Errorf("%s: got %t", tt.name, got)
		}
	}
}

func TestReplicaObservation_StillConnected(t *testing.T) {
	base := ReplicaObservation{Replica: "r1:3306", Reachable: true, MasterHost: "127.0.0.1", MasterPort: 3306}
	with := func(f func(*ReplicaObservation)) ReplicaObservation { o := base; f(&o); return o }
	tests := []struct {
		name   string
		o      ReplicaObservation
		master string
		want   bool
	}{
		{"io yes", with(func(o *ReplicaObservation) { o.IORunning = "Yes" }), "127.0.0.1:3306", true},
		{"io connecting not advancing", with(func(o *ReplicaObservation) { o.IORunning = "Connecting" }), "127.0.0.1:3306", false},
		{"io no but advancing", with(func(o *ReplicaObservation) { o.IORunning = "No"; o.Advancing = true }), "127.0.0.1:3306", true},
		{"unreachable", with(func(o *ReplicaObservation) { o.IORunning = "Yes"; o.Reachable = false }), "127.0.0.1:3306", false},
		{"follows another master", with(func(o *ReplicaObservation) { o.IORunning = "Yes" }), "127.0.0.1:3307", false},
		{"host case-insensitive", with(func(o *ReplicaObservation) { o.MasterHost = "DB1"; o.IORunning = "Yes" }), "db1:3306", true},
		{"not a replica", ReplicaObservation{Replica: "r1", Reachable: true, IORunning: "Yes"}, "127.0.0.1:3306", false},
		{"ipv6", with(func(o *ReplicaObservation) { o.MasterHost = "::1"; o.IORunning = "Yes" }), "[::1]:3306", true},
	}
	for _, tt := range tests {
		if got := tt.o.StillConnected(tt.master); got != tt.want {
			t.Errorf("%s: got %t, want %t", tt.name, got, tt.want)
		}
	}
}
