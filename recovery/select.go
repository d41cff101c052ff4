package recovery

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/topology"
)

// CandidateInput is what the leader observed about one replica of the dead
// (or switching) master. It is plain data so that selection stays a pure
// function: the same inputs always choose the same replica, on any
// controller, and the failover record can explain the choice.
type CandidateInput struct {
	Address     string
	Zone        string
	ConfigOrder int // position in the cluster's instance list; MHA's tie-breaker

	CandidateMaster bool // MHA candidate_master: preferred as new master
	NoMaster        bool // MHA no_master: never promoted (still a catch-up source)
	CheckReplDelay  bool // MHA check_repl_delay: refuse it when it lags beyond the limit

	Reachable       bool
	LogBin          bool
	LogSlaveUpdates bool
	Errant          bool   // has transactions its master never had
	ErrantDetail    string // the errant GTIDs, quoted in the reason

	// Delay is the replica's MASTER_DELAY. A delayed replica holds back its
	// relay log on purpose: it is never promoted and not ranked (its binlog
	// lacks what it received), and no failover waits for it.
	Delay time.Duration
	// RelayBacklog says why the replica could not apply the relay log it
	// received ("" when it did). It is then never promoted: promotion and
	// catch-up discard relay logs (change master, reset replication), so what
	// it received but did not apply would be lost. Position is then what it
	// applied, which is what its binlog can serve.
	RelayBacklog string

	Lag      time.Duration // replication lag at the last observation
	LagKnown bool          // false when the replica reported no lag (SQL thread stopped...)

	// Position is what the replica will have once its relay log is applied
	// (received GTIDs, MariaDB gtid_io_pos, or the master's file/pos read):
	// MHA compares what replicas received, not what they executed, because a
	// received transaction can still be applied and must not be lost.
	Position      topology.Position
	PositionKnown bool

	ReplicationMode string // "gtid" or "file"; quoted in the chosen replica's reason
	IOError         string // last IO thread error; informational (expected once the master died)
	SQLError        string // last SQL thread error: it cannot apply its relay log, so it is refused

	// Filters are the replica's replicate-* rules. A replica whose filters
	// differ from the other replicas' is refused (MHA's check_repl_filter):
	// promoted, it would lack what it filtered out, or the others would.
	Filters topology.ReplicationFilters
}

// SelectRules are the cluster-wide rules of a selection. The zero value is
// MHA's behaviour without a lag limit.
type SelectRules struct {
	// MaxLag refuses replicas (with CheckReplDelay) lagging more than this;
	// 0 means no limit. A lagging master would first have to apply its
	// backlog, prolonging the outage (MHA: ~100 MB of relay log).
	MaxLag time.Duration
	// NeedOthersFollow is set when other replicas will replicate from the
	// new master: it then needs log_slave_updates, or transactions it got by
	// replication are missing from its binlog for replicas that lack them.
	NeedOthersFollow bool
	// PreferZones breaks ties within one precedence tier, before config
	// order: replicas in earlier zones first, zones not listed last.
	PreferZones []string
	// Target is the operator's --to: only that replica is considered, and
	// its refusal reason is the error if the rules refuse it.
	Target string
	// Compare orders two positions; nil means topology.ComparePositions.
	// An error counts as "not comparable" (diverged).
	Compare func(a, b topology.Position) (topology.Ordering, error)
}

// Considered is one replica with the reason it was taken or refused, kept in
// the failover record so an operator can see why each replica was or was not
// promoted.
type Considered struct {
	Address  string
	Eligible bool
	Chosen   bool
	Reason   string
}

// Selection is the outcome of SelectNewMaster.
type Selection struct {
	// Chosen is the replica to promote ("" when none).
	Chosen string
	// MostAdvanced are the replicas holding the newest position (config
	// order), eligible or not: the ones to catch up from.
	MostAdvanced []string
	// CatchUpFrom is the most advanced replica the chosen one must catch up
	// from before promotion (it has log_bin and log_slave_updates, so its
	// binlog holds every transaction); "" when Chosen is already most advanced.
	CatchUpFrom string
	// Considered has every replica, in config order, with its reason.
	Considered []Considered
}

// FSMCandidates converts the considered replicas into the form the failover
// record keeps.
func (s Selection) FSMCandidates() []fsm.Candidate {
	out := make([]fsm.Candidate, 0, len(s.Considered))
	for _, c := range s.Considered {
		out = append(out, fsm.Candidate{Address: c.Address, Chosen: c.Chosen, Reason: c.Reason})
	}
	return out
}

// Precedence tiers, MHA's order for choosing the new master: a latest replica
// that is candidate_master, then any candidate_master in config order, then
// any latest replica, then any replica.
const (
	tierCandidateLatest = iota
	tierCandidate
	tierLatest
	tierAny
)

// SelectNewMaster chooses the replica to promote. It is pure and
// deterministic: input order does not matter (candidates are taken in
// ConfigOrder, then address). A replica is refused when it is no_master,
// unreachable, has errant GTIDs, has log_bin off, has log_slave_updates off
// while others must follow it, has a SQL thread error, has an unknown
// position or one diverged from the most advanced, lags beyond MaxLag (with
// CheckReplDelay), or is behind while no most advanced replica can serve it
// the missing transactions. Among the rest, MHA's precedence applies, with
// PreferZones then config order breaking ties within a tier.
//
// On error the returned Selection still carries every replica's reason, for
// the record: ErrNoCandidate, ErrTargetUnknown, ErrTargetIneligible,
// ErrDivergedPositions, ErrDuplicateCandidate.
func SelectNewMaster(cands []CandidateInput, rules SelectRules) (Selection, error) {
	cs := slices.Clone(cands)
	slices.SortStableFunc(cs, func(a, b CandidateInput) int {
		return cmp.Or(cmp.Compare(a.ConfigOrder, b.ConfigOrder), strings.Compare(a.Address, b.Address))
	})
	seen := make(map[string]bool, len(cs))
	for _, c := range cs {
		if seen[c.Address] {
			return Selection{}, fmt.Errorf("%w: %s", ErrDuplicateCandidate, c.Address)
		}
		seen[c.Address] = true
	}
	compare := rules.Compare
	if compare == nil {
		compare = topology.ComparePositions
	}
	rk := rankPositions(cs, compare, rules.Target)

	sel := Selection{Considered: make([]Considered, len(cs))}
	for _, i := range rk.top {
		sel.MostAdvanced = append(sel.MostAdvanced, cs[i].Address)
	}
	source := ""
	for _, i := range rk.top {
		if cs[i].LogBin && cs[i].LogSlaveUpdates {
			source = cs[i].Address
			break
		}
	}

	filtered := filterRefusals(cs)
	var eligible []int
	for i, c := range cs {
		refusals := refusalReasons(c, rules, rk.state[i], rk.detail[i], source)
		if filtered[i] != "" {
			refusals = append(refusals, filtered[i])
		}
		sel.Considered[i] = Considered{Address: c.Address, Eligible: len(refusals) == 0}
		if len(refusals) == 0 {
			eligible = append(eligible, i)
		} else {
			sel.Considered[i].Reason = strings.Join(refusals, "; ")
		}
	}

	if len(rk.tied) > 0 {
		var groups []string
		for _, i := range rk.tied {
			groups = append(groups, fmt.Sprintf("%s at %s", cs[i].Address, cs[i].Position))
		}
		why := "positions diverged with no single most advanced replica (" + strings.Join(groups, " vs ") + ")"
		for _, i := range eligible {
			sel.Considered[i].Eligible = false
			sel.Considered[i].Reason = why
		}
		finishReasons(&sel, cs)
		return sel, fmt.Errorf("%w: %s; use --to to choose", ErrDivergedPositions, strings.Join(groups, " vs "))
	}

	tier := func(i int) int {
		c, top := cs[i], rk.state[i] == posTop
		switch {
		case c.CandidateMaster && top:
			return tierCandidateLatest
		case c.CandidateMaster:
			return tierCandidate
		case top:
			return tierLatest
		default:
			return tierAny
		}
	}
	zoneRank := func(i int) int {
		if k := slices.Index(rules.PreferZones, cs[i].Zone); k >= 0 && cs[i].Zone != "" {
			return k
		}
		return len(rules.PreferZones)
	}

	chosen := -1
	if rules.Target != "" {
		for _, i := range eligible {
			sel.Considered[i].Reason = "eligible; not the requested target " + rules.Target
		}
		t := slices.IndexFunc(cs, func(c CandidateInput) bool { return c.Address == rules.Target })
		if t < 0 {
			finishReasons(&sel, cs)
			return sel, fmt.Errorf("%w: %s", ErrTargetUnknown, rules.Target)
		}
		if !sel.Considered[t].Eligible {
			finishReasons(&sel, cs)
			return sel, fmt.Errorf("%w: %s: %s", ErrTargetIneligible, rules.Target, sel.Considered[t].Reason)
		}
		chosen = t
	} else if len(eligible) > 0 {
		slices.SortStableFunc(eligible, func(a, b int) int {
			return cmp.Or(cmp.Compare(tier(a), tier(b)), cmp.Compare(zoneRank(a), zoneRank(b)))
		})
		chosen = eligible[0]
	}

	if chosen < 0 {
		finishReasons(&sel, cs)
		var all []string
		for _, c := range sel.Considered {
			all = append(all, c.Address+": "+c.Reason)
		}
		if len(all) == 0 {
			all = []string{"no replicas"}
		}
		return sel, fmt.Errorf("%w: %s", ErrNoCandidate, strings.Join(all, "; "))
	}

	sel.Chosen = cs[chosen].Address
	if rk.state[chosen] != posTop {
		sel.CatchUpFrom = source
	}
	sel.Considered[chosen].Chosen = true
	sel.Considered[chosen].Reason = chosenReason(cs[chosen], tier(chosen), rules, source, zoneRank(chosen))
	for _, i := range eligible {
		if i != chosen && rules.Target == "" {
			sel.Considered[i].Reason = passedOverReason(cs, i, chosen, tier(i), tier(chosen), zoneRank(i), zoneRank(chosen))
		}
	}
	finishReasons(&sel, cs)
	return sel, nil
}

// refusalReasons lists every rule a replica breaks; none means eligible. An
// unreachable replica gets no other reason: what we last knew of it is stale.
func refusalReasons(c CandidateInput, rules SelectRules, st posState, detail, source string) []string {
	var out []string
	if c.NoMaster {
		out = append(out, "no_master set")
	}
	if !c.Reachable {
		return append(out, "unreachable")
	}
	if c.Errant {
		out = append(out, "errant GTIDs: "+c.ErrantDetail)
	}
	if c.Delay > 0 {
		out = append(out, fmt.Sprintf("MASTER_DELAY %s: a delayed replica is never promoted nor caught up from", c.Delay))
	}
	if c.RelayBacklog != "" {
		out = append(out, c.RelayBacklog)
	}
	if !c.LogBin {
		out = append(out, "log_bin off")
	} else if rules.NeedOthersFollow && !c.LogSlaveUpdates {
		out = append(out, "log_slave_updates off (other replicas must follow it)")
	}
	if c.SQLError != "" {
		out = append(out, "SQL thread error: "+c.SQLError)
	}
	switch {
	case !c.PositionKnown:
		out = append(out, "position unknown")
	case st == posDiverged:
		out = append(out, detail)
	case st == posBehind && source == "":
		out = append(out, "behind the most advanced, and none of those has log_bin and log_slave_updates to catch it up from")
	}
	if c.CheckReplDelay && rules.MaxLag > 0 {
		switch {
		case !c.LagKnown:
			out = append(out, fmt.Sprintf("lag unknown (limit %s)", rules.MaxLag))
		case c.Lag > rules.MaxLag:
			out = append(out, fmt.Sprintf("lags %s > limit %s", c.Lag, rules.MaxLag))
		}
	}
	return out
}

// filterRefusals returns, per candidate (cs in config order), why its
// replication filters refuse it, "" when they do not. The reference is the
// filters most reachable replicas share; on a tie, no filters at all (a
// replica that filters nothing lacks nothing). A tie between filtered
// groups has no reference: every reachable replica is refused, as MHA
// refuses the whole failover. Unreachable replicas are not compared: what
// we last knew of them is stale.
func filterRefusals(cs []CandidateInput) []string {
	out := make([]string, len(cs))
	type group struct {
		f       topology.ReplicationFilters
		members []string
		idx     []int
	}
	var groups []*group
	for i, c := range cs {
		if !c.Reachable {
			continue
		}
		k := slices.IndexFunc(groups, func(g *group) bool { return g.f.Equal(c.Filters) })
		if k < 0 {
			groups = append(groups, &group{f: c.Filters})
			k = len(groups) - 1
		}
		groups[k].members = append(groups[k].members, c.Address)
		groups[k].idx = append(groups[k].idx, i)
	}
	if len(groups) < 2 {
		return out
	}
	var ref *group
	tied := false
	for _, g := range groups {
		switch {
		case ref == nil || len(g.members) > len(ref.members):
			ref, tied = g, false
		case len(g.members) < len(ref.members):
		case g.f.IsEmpty():
			ref, tied = g, false // ref is filtered: a group without filters wins the tie
		case !ref.f.IsEmpty():
			tied = true
		}
	}
	if tied {
		var all []string
		for _, g := range groups {
			all = append(all, fmt.Sprintf("%s on %s", describeFilters(g.f), strings.Join(g.members, ", ")))
		}
		why := "replication filters differ with no majority: " + strings.Join(all, " vs ")
		for _, g := range groups {
			for _, i := range g.idx {
				out[i] = why
			}
		}
		return out
	}
	for _, g := range groups {
		if g == ref {
			continue
		}
		for _, i := range g.idx {
			out[i] = fmt.Sprintf("replication filters %s differ from %s on %s",
				describeFilters(g.f), describeFilters(ref.f), strings.Join(ref.members, ", "))
		}
	}
	return out
}

// chosenReason explains why the chosen replica won.
func chosenReason(c CandidateInput, tier int, rules SelectRules, source string, zoneRank int) string {
	var b strings.Builder
	b.WriteString("chosen: ")
	switch {
	case rules.Target != "":
		b.WriteString("requested target")
		if source != "" && tier != tierCandidateLatest && tier != tierLatest {
			fmt.Fprintf(&b, ", behind the most advanced (catch up from %s)", source)
		} else {
			b.WriteString(", most advanced")
		}
	case tier == tierCandidateLatest:
		b.WriteString("candidate_master and most advanced")
	case tier == tierCandidate:
		fmt.Fprintf(&b, "candidate_master, behind the most advanced (catch up from %s)", source)
	case tier == tierLatest:
		b.WriteString("most advanced; no candidate_master eligible")
	default:
		fmt.Fprintf(&b, "no candidate_master or most advanced replica eligible; behind (catch up from %s)", source)
	}
	if zoneRank < len(rules.PreferZones) {
		fmt.Fprintf(&b, "; preferred zone %s", c.Zone)
	}
	if c.ReplicationMode != "" {
		fmt.Fprintf(&b, "; replication %s", c.ReplicationMode)
	}
	return b.String()
}

// passedOverReason explains why eligible replica i lost to the chosen one.
func passedOverReason(cs []CandidateInput, i, chosen, ti, tc, zi, zc int) string {
	w := cs[chosen].Address
	if ti == tc {
		if zi != zc {
			return fmt.Sprintf("eligible; %s is in a more preferred zone (%s)", w, cs[chosen].Zone)
		}
		return fmt.Sprintf("eligible; %s comes first in config order", w)
	}
	notCand := (tc == tierCandidateLatest || tc == tierCandidate) && !cs[i].CandidateMaster
	behind := (tc == tierCandidateLatest || tc == tierLatest) && (ti == tierCandidate || ti == tierAny)
	switch {
	case notCand && behind:
		return "eligible but not candidate_master and behind the most advanced"
	case notCand:
		return "eligible but not candidate_master"
	default:
		return "eligible but behind the most advanced"
	}
}

// finishReasons appends IO thread errors, which explain a replica's state
// without deciding anything.
func finishReasons(sel *Selection, cs []CandidateInput) {
	for i := range sel.Considered {
		if cs[i].IOError != "" {
			sel.Considered[i].Reason += " (IO thread error: " + cs[i].IOError + ")"
		}
	}
}
