package agent

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

const ms = time.Millisecond

// step is one input to the lease core in a table test: a renewal, a tick,
// a fence request or a clear, at a monotonic time.
type step struct {
	at    time.Duration
	renew string // controller id
	// voters and ttl of the renewal (defaults 3 and 1s).
	voters int
	ttl    time.Duration
	tick   bool
	fence  bool
	clear  bool

	// Expectations after the step.
	state   string
	ev      leaseEvent // of a renewal or a tick
	holders []string   // nil: not checked
	voterN  int        // 0: not checked
	expires time.Duration
}

func runSteps(t *testing.T, c *leaseCore, steps []step) {
	t.Helper()
	wall := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, s := range steps {
		var ev leaseEvent
		switch {
		case s.renew != "":
			voters, ttl := s.voters, s.ttl
			if voters == 0 {
				voters = 3
			}
			if ttl == 0 {
				ttl = time.Second
			}
			ev = c.renew(LeaseRequest{Controller: s.renew, Voters: voters, TTLMillis: ttl.Milliseconds()}, s.at, wall)
		case s.tick:
			ev = c.tick(s.at, wall)
		case s.fence:
			c.requestFence(FenceRequest{Controller: "c1", Reason: "test"}, wall)
		case s.clear:
			c.clear(FenceRequest{Controller: "c1"}, wall)
		}
		if ev != s.ev {
			t.Errorf("step %d (%+v): event %v, want %v", i, s, ev, s.ev)
		}
		if got := c.state(s.at); s.state != "" && got != s.state {
			t.Errorf("step %d (%+v): state %q, want %q", i, s, got, s.state)
		}
		r := c.response(s.at)
		if s.holders != nil && !reflect.DeepEqual(r.Holders, s.holders) {
			t.Errorf("step %d: holders %v, want %v", i, r.Holders, s.holders)
		}
		if s.voterN != 0 && r.Voters != s.voterN {
			t.Errorf("step %d: voters %d, want %d", i, r.Voters, s.voterN)
		}
		if s.expires != 0 && time.Duration(r.ExpiresInMillis)*ms != s.expires {
			t.Errorf("step %d: expires in %dms, want %s", i, r.ExpiresInMillis, s.expires)
		}
	}
}

func TestLeaseCore(t *testing.T) {
	cases := []struct {
		name  string
		steps []step
	}{
		{"three voters: one renewal is no majority, two arm", []step{
			{at: 0, renew: "c1", state: FenceUnarmed, holders: []string{"c1"}},
			{at: 100 * ms, renew: "c2", ev: evPersist, state: FenceHeld, holders: []string{"c1", "c2"}, voterN: 3, expires: 900 * ms},
			{at: 200 * ms, renew: "c3", state: FenceHeld, expires: 900 * ms},
		}},
		{"five voters need three", []step{
			{at: 0, renew: "c1", voters: 5, state: FenceUnarmed},
			{at: 10 * ms, renew: "c2", voters: 5, state: FenceUnarmed},
			{at: 20 * ms, renew: "c3", voters: 5, ev: evPersist, state: FenceHeld, voterN: 5, expires: 980 * ms},
			{at: 30 * ms, renew: "c4", voters: 5, state: FenceHeld, expires: 980 * ms},
			// c1, c2 stale at 1.01s; c3, c4 alone are 2 of 5.
			{at: 1020 * ms, tick: true, ev: evFence, state: FenceFenced},
		}},
		{"a stale renewal does not count", []step{
			{at: 0, renew: "c1", state: FenceUnarmed},
			{at: time.Second, renew: "c2", state: FenceUnarmed, holders: []string{"c2"}},
			{at: 1500 * ms, renew: "c1", ev: evPersist, state: FenceHeld},
		}},
		{"ttl is per renewal", []step{
			{at: 0, renew: "c1", ttl: 5 * time.Second, state: FenceUnarmed},
			{at: 0, renew: "c2", ttl: 200 * ms, ev: evPersist, state: FenceHeld, expires: 200 * ms},
			{at: 199 * ms, tick: true, state: FenceHeld},
			{at: 200 * ms, tick: true, ev: evFence, state: FenceFenced},
		}},
		{"the largest voter count among fresh renewals wins", []step{
			{at: 0, renew: "c1", voters: 3, state: FenceUnarmed},
			{at: 0, renew: "c2", voters: 5, state: FenceUnarmed, voterN: 5},
			{at: 0, renew: "c3", voters: 3, ev: evPersist, state: FenceHeld, voterN: 5},
		}},
		{"the armed voter count stays until a majority of it renews", []step{
			{at: 0, renew: "c1", voters: 5},
			{at: 0, renew: "c2", voters: 5},
			{at: 0, renew: "c3", voters: 5, ev: evPersist, state: FenceHeld},
			// The group shrank to 3: two renewals of "3" are not a
			// majority of the armed 5 ...
			{at: 900 * ms, renew: "c1", voters: 3, state: FenceHeld, voterN: 5},
			{at: 900 * ms, renew: "c2", voters: 3, state: FenceHeld, voterN: 5},
			// ... so without c3 it lapses when c3's renewal goes stale.
			{at: time.Second, tick: true, ev: evFence, state: FenceFenced},
		}},
		{"shrinking takes one majority of the old count", []step{
			{at: 0, renew: "c1", voters: 5},
			{at: 0, renew: "c2", voters: 5},
			{at: 0, renew: "c3", voters: 5, ev: evPersist},
			{at: 500 * ms, renew: "c1", voters: 3, voterN: 5, state: FenceHeld},
			{at: 500 * ms, renew: "c2", voters: 3, voterN: 5, state: FenceHeld},
			{at: 500 * ms, renew: "c3", voters: 3, ev: evPersist, voterN: 3, state: FenceHeld},
			{at: 1200 * ms, renew: "c1", voters: 3, state: FenceHeld},
			{at: 1200 * ms, renew: "c2", voters: 3, state: FenceHeld, voterN: 3},
			{at: 1600 * ms, tick: true, state: FenceHeld},
		}},
		{"unarmed never fences", []step{
			{at: 0, renew: "c1"},
			{at: 5 * time.Second, tick: true, state: FenceUnarmed},
			{at: 10 * time.Second, renew: "c1", state: FenceUnarmed},
		}},
		{"lapse fences exactly once; renewals never unfence", []step{
			{at: 0, renew: "c1"},
			{at: 0, renew: "c2", ev: evPersist, state: FenceHeld},
			{at: 999 * ms, tick: true, state: FenceHeld},
			{at: time.Second, tick: true, ev: evFence, state: FenceFenced},
			{at: 1001 * ms, tick: true, state: FenceFenced},
			{at: 1100 * ms, renew: "c1", state: FenceFenced},
			{at: 1100 * ms, renew: "c2", state: FenceFenced},
			{at: 1100 * ms, renew: "c3", state: FenceFenced},
			{at: 1200 * ms, tick: true, state: FenceFenced},
		}},
		{"a late renewal finds the lease lapsed and fences", []step{
			{at: 0, renew: "c1"},
			{at: 0, renew: "c2", ev: evPersist},
			{at: 1500 * ms, renew: "c1", ev: evFence, state: FenceFenced},
		}},
		{"clear disarms and forgets renewals", []step{
			{at: 0, renew: "c1"},
			{at: 0, renew: "c2", ev: evPersist},
			{at: 2 * time.Second, tick: true, ev: evFence, state: FenceFenced},
			{at: 2 * time.Second, clear: true, state: FenceUnarmed, holders: []string{}},
			{at: 2100 * ms, renew: "c1", state: FenceUnarmed, holders: []string{"c1"}},
			{at: 5 * time.Second, tick: true, state: FenceUnarmed},
			{at: 5 * time.Second, renew: "c1", state: FenceUnarmed},
			{at: 5 * time.Second, renew: "c3", ev: evPersist, state: FenceHeld},
		}},
		{"a requested fence fences an unarmed agent too", []step{
			{at: 0, fence: true, state: FenceFenced},
			{at: 0, renew: "c1", state: FenceFenced},
			{at: 0, renew: "c2", state: FenceFenced},
		}},
		{"expiry is the k-th latest end", []step{
			{at: 0, renew: "c1"},
			{at: 300 * ms, renew: "c2", ev: evPersist, expires: 700 * ms},
			{at: 600 * ms, renew: "c3", state: FenceHeld, expires: 700 * ms},
			{at: 1000 * ms, tick: true, state: FenceHeld, expires: 300 * ms, holders: []string{"c2", "c3"}},
			{at: 1299 * ms, tick: true, state: FenceHeld, expires: 1 * ms},
			{at: 1300 * ms, tick: true, ev: evFence, state: FenceFenced},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			runSteps(t, newLeaseCore(persistedLease{}, 0), tc.steps)
		})
	}
}

// TestLeaseCoreRestart covers the start rule for each persisted state.
func TestLeaseCoreRestart(t *testing.T) {
	start := 10 * time.Second // the agent's clock at the restart
	cases := []struct {
		name  string
		st    persistedLease
		steps []step
	}{
		{"never armed: no fence without renewals", persistedLease{}, []step{
			{at: start, tick: true, state: FenceUnarmed},
			{at: start + time.Hour, tick: true, state: FenceUnarmed},
		}},
		{"cleared (reason kept, not armed): no fence", persistedLease{Reason: "cleared by c1"}, []step{
			{at: start + time.Minute, tick: true, state: FenceUnarmed},
		}},
		{"armed: the start counts as a renewal of the last ttl", persistedLease{Armed: true, Voters: 3, TTLMillis: 2000}, []step{
			{at: start, tick: true, state: FenceHeld, expires: 2 * time.Second},
			{at: start + 1999*ms, tick: true, state: FenceHeld},
			{at: start + 2*time.Second, tick: true, ev: evFence, state: FenceFenced},
		}},
		{"armed: a minority renewing does not extend the start grace", persistedLease{Armed: true, Voters: 3, TTLMillis: 1000}, []step{
			{at: start + 500*ms, renew: "c1", ttl: 5 * time.Second, state: FenceHeld},
			{at: start + time.Second, tick: true, ev: evFence, state: FenceFenced},
		}},
		{"armed: a majority renewing takes over", persistedLease{Armed: true, Voters: 3, TTLMillis: 1000}, []step{
			{at: start + 500*ms, renew: "c1", state: FenceHeld},
			{at: start + 600*ms, renew: "c2", state: FenceHeld, expires: 900 * ms},
			{at: start + 1400*ms, tick: true, state: FenceHeld},
			{at: start + 1500*ms, tick: true, ev: evFence, state: FenceFenced},
		}},
		{"armed: the persisted voter count holds after restart", persistedLease{Armed: true, Voters: 5, TTLMillis: 1000}, []step{
			{at: start + 100*ms, renew: "c1", voters: 3},
			{at: start + 100*ms, renew: "c2", voters: 3, state: FenceHeld, voterN: 5},
			{at: start + time.Second, tick: true, ev: evFence, state: FenceFenced},
		}},
		{"armed without a ttl: the shortest ttl", persistedLease{Armed: true, Voters: 3}, []step{
			{at: start + minLeaseTTL, tick: true, ev: evFence, state: FenceFenced},
		}},
		{"fenced: stays fenced", persistedLease{Armed: true, Fenced: true, Voters: 3, TTLMillis: 1000, Reason: "lease lapsed"}, []step{
			{at: start, tick: true, state: FenceFenced},
			{at: start, renew: "c1", state: FenceFenced},
			{at: start, renew: "c2", state: FenceFenced},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			runSteps(t, newLeaseCore(tc.st, start), tc.steps)
		})
	}
}

func TestValidateLease(t *testing.T) {
	ok := LeaseRequest{Controller: "c1", Voters: 3, TTLMillis: 2000}
	cases := []struct {
		name string
		mod  func(*LeaseRequest)
		want string // "" valid
	}{
		{"valid", func(*LeaseRequest) {}, ""},
		{"no controller", func(r *LeaseRequest) { r.Controller = "" }, "controller: required"},
		{"controller with a space", func(r *LeaseRequest) { r.Controller = "c 1" }, `controller="c 1"`},
		{"controller too long", func(r *LeaseRequest) { r.Controller = strings.Repeat("x", 200) }, "longer than 128"},
		{"zero voters", func(r *LeaseRequest) { r.Voters = 0 }, "voters=0: want 1..99"},
		{"100 voters", func(r *LeaseRequest) { r.Voters = 100 }, "voters=100"},
		{"99 voters", func(r *LeaseRequest) { r.Voters = 99 }, ""},
		{"ttl too short", func(r *LeaseRequest) { r.TTLMillis = 99 }, "ttl_ms=99: want 100..60000"},
		{"ttl shortest", func(r *LeaseRequest) { r.TTLMillis = 100 }, ""},
		{"ttl too long", func(r *LeaseRequest) { r.TTLMillis = 60001 }, "ttl_ms=60001"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ok
			tc.mod(&r)
			err := validateLease(r)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrBadRequest)):
				t.Fatalf("error %v, want one containing %q and ErrBadRequest", err, tc.want)
			}
		})
	}
}

func TestLeaseStateFile(t *testing.T) {
	path := t.TempDir() + "/fence.json"
	st, err := loadLeaseState(path)
	if err != nil || st != (persistedLease{}) {
		t.Fatalf("missing file: %+v, %v; want zero state", st, err)
	}
	want := persistedLease{Armed: true, Fenced: true, Reason: "lease lapsed", Voters: 3, TTLMillis: 1500,
		Since: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	if err := saveLeaseState(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := loadLeaseState(path)
	if err != nil || !got.Since.Equal(want.Since) {
		t.Fatalf("load: %+v, %v", got, err)
	}
	got.Since = want.Since
	if got != want {
		t.Fatalf("load: %+v, want %+v", got, want)
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadLeaseState(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("corrupt file: %v, want an error naming it", err)
	}
}
