package detector

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// QuorumMajority is the Rules.Quorum value meaning "a majority of the live
// controllers", the default.
const QuorumMajority = 0

// Rules are the knobs of the quorum rule, taken from the detector config.
type Rules struct {
	// Quorum is the number of fresh Down votes needed; QuorumMajority (0)
	// means live/2+1 of the live controllers.
	Quorum int `json:"quorum"`
	// ReplicaCheck requires that no replica still receives the master's
	// binlog (MHA's secondary check, done by the replicas themselves).
	ReplicaCheck bool `json:"replica_check"`
	// Freshness is how old a verdict or replica observation may be and still
	// count; 0 or less disables the check.
	Freshness time.Duration `json:"freshness"`
	// MultiZone requires Down votes from at least two zones whenever the live
	// controllers span more than one zone, so one zone's network trouble
	// cannot fail a master over.
	MultiZone bool `json:"multi_zone"`
}

// ParseQuorum turns the config's quorum value ("majority" or a positive
// number) into Rules.Quorum.
func ParseQuorum(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "majority") {
		return QuorumMajority, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%w: %q (want \"majority\" or a positive number)", ErrBadQuorum, s)
	}
	return n, nil
}

// Needed resolves the quorum into a number of votes given how many
// controllers are alive. It is never below 1.
func (r Rules) Needed(liveControllers int) int {
	if r.Quorum > 0 {
		return r.Quorum
	}
	if liveControllers < 1 {
		liveControllers = 1
	}
	return liveControllers/2 + 1
}

// AssessState is the combined judgement of all vantage points about a master.
type AssessState uint8

// Assessment states. Only AssessDeadConfirmed allows a failover.
const (
	// AssessUnknown means there is not enough fresh evidence to judge.
	AssessUnknown AssessState = iota
	// AssessHealthy means the master is up (possibly degraded) for the controllers.
	AssessHealthy
	// AssessSuspect means some controllers see failures, not (yet) a quorum.
	AssessSuspect
	// AssessIsolated means a minority sees the master down while the others
	// see it up: the minority (or its zone) is cut off, not the master.
	AssessIsolated
	// AssessReplicasStillConnected means a quorum sees the master down but a
	// replica still receives its binlog: the controllers are cut off.
	AssessReplicasStillConnected
	// AssessDeadConfirmed means the quorum rule and the replica check agree
	// that the master is dead.
	AssessDeadConfirmed
)

var assessNames = [...]string{
	AssessUnknown:                "unknown",
	AssessHealthy:                "healthy",
	AssessSuspect:                "suspect",
	AssessIsolated:               "isolated",
	AssessReplicasStillConnected: "replicas_still_connected",
	AssessDeadConfirmed:          "dead_confirmed",
}

// AssessStates lists every state, for metrics that export one series each.
func AssessStates() []AssessState {
	return []AssessState{AssessUnknown, AssessHealthy, AssessSuspect,
		AssessIsolated, AssessReplicasStillConnected, AssessDeadConfirmed}
}

// String returns the snake_case name used in logs, JSON and metrics.
func (s AssessState) String() string {
	if int(s) < len(assessNames) {
		return assessNames[s]
	}
	return "assess(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText encodes the state by name.
func (s AssessState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a name written by MarshalText.
func (s *AssessState) UnmarshalText(b []byte) error {
	for i, n := range assessNames {
		if n == string(b) {
			*s = AssessState(i)
			return nil
		}
	}
	*s = AssessUnknown
	return nil
}

// Assessment is the evidence-carrying result of Assess: what the leader acts
// on and what a failover record keeps.
type Assessment struct {
	// Cluster is the cluster name.
	Cluster string `json:"cluster"`
	// Master is the assessed master's address.
	Master string `json:"master"`
	// State is the judgement.
	State AssessState `json:"state"`
	// Reason says in words which rule fired.
	Reason string `json:"reason"`
	// Votes are the fresh verdicts that were counted, sorted by controller.
	Votes []Verdict `json:"votes"`
	// Stale are verdicts ignored as too old or about another instance.
	Stale []Verdict `json:"stale,omitempty"`
	// DownCount is the number of fresh Down votes.
	DownCount int `json:"down_count"`
	// Needed is the quorum resolved into a number.
	Needed int `json:"needed"`
	// Zones are the zones of the Down votes, sorted.
	Zones []string `json:"zones,omitempty"`
	// ReplicaView is the replicas' observations that were considered.
	ReplicaView []ReplicaObservation `json:"replica_view,omitempty"`
	// At is when the assessment was made.
	At time.Time `json:"at"`
}

// verdictTime is the instant a verdict's freshness is measured from: the
// earlier of the prober's and the receiver's clocks, so clock skew can only
// make a vote look older (ignored), never younger.
func verdictTime(v Verdict) time.Time {
	if !v.ReceivedAt.IsZero() && v.ReceivedAt.Before(v.ObservedAt) {
		return v.ReceivedAt
	}
	return v.ObservedAt
}

func isStale(t, now time.Time, freshness time.Duration) bool {
	return freshness > 0 && now.Sub(t) > freshness
}

// Assess applies the quorum rule. verdicts holds the latest verdict of each
// controller (own included), replicas this controller's latest observations
// of the master's replicas, liveControllers the gossip members alive and
// zones their zones (controller -> zone). It is pure: the same inputs always
// give the same Assessment.
//
// DeadConfirmed needs >= Needed fresh Down votes, from >= 2 zones when
// MultiZone is set and the live controllers span several zones, and, with
// ReplicaCheck, no replica still connected to or advancing from the master.
// When replicas are configured but none is reachable the replicas cannot
// vouch and the controllers may be the ones cut off (scenario 16); the result
// is then Unknown, which also matches that there is nothing to promote.
func Assess(cluster, master string, verdicts []Verdict, replicas []ReplicaObservation,
	liveControllers int, zones map[string]string, now time.Time, rules Rules) Assessment {
	a := Assessment{Cluster: cluster, Master: master, At: now, ReplicaView: replicas,
		Needed: rules.Needed(liveControllers)}
	zoneOf := func(v Verdict) string {
		if v.Zone != "" {
			return v.Zone
		}
		return zones[v.Controller]
	}
	var up, degraded, down, suspect []Verdict
	downZones := map[string]bool{}
	for _, v := range verdicts {
		if v.Instance != master || isStale(verdictTime(v), now, rules.Freshness) {
			a.Stale = append(a.Stale, v)
			continue
		}
		a.Votes = append(a.Votes, v)
		switch v.State {
		case StateUp:
			up = append(up, v)
		case StateDegraded:
			degraded = append(degraded, v)
		case StateSuspect:
			suspect = append(suspect, v)
		case StateDown:
			down = append(down, v)
			downZones[zoneOf(v)] = true
		}
	}
	byController := func(x, y Verdict) int { return strings.Compare(x.Controller, y.Controller) }
	slices.SortFunc(a.Votes, byController)
	slices.SortFunc(a.Stale, byController)
	a.DownCount = len(down)
	for z := range downZones {
		a.Zones = append(a.Zones, z)
	}
	slices.Sort(a.Zones)

	liveZones := map[string]bool{}
	for _, z := range zones {
		if z != "" {
			liveZones[z] = true
		}
	}
	if len(zones) == 0 {
		for _, v := range a.Votes {
			liveZones[zoneOf(v)] = true
		}
	}
	alive := len(up) + len(degraded)
	notes := staleNote(a.Stale) + degradedNote(degraded)

	switch {
	case len(a.Votes) == 0:
		a.State = AssessUnknown
		a.Reason = "no fresh verdicts" + notes
	case len(down) >= a.Needed:
		a.State, a.Reason = assessQuorum(master, down, up, degraded, a.Needed, downZones, liveZones, replicas, now, rules)
		a.Reason += notes
	case len(down) > 0 && alive > 0 && len(down)+len(suspect) < a.Needed:
		a.State = AssessIsolated
		a.Reason = fmt.Sprintf("only %s see(s) %s down, %s see(s) it alive; %d of %d needed",
			names(down), master, names(up, degraded), len(down), a.Needed) + notes
	case len(down)+len(suspect) > 0:
		a.State = AssessSuspect
		a.Reason = fmt.Sprintf("%d down (%s), %d suspect (%s) of %d fresh votes; %d down needed",
			len(down), names(down), len(suspect), names(suspect), len(a.Votes), a.Needed) + notes
	case alive == 0:
		a.State = AssessUnknown
		a.Reason = "no controller has probed " + master + " yet" + notes
	default:
		a.State = AssessHealthy
		a.Reason = fmt.Sprintf("%d of %d fresh votes see %s alive", alive, len(a.Votes), master) + notes
	}
	return a
}

// assessQuorum handles the case where enough controllers vote Down: the zone
// rule and the replica check may still hold the failover back.
func assessQuorum(master string, down, up, degraded []Verdict, needed int, downZones, liveZones map[string]bool,
	replicas []ReplicaObservation, now time.Time, rules Rules) (AssessState, string) {
	base := fmt.Sprintf("%d controllers see %s down (%s; %d needed)", len(down), master, names(down), needed)
	if rules.MultiZone && len(liveZones) > 1 && len(downZones) < 2 {
		if len(up)+len(degraded) > 0 {
			return AssessIsolated, base + fmt.Sprintf(", but all from zone %s while %s see(s) it alive",
				sortedKeys(downZones), names(up, degraded))
		}
		return AssessSuspect, base + fmt.Sprintf(", but all from zone %s; waiting for a second zone", sortedKeys(downZones))
	}
	if !rules.ReplicaCheck {
		return AssessDeadConfirmed, base + "; replica check off"
	}
	if len(replicas) == 0 {
		return AssessDeadConfirmed, base + "; no replicas configured to vouch either way"
	}
	var connected, reachable, stale, unreachable, others []string
	for _, o := range replicas {
		switch {
		case isStale(o.ObservedAt, now, rules.Freshness):
			stale = append(stale, o.Replica)
		case !o.Reachable:
			unreachable = append(unreachable, o.Replica)
		case !o.Follows(master):
			// A replica of another server cannot vouch for this master
			// either way: counting it as agreeing would let a replica that
			// names the master by an alias confirm a death it cannot see.
			others = append(others, fmt.Sprintf("%s follows %q", o.Replica, o.MasterAddr()))
		default:
			// receives weighs the IO thread, the received position, the
			// heartbeats and the replica host agent's own check.
			if ok, _ := o.receives(now, rules.Freshness); ok {
				connected = append(connected, o.describeAt(now, rules.Freshness))
			} else {
				reachable = append(reachable, o.describeAt(now, rules.Freshness))
			}
		}
	}
	if len(connected) > 0 {
		return AssessReplicasStillConnected, base + "; but replica(s) still receive its binlog: " + strings.Join(connected, ", ")
	}
	if len(reachable) == 0 {
		var parts []string
		if len(unreachable) > 0 {
			parts = append(parts, "unreachable "+strings.Join(unreachable, ", "))
		}
		if len(stale) > 0 {
			parts = append(parts, "stale "+strings.Join(stale, ", "))
		}
		if len(others) > 0 {
			parts = append(parts, "not following it: "+strings.Join(others, ", "))
		}
		why := strings.Join(parts, "; ")
		return AssessUnknown, base + "; but no replica that follows it is reachable to confirm (" + why +
			"): the controllers may be the ones cut off, and there is nothing to promote"
	}
	reason := base + "; replicas agree: " + strings.Join(reachable, ", ")
	if len(unreachable) > 0 {
		reason += "; unreachable " + strings.Join(unreachable, ", ")
	}
	if len(others) > 0 {
		reason += "; not following it: " + strings.Join(others, ", ")
	}
	return AssessDeadConfirmed, reason
}

func names(groups ...[]Verdict) string {
	var out []string
	for _, g := range groups {
		for _, v := range g {
			out = append(out, v.Controller)
		}
	}
	slices.Sort(out)
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

func sortedKeys(m map[string]bool) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

func staleNote(stale []Verdict) string {
	if len(stale) == 0 {
		return ""
	}
	var out []string
	for _, v := range stale {
		out = append(out, v.Controller)
	}
	return "; ignored stale/other-instance votes of " + strings.Join(out, ", ")
}

func degradedNote(degraded []Verdict) string {
	if len(degraded) == 0 {
		return ""
	}
	var out []string
	for _, v := range degraded {
		out = append(out, v.Controller+": "+v.Reason.String())
	}
	slices.Sort(out)
	return "; degraded (alive but refusing) per " + strings.Join(out, ", ")
}
