package recovery

import (
	"fmt"

	"github.com/quorumha/quorumha/topology"
)

// posState is where a replica's position stands against the most advanced.
type posState int

const (
	posNone     posState = iota // not ranked: unreachable, errant or unknown position
	posTop                      // among the most advanced
	posBehind                   // strictly behind the most advanced
	posDiverged                 // incomparable with the most advanced
)

// ranking is the outcome of comparing every ranked replica's position.
type ranking struct {
	state  []posState // per candidate index
	detail []string   // per candidate index, for posDiverged
	top    []int      // indexes of the most advanced, ascending
	// tied lists the representatives of equally supported diverged groups
	// when there is no single most advanced group; top is then empty.
	tied []int
}

// ranked reports whether a candidate's position takes part in the ranking.
// Errant replicas are left out: their extra transactions would make them look
// ahead of everyone, and catching up from them would spread the errant ones.
// Delayed replicas too: what they received is held back in their relay log,
// so their binlog cannot serve it, and waiting for them would add their
// delay to the outage.
func ranked(c CandidateInput) bool {
	return c.Reachable && !c.Errant && c.PositionKnown && c.Delay == 0
}

// rankPositions finds the most advanced replicas. Positions form a partial
// order (GTID sets, MariaDB domains), so it takes the maximal ones; when they
// are not all equal (groups that diverged), the group that the most ranked
// replicas are behind or equal to wins, since catching those up from it loses
// nothing they have. A tie between groups is left unresolved (tied) unless
// target is in one of them: the operator then decided.
func rankPositions(cs []CandidateInput, cmp func(a, b topology.Position) (topology.Ordering, error), target string) ranking {
	n := len(cs)
	r := ranking{state: make([]posState, n), detail: make([]string, n)}
	var pool []int
	for i, c := range cs {
		if ranked(c) {
			pool = append(pool, i)
		}
	}
	// ord[i][j] is how cs[i] relates to cs[j]; errs holds comparator errors.
	ord := make(map[[2]int]topology.Ordering, len(pool)*len(pool))
	errs := make(map[[2]int]error)
	for x, i := range pool {
		ord[[2]int{i, i}] = topology.Equal
		for _, j := range pool[x+1:] {
			o, err := cmp(cs[i].Position, cs[j].Position)
			if err != nil {
				errs[[2]int{i, j}], errs[[2]int{j, i}] = err, err
				o = topology.Diverged
			}
			ord[[2]int{i, j}], ord[[2]int{j, i}] = o, invert(o)
		}
	}
	var maximal []int
	for _, i := range pool {
		dominated := false
		for _, j := range pool {
			if ord[[2]int{j, i}] == topology.Ahead {
				dominated = true
				break
			}
		}
		if !dominated {
			maximal = append(maximal, i)
		}
	}
	// Group the maximal ones by equality; score each group by support.
	var reps []int
	for _, i := range maximal {
		seen := false
		for _, rep := range reps {
			if ord[[2]int{i, rep}] == topology.Equal {
				seen = true
				break
			}
		}
		if !seen {
			reps = append(reps, i)
		}
	}
	best, bestScore, tied := -1, -1, []int(nil)
	for _, rep := range reps {
		score := 0
		for _, k := range pool {
			if o := ord[[2]int{k, rep}]; o == topology.Equal || o == topology.Behind {
				score++
			}
		}
		switch {
		case score > bestScore:
			best, bestScore, tied = rep, score, []int{rep}
		case score == bestScore:
			tied = append(tied, rep)
		}
	}
	if len(tied) > 1 {
		best = -1
		for _, rep := range tied {
			for _, k := range pool {
				if cs[k].Address == target && ord[[2]int{k, rep}] == topology.Equal {
					best = rep
				}
			}
		}
		if best < 0 {
			r.tied = tied
			return r
		}
	}
	if best < 0 {
		return r // empty pool
	}
	for _, i := range pool {
		switch o := ord[[2]int{i, best}]; o {
		case topology.Equal:
			r.state[i] = posTop
			r.top = append(r.top, i)
		case topology.Behind:
			r.state[i] = posBehind
		default:
			r.state[i] = posDiverged
			if err := errs[[2]int{i, best}]; err != nil {
				r.detail[i] = fmt.Sprintf("position not comparable with the most advanced %s: %v", cs[best].Address, err)
			} else {
				r.detail[i] = fmt.Sprintf("position %s diverged from the most advanced %s (%s)",
					cs[i].Position, cs[best].Address, cs[best].Position)
			}
		}
	}
	return r
}

// invert returns how b relates to a given how a relates to b.
func invert(o topology.Ordering) topology.Ordering {
	switch o {
	case topology.Ahead:
		return topology.Behind
	case topology.Behind:
		return topology.Ahead
	default:
		return o
	}
}
