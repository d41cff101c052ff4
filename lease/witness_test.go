package lease

import (
	"strings"
	"testing"
	"time"
)

func TestLapsed_Table(t *testing.T) {
	now := time.Date(2026, 12, 3, 18, 0, 10, 0, time.UTC)
	ttl, drift := 2*time.Second, 500*time.Millisecond
	old := now.Add(-ttl - drift - time.Millisecond) // lapsed just before now
	fresh := now.Add(-time.Second)                  // lapses in 1.5s
	armedStopped := func(b time.Time) Grant { return Grant{Bound: b, Enforced: true, Armed: true, StoppedFor: 7} }
	stopped := func(b time.Time) Grant { return Grant{Bound: b, Enforced: true, StoppedFor: 7} }
	three := []string{"c1", "c2", "c3"}
	five := []string{"c1", "c2", "c3", "c4", "c5"}
	cases := []struct {
		name   string
		record uint64
		voters []string
		grants map[string]Grant
		want   bool
		why    string // a fragment of why
	}{
		{"3 voters, all stopped and lapsed", 7, three,
			map[string]Grant{"c1": armedStopped(old), "c2": stopped(old), "c3": stopped(old)}, true, "3 of 3 voters lapsed (need 2"},
		{"3 voters, majority lapsed, one still renewing", 7, three,
			map[string]Grant{"c1": armedStopped(old), "c2": stopped(old), "c3": {Bound: now, Enforced: true, Armed: true}}, true, "c3: still renewing"},
		{"3 voters, only one lapsed, one has not stopped", 7, three,
			map[string]Grant{"c1": armedStopped(old), "c2": {Bound: old, Enforced: true, Armed: true}}, false, "c3: no grant known"},
		{"3 voters, second stopped but not lapsed yet", 7, three,
			map[string]Grant{"c1": armedStopped(old), "c2": stopped(fresh)}, false, "lapses after"},
		{"bound + ttl + drift exactly now does not count", 7, three,
			map[string]Grant{"c1": armedStopped(old), "c2": stopped(now.Add(-ttl - drift))}, false, "1 of 3 voters lapsed"},
		{"bound + ttl + drift a nanosecond before now counts", 7, three,
			map[string]Grant{"c1": armedStopped(old), "c2": stopped(now.Add(-ttl - drift - 1))}, true, "2 of 3"},
		{"non-voter grants are ignored", 7, three,
			map[string]Grant{"c1": armedStopped(old), "g1": armedStopped(old), "g2": armedStopped(old)}, false, "ignored (not voters): g1,g2"},
		{"a non-voter's armed answer does not arm", 7, three,
			map[string]Grant{"c1": stopped(old), "c2": stopped(old), "g1": armedStopped(old)}, false, "no voter saw the agent enforcing an armed lease"},
		{"unarmed agent: a lapse fences nothing", 7, three,
			map[string]Grant{"c1": stopped(old), "c2": stopped(old), "c3": stopped(old)}, false, "fences nothing"},
		{"agent not enforcing", 7, three,
			map[string]Grant{"c1": {Bound: old, Armed: true, StoppedFor: 7}, "c2": stopped(old), "c3": stopped(old)}, false, "fences nothing"},
		{"no grants at all", 7, three, nil, false, "0 of 3 voters lapsed"},
		{"no open record", 0, three,
			map[string]Grant{"c1": armedStopped(old), "c2": stopped(old), "c3": stopped(old)}, false, "no open failover record"},
		{"stopped for an earlier record does not count", 7, three,
			map[string]Grant{"c1": armedStopped(old), "c2": {Bound: old, Enforced: true, StoppedFor: 3}, "c3": {Bound: old, StoppedFor: 3}}, false, "stopped for the earlier record 3 only"},
		{"stopped for a later record counts", 7, three,
			map[string]Grant{"c1": armedStopped(old), "c2": {Bound: old, Enforced: true, StoppedFor: 9}}, true, "2 of 3"},
		{"no voters known", 7, nil, map[string]Grant{"c1": armedStopped(old)}, false, "voters are unknown"},
		{"5 voters, 3 lapsed", 7, five,
			map[string]Grant{"c1": armedStopped(old), "c2": stopped(old), "c4": stopped(old), "c5": {Bound: now, Enforced: true, Armed: true}}, true, "3 of 5 voters lapsed (need 3"},
		{"5 voters, 2 lapsed and 1 pending", 7, five,
			map[string]Grant{"c1": armedStopped(old), "c2": stopped(old), "c3": stopped(fresh)}, false, "2 of 5 voters lapsed (need 3"},
		{"5 voters, 3 lapsed but only non-voters armed", 7, five,
			map[string]Grant{"c1": stopped(old), "c2": stopped(old), "c3": stopped(old), "x9": armedStopped(old)}, false, "fences nothing"},
		{"duplicate voter ids count once", 7, []string{"c1", "c1", "c2", "c3"},
			map[string]Grant{"c1": armedStopped(old)}, false, "1 of 3 voters lapsed (need 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, why := Lapsed(LapseInput{Record: tc.record, Voters: tc.voters, Grants: tc.grants, TTL: ttl, Drift: drift, Now: now})
			if got != tc.want {
				t.Errorf("Lapsed = %t, want %t; why: %s", got, tc.want, why)
			}
			if !strings.Contains(why, tc.why) {
				t.Errorf("why %q does not say %q", why, tc.why)
			}
		})
	}
}

func TestLapsed_WhyNamesVotersAndTimes(t *testing.T) {
	now := time.Date(2026, 12, 3, 18, 0, 10, 0, time.UTC)
	b := time.Date(2026, 12, 3, 18, 0, 5, 0, time.UTC)
	_, why := Lapsed(LapseInput{Record: 4, Voters: []string{"c1", "c2", "c3"}, TTL: 2 * time.Second, Drift: 500 * time.Millisecond, Now: now,
		Grants: map[string]Grant{"c1": {Bound: b, Enforced: true, Armed: true, StoppedFor: 4}, "c2": {Bound: now, StoppedFor: 4}}})
	for _, want := range []string{"c1: stopped for record 4, last renewal by 18:00:05.000Z, lapsed since 18:00:07.500Z",
		"c2: stopped for record 4, last renewal by 18:00:10.000Z, lapses after 18:00:12.500Z (in 2.5s)", "c3: no grant known"} {
		if !strings.Contains(why, want) {
			t.Errorf("why %q lacks %q", why, want)
		}
	}
}

func TestGossipedBound_UsesOnlyElapsedTime(t *testing.T) {
	peer := time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC) // the peer's clock
	ours := peer.Add(-time.Hour)                          // ours runs an hour behind
	bound := peer.Add(-3 * time.Second)
	// The peer read its grant 3s after its last renewal ended, and the
	// verdict reached us at ours+0.2s: the renewal ended at most 3s before
	// that, on our clock, whatever the peer's wall clock says.
	got := GossipedBound(bound, 3*time.Second, ours.Add(200*time.Millisecond))
	if want := ours.Add(200*time.Millisecond - 3*time.Second); !got.Equal(want) {
		t.Errorf("GossipedBound = %s, want %s", got, want)
	}
	if got := GossipedBound(bound, 3*time.Second, time.Time{}); !got.Equal(bound) {
		t.Errorf("own verdict: GossipedBound = %s, want %s unchanged", got, bound)
	}
	// A grant without an age is placed at its arrival: the latest possible.
	if got := GossipedBound(bound, 0, ours); !got.Equal(ours) {
		t.Errorf("no age: GossipedBound = %s, want %s", got, ours)
	}
}
