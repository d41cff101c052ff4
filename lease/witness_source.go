package lease

import (
	"fmt"
	"strings"
	"time"

	"github.com/quorumha/quorumha/detector"
	"github.com/quorumha/quorumha/fsm"
)

// VerdictSource is the gossip's view of every controller's latest verdict
// per instance; *detector.Gossip implements it.
type VerdictSource interface {
	Verdicts() map[string][]detector.Verdict
}

// Records finds a cluster's open record; *fsm.FSM implements it.
type Records interface {
	OpenRecord(cluster string) (fsm.Record, bool)
}

// WitnessConfig configures a Witness.
type WitnessConfig struct {
	// Controller is this controller's node id.
	Controller string
	// TTL and Drift are recovery.lease_ttl and recovery.lease_drift.
	TTL, Drift time.Duration
	// Own returns this controller's grant (Keeper.Grant); nil: none.
	Own func(cluster, instance string) *detector.LeaseGrant
	// Gossip supplies the other controllers' grants; nil: none (a single
	// controller).
	Gossip VerdictSource
	// Voters returns the raft voters' ids.
	Voters func() ([]string, error)
	// Records names the open failover record of a cluster.
	Records Records
}

// Witness answers recovery's lease_expired question (recovery.LeaseWitness)
// from this controller's own grant, the grants gossiped with the other
// controllers' verdicts, and the raft voters; Lapsed decides.
type Witness struct{ cfg WitnessConfig }

// NewWitness checks cfg and builds a Witness.
func NewWitness(cfg WitnessConfig) (*Witness, error) {
	if cfg.Controller == "" || cfg.Voters == nil || cfg.Records == nil || cfg.TTL <= 0 || cfg.Drift < 0 {
		return nil, fmt.Errorf("%w: the witness needs the controller id, the voters, the records, ttl > 0 and drift >= 0", ErrBadConfig)
	}
	return &Witness{cfg: cfg}, nil
}

// LeaseLapsed reports whether master's lease in cluster has provably lapsed
// (see Lapsed), and why, for the fence step's journal.
func (w *Witness) LeaseLapsed(cluster, master string, now time.Time) (bool, string) {
	in, err := w.input(cluster, master, now)
	if err != nil {
		return false, err.Error()
	}
	return Lapsed(in)
}

// input collects the rule's inputs.
func (w *Witness) input(cluster, master string, now time.Time) (LapseInput, error) {
	in := LapseInput{TTL: w.cfg.TTL, Drift: w.cfg.Drift, Now: now, Grants: map[string]Grant{}}
	if rec, ok := w.cfg.Records.OpenRecord(cluster); ok && rec.Kind == fsm.KindFailover && strings.EqualFold(rec.OldMaster, master) {
		in.Record = rec.ID
	}
	voters, err := w.cfg.Voters()
	if err != nil {
		return in, fmt.Errorf("raft voters unknown: %w", err)
	}
	in.Voters = voters
	if w.cfg.Own != nil {
		if g := w.cfg.Own(cluster, master); g != nil {
			in.Grants[w.cfg.Controller] = Grant{Bound: g.Bound, Enforced: g.Enforced, Armed: g.Armed, StoppedFor: g.StoppedFor}
		}
	}
	if w.cfg.Gossip == nil {
		return in, nil
	}
	newest := map[string]detector.Verdict{}
	for inst, vs := range w.cfg.Gossip.Verdicts() {
		if !strings.EqualFold(inst, master) {
			continue
		}
		for _, v := range vs {
			if v.Controller == w.cfg.Controller || v.Lease == nil || (v.Cluster != "" && v.Cluster != cluster) {
				continue
			}
			if old, ok := newest[v.Controller]; !ok || v.NewerThan(old) {
				newest[v.Controller] = v
			}
		}
	}
	for id, v := range newest {
		in.Grants[id] = Grant{Bound: GossipedBound(v.Lease.Bound, v.Lease.BoundAge, v.ReceivedAt),
			Enforced: v.Lease.Enforced, Armed: v.Lease.Armed, StoppedFor: v.Lease.StoppedFor}
	}
	return in, nil
}
