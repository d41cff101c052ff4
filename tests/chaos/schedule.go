// Package chaos draws randomized fault schedules for the chaos runner
// (tests/e2e/chaos_test.go) and writes its report: a markdown summary, the
// raw JSON and an SVG timeline. It knows nothing of quorumha's internals:
// the runner feeds it what the writers, samplers and the HTTP API saw.
package chaos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// Kind is one kind of fault.
type Kind string

// The fault kinds. "Master" is the master of the round, "leader" the
// controllers' Raft leader.
const (
	KillMaster        Kind = "kill9_master"           // kill -9, restarted at heal
	StopShort         Kind = "sigstop_master_1s"      // SIGSTOP shorter than detection
	StopLong          Kind = "sigstop_master_8s"      // SIGSTOP longer than detection
	ShutdownMaster    Kind = "shutdown_master"        // clean shutdown, restarted at heal
	IsolateMasterZone Kind = "isolate_master_zone"    // the master's zone cut from everyone
	CutCtrlFromMaster Kind = "cut_controllers_master" // controllers cannot reach the master's zone
	IsolateLeader     Kind = "isolate_leader_ctrl"    // the leader controller cut from the others
	IsolateFollower   Kind = "isolate_follower_ctrl"  // a follower controller cut from the others
	KillLeader        Kind = "kill9_leader_ctrl"      // kill -9 of the leader controller
	KillLeaderMidFO   Kind = "kill9_leader_mid_failover"
	ReplicaDown       Kind = "replica_down"
	ReplicaIOStop     Kind = "replica_io_stop"
)

// Expect is how many promotions a fault must lead to.
type Expect int

const (
	// ExpectNone: the fault is shorter than the detection window or does
	// not touch the master: no failover record at all.
	ExpectNone Expect = iota
	// ExpectAtMostOne: the outcome depends on what the group can prove
	// (the controllers lose the master but the replicas still see it).
	ExpectAtMostOne
	// ExpectOne: the master is gone for longer than the detection window:
	// exactly one promotion.
	ExpectOne
)

func (e Expect) String() string {
	switch e {
	case ExpectNone:
		return "0"
	case ExpectAtMostOne:
		return "0..1"
	default:
		return "1"
	}
}

// MasterFaults act on the master; OtherFaults do not.
var (
	MasterFaults = []Kind{KillMaster, StopShort, StopLong, ShutdownMaster, IsolateMasterZone, CutCtrlFromMaster, KillLeaderMidFO}
	OtherFaults  = []Kind{IsolateLeader, IsolateFollower, KillLeader, ReplicaDown, ReplicaIOStop}
)

// Expect returns the promotions kind k must lead to.
func (k Kind) Expect() Expect {
	switch k {
	case KillMaster, StopLong, ShutdownMaster, IsolateMasterZone, KillLeaderMidFO:
		return ExpectOne
	case CutCtrlFromMaster:
		return ExpectAtMostOne
	default:
		return ExpectNone
	}
}

// OnMaster reports whether k acts on the master.
func (k Kind) OnMaster() bool {
	for _, m := range MasterFaults {
		if m == k {
			return true
		}
	}
	return false
}

// Round is the faults of one round: one, or two at once (then the first
// acts on the master and the second does not, so the expectation is the
// first's).
type Round []Kind

// Expect is the round's expected promotions: the largest of its faults'.
func (r Round) Expect() Expect {
	e := ExpectNone
	for _, k := range r {
		e = max(e, k.Expect())
	}
	return e
}

func (r Round) String() string {
	s := make([]string, len(r))
	for i, k := range r {
		s[i] = string(k)
	}
	return strings.Join(s, "+")
}

// pairFaults may join a master fault: each leaves a replica to promote and
// a controller majority to decide.
var pairFaults = []Kind{IsolateFollower, ReplicaIOStop, ReplicaDown, KillLeader}

// Schedule draws n rounds from seed; the same seed gives the same rounds.
// One round in four has two faults at once.
func Schedule(seed uint64, n int) []Round {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	all := append(append([]Kind{}, MasterFaults...), OtherFaults...)
	out := make([]Round, 0, n)
	for range n {
		if rng.IntN(4) == 0 {
			m := MasterFaults[rng.IntN(len(MasterFaults))]
			if m == KillLeaderMidFO {
				m = KillMaster // it already kills a controller
			}
			out = append(out, Round{m, pairFaults[rng.IntN(len(pairFaults))]})
			continue
		}
		out = append(out, Round{all[rng.IntN(len(all))]})
	}
	return out
}

// ParseRounds reads a schedule given by hand (QUORUMHA_CHAOS_FAULTS, to
// replay one kind of round without searching for a seed that draws it):
// rounds separated by commas, the faults of a two-fault round joined by
// "+", e.g. "kill9_master+replica_down,kill9_leader_mid_failover".
func ParseRounds(spec string) ([]Round, error) {
	all := append(append([]Kind{}, MasterFaults...), OtherFaults...)
	var out []Round
	for _, rs := range strings.Split(spec, ",") {
		var r Round
		for _, ks := range strings.Split(strings.TrimSpace(rs), "+") {
			k := Kind(strings.TrimSpace(ks))
			if !slices.Contains(all, k) {
				return nil, fmt.Errorf("QUORUMHA_CHAOS_FAULTS %q: unknown fault %q (known: %v)", spec, k, all)
			}
			r = append(r, k)
		}
		if len(r) == 2 && (!r[0].OnMaster() || r[1].OnMaster()) {
			return nil, fmt.Errorf("QUORUMHA_CHAOS_FAULTS %q: round %q: a two-fault round is a master fault then another", spec, rs)
		}
		if len(r) > 2 {
			return nil, fmt.Errorf("QUORUMHA_CHAOS_FAULTS %q: round %q: at most two faults", spec, rs)
		}
		out = append(out, r)
	}
	return out, nil
}

// ParseSeed reads a seed as given to `make chaos SEED=n`.
func ParseSeed(s string) (uint64, error) {
	var v uint64
	if _, err := fmt.Sscan(s, &v); err != nil {
		return 0, fmt.Errorf("QUORUMHA_CHAOS_SEED %q: %w", s, err)
	}
	return v, nil
}
