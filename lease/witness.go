package lease

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Grant is one controller's share of a master's lease as the witness sees
// it, with Bound already on this controller's clock (see GossipedBound).
type Grant struct {
	// Bound is the latest time the agent may have received one of that
	// controller's renewals.
	Bound time.Time
	// Enforced and Armed are the agent's last answer to that controller.
	Enforced, Armed bool
	// StoppedFor is the failover record that made it stop renewing for
	// good (0: it still renews).
	StoppedFor uint64
}

// LapseInput is everything the lapse rule looks at.
type LapseInput struct {
	// Record is the open failover record whose old master this is (0:
	// none, and then nothing has lapsed).
	Record uint64
	// Voters are the raft voters' ids: only their grants count.
	Voters []string
	// Grants are the known grants by controller id.
	Grants map[string]Grant
	// TTL and Drift are recovery.lease_ttl and recovery.lease_drift.
	TTL, Drift time.Duration
	// Now is this controller's clock.
	Now time.Time
}

// Lapsed is the lease_expired rule (safety rule 3). The agent holds the
// lease only while renewals from a majority of the voters are younger than
// the TTL, and once armed it fences its server as soon as they are not. So
// the lease has provably lapsed, and the server is fenced or its host is
// gone, when:
//
//   - some voter's grant says the agent enforces the lease and is armed (a
//     lapse at an agent without agent.fence, or one no majority ever held
//     since it was last cleared, fences nothing); and
//   - a majority (n/2+1) of the n voters each stopped renewing for good for
//     this very record or a later one, and its last renewal's bound plus
//     TTL plus drift lies strictly before now: the remaining voters are a
//     minority and cannot hold the lease on their own.
//
// A grant stopped for an earlier record does not count: that controller
// may have renewed again after that record closed, and its newer grant has
// not reached us. A voter without a grant (a crashed controller, gossip
// not arrived) does not count either: its last renewal is unknown. Grants
// of ids that are not voters never count. why names each voter's standing
// with times, for the journal.
func Lapsed(in LapseInput) (bool, string) {
	if in.Record == 0 {
		return false, "no open failover record names this master"
	}
	voters := slices.Sorted(slices.Values(in.Voters))
	voters = slices.Compact(voters)
	if len(voters) == 0 {
		return false, "the raft voters are unknown"
	}
	need := len(voters)/2 + 1
	margin := in.TTL + in.Drift
	var counted, notes []string
	armed := false
	for _, id := range voters {
		g, ok := in.Grants[id]
		switch {
		case !ok:
			notes = append(notes, id+": no grant known")
			continue
		case g.StoppedFor == 0:
			notes = append(notes, fmt.Sprintf("%s: still renewing (last renewal by %s)", id, stamp(g.Bound)))
		case g.StoppedFor < in.Record:
			notes = append(notes, fmt.Sprintf("%s: stopped for the earlier record %d only", id, g.StoppedFor))
		default:
			lapse := g.Bound.Add(margin)
			if lapse.Before(in.Now) {
				counted = append(counted, id)
				notes = append(notes, fmt.Sprintf("%s: stopped for record %d, last renewal by %s, lapsed since %s", id, g.StoppedFor, stamp(g.Bound), stamp(lapse)))
			} else {
				notes = append(notes, fmt.Sprintf("%s: stopped for record %d, last renewal by %s, lapses after %s (in %s)", id, g.StoppedFor, stamp(g.Bound), stamp(lapse), lapse.Sub(in.Now).Round(time.Millisecond)))
			}
		}
		if g.Enforced && g.Armed {
			armed = true
		}
	}
	var ignored []string
	for id := range in.Grants {
		if !slices.Contains(voters, id) {
			ignored = append(ignored, id)
		}
	}
	slices.Sort(ignored)
	if len(ignored) > 0 {
		notes = append(notes, "ignored (not voters): "+strings.Join(ignored, ","))
	}
	detail := fmt.Sprintf("%d of %d voters lapsed (need %d; ttl %s + drift %s): %s", len(counted), len(voters), need, in.TTL, in.Drift, strings.Join(notes, "; "))
	if !armed {
		return false, "no voter saw the agent enforcing an armed lease, so a lapse fences nothing; " + detail
	}
	if len(counted) < need {
		return false, "lease not provably lapsed: " + detail
	}
	return true, "lease lapsed at an armed agent: " + detail
}

// stamp formats a time for the journal.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("15:04:05.000Z")
}

// GossipedBound places a peer's bound on this controller's clock without
// trusting the two clocks to agree: the peer read its grant boundAge after
// its last renewal ended (its monotonic clock), and the verdict carrying
// the grant reached us at receivedAt (ours), so that renewal ended at the
// latest boundAge before receivedAt. Only the clocks' rates must agree,
// which the drift margin covers. A zero receivedAt (our own verdict) keeps
// bound as it is.
func GossipedBound(bound time.Time, boundAge time.Duration, receivedAt time.Time) time.Time {
	if receivedAt.IsZero() {
		return bound
	}
	return receivedAt.Add(-max(boundAge, 0))
}
