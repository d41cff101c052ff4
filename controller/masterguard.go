package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/recovery"
)

// errUnconfiguredMaster refuses a command that would record as a cluster's
// master an address that is not one of its configured instances: every
// controller would then probe it with the admin account, and proxies would
// send applications to it.
var errUnconfiguredMaster = errors.New("not a configured instance")

// masterGuard is the leader's last check before a command that records a
// master reaches the log. The FSM cannot make it (it has no config, and
// controllers could disagree on it during a config roll-out), so the one
// writer of such commands, the leader's recovery runner, goes through here.
type masterGuard struct {
	recovery.Group
	state *fsm.FSM
	// topo is the current topology: a master must be one of its cluster's
	// instances as the replicated state defines them now.
	topo func() *resolvedTopology
}

func newMasterGuard(g recovery.Group, state *fsm.FSM, topo func() *resolvedTopology) masterGuard {
	return masterGuard{Group: g, state: state, topo: topo}
}

// Apply refuses SetMaster and RecordClose commands naming an unconfigured
// master, and passes everything else on.
func (m masterGuard) Apply(ctx context.Context, cmd []byte) (any, error) {
	if err := m.check(cmd); err != nil {
		return nil, err
	}
	return m.Group.Apply(ctx, cmd)
}

func (m masterGuard) check(cmd []byte) error {
	t, payload, err := fsm.Decode(cmd)
	if err != nil {
		return err
	}
	var cluster, master string
	switch t {
	case fsm.SetMasterType:
		var p fsm.SetMaster
		if err := json.Unmarshal(payload, &p); err != nil {
			return fmt.Errorf("set master: %w", err)
		}
		cluster, master = p.Cluster, p.Master
	case fsm.RecordCloseType:
		var p fsm.RecordClose
		if err := json.Unmarshal(payload, &p); err != nil {
			return fmt.Errorf("record close: %w", err)
		}
		if p.NewMaster == "" {
			return nil
		}
		r, ok := m.state.Record(p.RecordID)
		if !ok {
			return nil // the FSM rejects it
		}
		cluster, master = r.Cluster, p.NewMaster
	default:
		return nil
	}
	if !m.topo().configured(cluster, master) {
		return fmt.Errorf("%w: refusing to record %s as the master of cluster %q: %w",
			fsm.ErrInvalid, master, cluster, errUnconfiguredMaster)
	}
	return nil
}
