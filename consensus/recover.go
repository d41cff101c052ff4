package consensus

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
)

// PeersFile is the name, inside the data directory, of the file that
// recovers a group which lost its quorum: the operator writes the surviving
// servers in hashicorp/raft's peers.json format
//
//	[{"id": "c1", "address": "10.0.1.10:7000", "non_voter": false}, ...]
//
// into every survivor's data directory while they are stopped, and starts
// them. Each one then replaces the raft configuration in its log with that
// list (raft.RecoverCluster) before raft starts, and renames the file to
// PeersFile + ".applied" so the next restart does not recover again.
const PeersFile = "peers.json"

// recoverPeers applies DataDir/peers.json when it exists. It is the manual
// path out of a lost quorum (two of three controllers gone for good): raft
// cannot elect a leader without a majority of the old configuration, so the
// operator states the new one. Everything committed that the survivor holds
// (log and snapshots) is kept; what only the lost servers had is gone.
func (n *Node) recoverPeers(rc *raft.Config, fsm raft.FSM, logs raft.LogStore, stable raft.StableStore, snaps raft.SnapshotStore) error {
	path := filepath.Join(n.cfg.DataDir, PeersFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("consensus: %s: %w", path, err)
	}
	conf, err := raft.ReadConfigJSON(path)
	if err != nil {
		return fmt.Errorf("consensus: recovery file %s: %w", path, err)
	}
	self := false
	for _, s := range conf.Servers {
		if string(s.ID) == n.cfg.ID {
			self = true
		}
	}
	if !self {
		return fmt.Errorf("consensus: recovery file %s does not list this node %q", path, n.cfg.ID)
	}
	if err := raft.RecoverCluster(rc, fsm, logs, stable, snaps, n.trans, conf); err != nil {
		return fmt.Errorf("consensus: recover from %s: %w", path, err)
	}
	if err := os.Rename(path, path+".applied"); err != nil {
		return fmt.Errorf("consensus: recovered from %s but cannot rename it (remove it before the next start): %w", path, err)
	}
	n.log.Warn("raft configuration replaced from recovery file", "file", path, "servers", len(conf.Servers))
	return nil
}
