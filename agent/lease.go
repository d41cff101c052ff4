package agent

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Bounds on a renewal (validateLease).
const (
	minLeaseTTL     = 100 * time.Millisecond
	maxLeaseTTL     = 60 * time.Second
	maxLeaseVoters  = 99
	maxControllerID = 128
)

// persistedLease is what the agent keeps in agent.fence.state_file, so a
// restart neither forgets a fence nor loses the arming (see newLeaseCore
// for the start rule).
type persistedLease struct {
	Armed  bool      `json:"armed"`
	Fenced bool      `json:"fenced"`
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since,omitzero"`
	// Voters is the voter count of the last majority that held the lease.
	Voters int `json:"voters,omitempty"`
	// TTLMillis is the longest ttl among the renewals of that majority.
	TTLMillis int64 `json:"ttl_ms,omitempty"`
}

// renewal is one controller's latest renewal, on the agent's monotonic
// clock.
type renewal struct {
	at     time.Duration
	ttl    time.Duration
	voters int
	term   uint64
}

func (r renewal) fresh(now time.Duration) bool { return now-r.at < r.ttl }

// leaseCore is the lease's state machine. It does no I/O and reads no
// clock: every method takes now, a monotonic time since the agent started
// (the Server's clock), and wall, for the status only. It is not safe for
// concurrent use; the Server serializes calls.
type leaseCore struct {
	st       persistedLease
	renewals map[string]renewal
	// grace, when positive, is the end of the start-up renewal an agent
	// restarted while armed counts (see newLeaseCore).
	grace time.Duration
}

// newLeaseCore builds the core from the persisted state (zero when the
// state file does not exist) at start time now.
//
// The start rule:
//   - never armed (fresh install, or cleared): unarmed, so a group that is
//     still starting, or a replica's host, fences nothing; the first
//     majority of fresh renewals arms it.
//   - armed and not fenced: the start counts as the last renewal, valid
//     for the last ttl. If no majority renews within it, the agent fences.
//     A master cut off from the controllers must not stay writable forever
//     because its agent restarted (or was restarted on purpose).
//   - fenced: stays fenced and re-applies the fence (the server may have
//     restarted writable while the agent was down).
func newLeaseCore(st persistedLease, now time.Duration) *leaseCore {
	c := &leaseCore{st: st, renewals: map[string]renewal{}}
	if st.Armed && !st.Fenced {
		ttl := time.Duration(st.TTLMillis) * time.Millisecond
		if ttl < minLeaseTTL || ttl > maxLeaseTTL {
			// A state file without a usable ttl: the safe side is the
			// shortest a controller may ask for.
			ttl = minLeaseTTL
		}
		c.grace = now + ttl
	}
	return c
}

// validateLease checks a renewal; the message names the field and value.
func validateLease(r LeaseRequest) error {
	if err := validateController(r.Controller); err != nil {
		return err
	}
	if r.Voters < 1 || r.Voters > maxLeaseVoters {
		return fmt.Errorf("%w: voters=%d: want 1..%d", ErrBadRequest, r.Voters, maxLeaseVoters)
	}
	if ttl := r.TTL(); ttl < minLeaseTTL || ttl > maxLeaseTTL {
		return fmt.Errorf("%w: ttl_ms=%d: want %d..%d", ErrBadRequest, r.TTLMillis, minLeaseTTL.Milliseconds(), maxLeaseTTL.Milliseconds())
	}
	return nil
}

// validateController checks a controller id: non-empty, short, printable
// ASCII without spaces (it ends up in logs and in the state file).
func validateController(id string) error {
	if id == "" {
		return fmt.Errorf("%w: controller: required", ErrBadRequest)
	}
	if len(id) > maxControllerID {
		return fmt.Errorf("%w: controller=%.20q...: longer than %d bytes", ErrBadRequest, id, maxControllerID)
	}
	for _, r := range id {
		if r <= ' ' || r > '~' {
			return fmt.Errorf("%w: controller=%q: only printable ASCII without spaces", ErrBadRequest, id)
		}
	}
	return nil
}

// fresh returns the renewals younger than their ttl at now.
func (c *leaseCore) fresh(now time.Duration) map[string]renewal {
	out := map[string]renewal{}
	for id, r := range c.renewals {
		if r.fresh(now) {
			out[id] = r
		}
	}
	return out
}

// voters is the count a majority is taken of: the largest among fresh
// renewals and, while armed, the last holding majority's (a controller
// that knows fewer voters than another, or than before, must not shrink
// the majority: larger is the safe side).
func (c *leaseCore) voters(fresh map[string]renewal) int {
	n := 0
	if c.st.Armed {
		n = c.st.Voters
	}
	for _, r := range fresh {
		n = max(n, r.voters)
	}
	return n
}

// majorityHeld reports whether fresh renewals come from a majority.
func (c *leaseCore) majorityHeld(now time.Duration) bool {
	f := c.fresh(now)
	n := c.voters(f)
	return n > 0 && len(f) >= n/2+1
}

// held is majorityHeld, or the start-up grace of a restarted armed agent.
func (c *leaseCore) held(now time.Duration) bool {
	return c.majorityHeld(now) || now < c.grace
}

// expiry is when the lease lapses without further renewals (ok false when
// it is not held now). Held only changes when a renewal goes stale, so
// the first such instant at which it no longer holds is the expiry.
func (c *leaseCore) expiry(now time.Duration) (time.Duration, bool) {
	if !c.held(now) {
		return 0, false
	}
	var ends []time.Duration
	for _, r := range c.fresh(now) {
		ends = append(ends, r.at+r.ttl)
	}
	if c.grace > now {
		ends = append(ends, c.grace)
	}
	slices.Sort(ends)
	for _, t := range ends {
		if !c.held(t) {
			return t, true
		}
	}
	// Unreachable: at the last end nothing is fresh and the grace is
	// over. The latest end is the safe answer anyway.
	return ends[len(ends)-1], true
}

// leaseEvent is what a core call asks the Server to do.
type leaseEvent int

const (
	evNone leaseEvent = iota
	// evPersist: the persisted state changed (armed, voters, ttl).
	evPersist
	// evFence: the core just became fenced; persist and apply the fence.
	evFence
)

// tick checks for a lapse at now: an armed, unfenced lease that no longer
// holds fences, exactly once.
func (c *leaseCore) tick(now time.Duration, wall time.Time) leaseEvent {
	if !c.st.Armed || c.st.Fenced || c.held(now) {
		return evNone
	}
	f := c.fresh(now)
	c.fence(wall, fmt.Sprintf("lease lapsed: %d of %d voters renewed within their ttl (need %d)",
		len(f), c.voters(f), c.voters(f)/2+1))
	c.grace = 0
	return evFence
}

func (c *leaseCore) fence(wall time.Time, reason string) {
	c.st.Fenced = true
	c.st.Reason = reason
	c.st.Since = wall
}

// renew records a renewal received at now. A lease that lapsed before it
// arrived fences first (the renewal is late, whatever the timer did), and
// renewals never unfence. The first majority arms an unarmed lease.
func (c *leaseCore) renew(r LeaseRequest, now time.Duration, wall time.Time) leaseEvent {
	ev := c.tick(now, wall)
	c.renewals[r.Controller] = renewal{at: now, ttl: r.TTL(), voters: r.Voters, term: r.Term}
	if c.st.Fenced || !c.majorityHeld(now) {
		return ev
	}
	// A majority holds: remember its voter count (it may shrink here:
	// this majority counted the larger of the old count and its own) and
	// its longest ttl, for the start rule.
	f := c.fresh(now)
	n := 0
	var ttl time.Duration
	for _, fr := range f {
		n = max(n, fr.voters)
		ttl = max(ttl, fr.ttl)
	}
	changed := !c.st.Armed || c.st.Voters != n || c.st.TTLMillis != ttl.Milliseconds()
	if !c.st.Armed {
		c.st.Armed = true
		c.st.Since = wall
		c.st.Reason = fmt.Sprintf("armed by %s", strings.Join(sortedKeys(f), ", "))
	}
	c.st.Voters, c.st.TTLMillis = n, ttl.Milliseconds()
	// A real majority replaces the start-up grace.
	c.grace = 0
	if changed {
		return evPersist
	}
	return ev
}

// requestFence fences at a controller's request, armed or not. It reports
// whether this call fenced (false when already fenced).
func (c *leaseCore) requestFence(req FenceRequest, wall time.Time) bool {
	if c.st.Fenced {
		return false
	}
	reason := "requested by " + req.Controller
	if req.Reason != "" {
		reason += ": " + req.Reason
	}
	c.fence(wall, reason)
	c.grace = 0
	return true
}

// clear disarms and unfences, and forgets every renewal: the server is
// being promoted, or was demoted in order, and its next lease starts
// from nothing.
func (c *leaseCore) clear(req FenceRequest, wall time.Time) {
	reason := "cleared by " + req.Controller
	if req.Reason != "" {
		reason += ": " + req.Reason
	}
	c.st = persistedLease{Reason: reason, Since: wall}
	c.renewals = map[string]renewal{}
	c.grace = 0
}

// state names the core's state (one of the Fence* constants but
// FenceDisabled; FenceFencing is the Server's, while it applies).
func (c *leaseCore) state(now time.Duration) string {
	switch {
	case c.st.Fenced:
		return FenceFenced
	case !c.st.Armed:
		return FenceUnarmed
	case c.held(now):
		return FenceHeld
	default:
		// Lapsed, not yet ticked: the next tick fences.
		return FenceFencing
	}
}

// response is the answer to a renewal at now.
func (c *leaseCore) response(now time.Duration) LeaseResponse {
	f := c.fresh(now)
	resp := LeaseResponse{Enforced: true, State: c.state(now), Held: c.held(now),
		Holders: sortedKeys(f), Voters: c.voters(f)}
	if end, ok := c.expiry(now); ok {
		resp.ExpiresInMillis = (end - now).Milliseconds()
	}
	return resp
}

// status is the fence status at now (without the Server's actions).
func (c *leaseCore) status(now time.Duration) FenceStatus {
	f := c.fresh(now)
	return FenceStatus{Enforced: true, State: c.state(now), Armed: c.st.Armed, Fenced: c.st.Fenced,
		Holders: sortedKeys(f), Voters: c.voters(f), Since: c.st.Since, Reason: c.st.Reason}
}

// nextWake is when the enforcement loop must look again without any
// request: the lease's expiry while armed and unfenced (ok false when
// there is nothing to wait for).
func (c *leaseCore) nextWake(now time.Duration) (time.Duration, bool) {
	if !c.st.Armed || c.st.Fenced {
		return 0, false
	}
	if end, ok := c.expiry(now); ok {
		return end, true
	}
	// Lapsed already: tick now.
	return now, true
}

func sortedKeys(m map[string]renewal) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
