package harness

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The split-brain checkers: pure functions over what the samplers and the
// write loads recorded, so each rule is table-tested with synthetic
// recordings (including ones that must fail) and the e2e tests only
// collect.

// Violation is one broken rule with the evidence that breaks it.
type Violation struct {
	Rule   string
	Detail string
}

func (v Violation) String() string { return v.Rule + ": " + v.Detail }

// Violations formats a list for a failure message: per rule, how many and
// the first three, so one rule's flood does not hide another rule.
func Violations(vs []Violation) string {
	var rules []string
	byRule := map[string][]Violation{}
	for _, v := range vs {
		if _, ok := byRule[v.Rule]; !ok {
			rules = append(rules, v.Rule)
		}
		byRule[v.Rule] = append(byRule[v.Rule], v)
	}
	var b strings.Builder
	for _, r := range rules {
		fmt.Fprintf(&b, "\n  %s (%d):", r, len(byRule[r]))
		for i, v := range byRule[r] {
			if i == 3 {
				fmt.Fprintf(&b, "\n    ... and %d more", len(byRule[r])-3)
				break
			}
			b.WriteString("\n    " + v.Detail)
		}
	}
	return b.String()
}

// Rule names.
const (
	RuleTwoWritable     = "two writable servers"
	RuleAckAfterPromote = "old master acknowledged a write after the new master was writable"
	RuleNotFenced       = "old master not observed read-only in time"
	RuleWritableAgain   = "server writable again"
	RuleLostWrite       = "acknowledged write lost"
)

// DefaultMaxGap is the CheckNeverTwoWritable gap for samplers at the
// default period: a server seen writable twice less than this apart, with
// no read-only sample of it in between, is taken as writable throughout.
const DefaultMaxGap = 3 * DefaultSampleEvery

// span is a time a server is taken as writable throughout.
type span struct {
	server      string
	from, to    time.Time
	first, last Sample
}

// CheckNeverTwoWritable reports the times two different servers were
// writable together, by two rules:
//
//  1. One round of one sampler (the reads of every server sent together)
//     saw two servers writable.
//  2. Across samplers: every server's samples, from all samplers merged in
//     time order, form writable spans. A span starts at a writable sample's
//     Sent and ends at the Answered of the last writable sample that
//     follows without a read_only sample of that server in between and with
//     gaps under maxGap (unknown samples carry no information and neither
//     break nor extend a span). The spans of two servers must not overlap.
//
// A sample's answer describes one instant between Sent and Answered, so
// overlapping spans mean the observations cannot be ordered: the checker
// cannot rule out that both servers took writes at once and reports it.
// Inside a span the rule assumes that a server does not become read-only
// and writable again within maxGap unobserved; a correct failover puts the
// fence and the promotion between the old master's last writable answer
// and the new one's first, seconds apart, far more than any sample's
// interval (bounded by the sampler's timeout) or maxGap. Only when the two
// land within that much of each other can this rule report a near miss
// that was not a split brain.
func CheckNeverTwoWritable(samples []Sample, maxGap time.Duration) []Violation {
	var out []Violation
	// Rule 1.
	type roundKey struct {
		sampler string
		round   int
	}
	rounds := map[roundKey][]Sample{}
	for _, s := range samples {
		if s.State == Writable {
			k := roundKey{s.Sampler, s.Round}
			rounds[k] = append(rounds[k], s)
		}
	}
	keys := make([]roundKey, 0, len(rounds))
	for k := range rounds {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b roundKey) int {
		return cmp.Or(cmp.Compare(a.sampler, b.sampler), cmp.Compare(a.round, b.round))
	})
	for _, k := range keys {
		var servers []string
		for _, s := range rounds[k] {
			if !slices.Contains(servers, s.Server) {
				servers = append(servers, s.Server)
			}
		}
		if len(servers) > 1 {
			slices.Sort(servers)
			out = append(out, Violation{RuleTwoWritable, fmt.Sprintf("sampler %s round %d (sent %s) saw %s all writable",
				k.sampler, k.round, stamp(rounds[k][0].Sent), strings.Join(servers, ", "))})
		}
	}
	// Rule 2.
	spans := writableSpans(samples, maxGap)
	slices.SortFunc(spans, func(a, b span) int { return a.from.Compare(b.from) })
	for i, a := range spans {
		for _, b := range spans[i+1:] {
			if !b.from.Before(a.to) && !b.from.Equal(a.to) {
				break // sorted by start: no later span overlaps a
			}
			if a.server == b.server {
				continue
			}
			out = append(out, Violation{RuleTwoWritable, fmt.Sprintf("%s writable %s–%s (sampler %s … %s) overlaps %s writable %s–%s (sampler %s … %s)",
				a.server, stamp(a.from), stamp(a.to), a.first.Sampler, a.last.Sampler,
				b.server, stamp(b.from), stamp(b.to), b.first.Sampler, b.last.Sampler)})
		}
	}
	return out
}

// writableSpans builds every server's writable spans (see
// CheckNeverTwoWritable).
func writableSpans(samples []Sample, maxGap time.Duration) []span {
	byServer := map[string][]Sample{}
	for _, s := range samples {
		byServer[s.Server] = append(byServer[s.Server], s)
	}
	var out []span
	servers := make([]string, 0, len(byServer))
	for srv := range byServer {
		servers = append(servers, srv)
	}
	slices.Sort(servers)
	for _, srv := range servers {
		ss := byServer[srv]
		slices.SortStableFunc(ss, func(a, b Sample) int { return a.Answered.Compare(b.Answered) })
		var cur *span
		for _, s := range ss {
			switch s.State {
			case ReadOnly:
				if cur != nil {
					out = append(out, *cur)
					cur = nil
				}
			case Writable:
				if cur != nil && s.Sent.Sub(cur.to) <= maxGap {
					if s.Answered.After(cur.to) {
						cur.to = s.Answered
					}
					cur.last = s
					continue
				}
				if cur != nil {
					out = append(out, *cur)
				}
				cur = &span{server: srv, from: s.Sent, to: s.Answered, first: s, last: s}
			}
		}
		if cur != nil {
			out = append(out, *cur)
		}
	}
	return out
}

// FirstObserved returns the first sample (by Answered) of server in state
// answered after since, from the named samplers only (any when none are
// named).
func FirstObserved(samples []Sample, server string, state Access, since time.Time, samplers ...string) (Sample, bool) {
	var best Sample
	found := false
	for _, s := range samples {
		if s.Server != server || s.State != state || !s.Answered.After(since) {
			continue
		}
		if len(samplers) > 0 && !slices.Contains(samplers, s.Sampler) {
			continue
		}
		if !found || s.Answered.Before(best.Answered) {
			best, found = s, true
		}
	}
	return best, found
}

// CheckNoAckAfter reports the old master's acknowledged writes that
// arrived after the new master was first observed writable (firstWritable:
// the Answered time of that sample). Acks is the write load's record of the
// writer that writes to the old master's own address.
func CheckNoAckAfter(acks []Ack, firstWritable time.Time) []Violation {
	var out []Violation
	for _, a := range acks {
		if a.At.After(firstWritable) {
			out = append(out, Violation{RuleAckAfterPromote, fmt.Sprintf("write %d acknowledged at %s (sent %s), %s after the new master was first seen writable at %s",
				a.ID, stamp(a.At), stamp(a.Sent), a.At.Sub(firstWritable).Round(time.Millisecond), stamp(firstWritable))})
		}
	}
	return out
}

// CheckReadOnlyWithin returns how long after cut server was first
// observed read-only (an actual read_only=1 answer; unknown samples never
// count) by the named samplers, and a violation when that is later than
// limit or never.
func CheckReadOnlyWithin(samples []Sample, server string, cut time.Time, limit time.Duration, samplers ...string) (time.Duration, []Violation) {
	s, ok := FirstObserved(samples, server, ReadOnly, cut, samplers...)
	if !ok {
		last := "no sample"
		for _, x := range samples {
			if x.Server == server && (len(samplers) == 0 || slices.Contains(samplers, x.Sampler)) {
				last = fmt.Sprintf("last sample %s at %s by %s", x.State, stamp(x.Answered), x.Sampler)
			}
		}
		return 0, []Violation{{RuleNotFenced, fmt.Sprintf("%s never observed read-only after the cut at %s (samplers %v; %s)",
			server, stamp(cut), samplers, last)}}
	}
	took := s.Answered.Sub(cut)
	if took > limit {
		return took, []Violation{{RuleNotFenced, fmt.Sprintf("%s first observed read-only %s after the cut (by %s), limit %s",
			server, took.Round(time.Millisecond), s.Sampler, limit)}}
	}
	return took, nil
}

// CheckNotWritableAfter reports every writable sample of server sent after
// since (the old master after its fence, or after healing the cut).
func CheckNotWritableAfter(samples []Sample, server string, since time.Time) []Violation {
	var out []Violation
	for _, s := range samples {
		if s.Server == server && s.State == Writable && s.Sent.After(since) {
			out = append(out, Violation{RuleWritableAgain, fmt.Sprintf("%s writable at %s (sampler %s), after %s",
				server, stamp(s.Answered), s.Sampler, stamp(since))})
		}
	}
	return out
}

// MissingIDs returns the acknowledged ids not in have.
func MissingIDs(acked, have []int64) []int64 {
	set := make(map[int64]bool, len(have))
	for _, id := range have {
		set[id] = true
	}
	var missing []int64
	for _, id := range acked {
		if !set[id] {
			missing = append(missing, id)
		}
	}
	return missing
}

// CheckNothingLost reports every acknowledged id the final master lacks.
func CheckNothingLost(acked, have []int64) []Violation {
	var out []Violation
	for _, id := range MissingIDs(acked, have) {
		out = append(out, Violation{RuleLostWrite, fmt.Sprintf("id %d acknowledged but not on the final master", id)})
	}
	return out
}

func stamp(t time.Time) string { return t.UTC().Format("15:04:05.000") }
