package controller

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/quorumha/quorumha/consensus"
	"github.com/quorumha/quorumha/detector"
	"github.com/quorumha/quorumha/fsm"
)

// followTopology keeps the detector on the replicated topology: clusters
// and instances added or removed, and the master each cluster's last
// failover or switchover recorded. It wakes on the FSM's change broadcast
// (fed by Apply as entries commit), not on a timer, so every controller
// follows a change as soon as it has applied it. It returns when ctx ends.
func (c *Controller) followTopology(ctx context.Context, logger *slog.Logger) {
	// Masters recorded before start are not changes: the start-up choice
	// (discovery first) stands until the record changes.
	seen := map[string]time.Time{}
	for _, cs := range c.state.Clusters() {
		seen[cs.Name] = cs.MasterSetAt
	}
	for {
		changed := c.state.TopologyChanged() // taken before reading: no change is missed
		c.syncDetector(ctx, seen, logger)
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// syncDetector applies the current topology and recorded masters to the
// detector.
func (c *Controller) syncDetector(ctx context.Context, seen map[string]time.Time, logger *slog.Logger) {
	det := c.detect.det
	r := c.topo.refresh()
	for _, rc := range r.clusters {
		if rc.TLSErr != nil {
			logger.Warn("cluster not watched: database TLS", "cluster", rc.Name, "err", rc.TLSErr)
			continue
		}
		recorded := ""
		cs, hasState := c.state.Cluster(rc.Name)
		if hasState {
			recorded = cs.Master
		}
		spec, watched := det.Cluster(rc.Name)
		master := spec.Master
		if !watched || !rc.configured(master) {
			if !watched {
				seen[rc.Name] = cs.MasterSetAt
			}
			var why string
			master, why = detector.InitialMaster(ctx, instanceAddrs(rc), recorded, masterFinder(rc.Cluster, rc.TLS, c.cfg.Detector.ProbeTimeout, logger))
			if ctx.Err() != nil {
				return
			}
			logger.Info("watching master", "cluster", rc.Name, "master", master, "because", why, "topology", rc.Origin)
		}
		if _, err := det.UpsertCluster(clusterSpec(rc, master)); err != nil {
			logger.Warn("watch cluster", "cluster", rc.Name, "err", err)
		}
	}
	for _, name := range det.ClusterNames() {
		if _, ok := r.cluster(name); !ok {
			det.RemoveCluster(name)
			logger.Info("cluster no longer in the topology: not watched", "cluster", name)
		}
	}
	for _, name := range det.ClusterNames() {
		cs, ok := c.state.Cluster(name)
		if !ok || cs.Master == "" || !cs.MasterSetAt.After(seen[name]) {
			continue
		}
		seen[name] = cs.MasterSetAt
		spec, ok := det.Cluster(name)
		if !ok || strings.EqualFold(spec.Master, cs.Master) {
			continue
		}
		if err := det.SetMaster(name, cs.Master); err != nil {
			logger.Warn("follow recorded master", "cluster", name, "master", cs.Master, "err", err)
			continue
		}
		logger.Info("now watching the recorded master", "cluster", name, "master", cs.Master, "previous", spec.Master)
	}
}

// seedTopology bootstraps the replicated topology from this controller's
// file when the state has never held a cluster definition (a new group, or
// the first leader after an upgrade). Once bootstrapped the state wins:
// differences from any file are only reported (topoSource.refresh, GET
// /v1/topology, check-config --for-run, status).
func (c *Controller) seedTopology(ctx context.Context, logger *slog.Logger) {
	defs, removed := c.state.Topology()
	seeds := SeedClusters(c.cfg.Clusters, defs, removed)
	if len(seeds) == 0 && len(c.cfg.Clusters) > 0 {
		logger.Info("replicated topology already bootstrapped; the state wins over this controller's file", "clusters_in_state", len(defs))
	}
	for _, d := range seeds {
		by := "seed:" + c.cfg.Node.ID
		for i := range d.Instances {
			d.Instances[i].AddedBy = by
		}
		buf, err := fsm.Encode(fsm.ClusterDefineType, fsm.ClusterDefine{Op: fsm.OpAdd, Name: d.Name, Def: &d, By: by, At: time.Now().UTC()})
		if err != nil {
			logger.Error("encode cluster definition", "cluster", d.Name, "err", err)
			continue
		}
		_, err = c.node.Apply(ctx, buf)
		switch {
		case err == nil:
			logger.Info("bootstrapped the replicated topology with the config file's cluster", "cluster", d.Name, "instances", len(d.Instances))
		case errors.Is(err, fsm.ErrClusterExists):
			logger.Info("cluster already in the replicated state; the state wins", "cluster", d.Name)
		case errors.Is(err, consensus.ErrNotLeader) || ctx.Err() != nil:
			return
		default:
			logger.Warn("seed cluster definition", "cluster", d.Name, "err", err)
		}
	}
}
