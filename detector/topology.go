package detector

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// The replicated state, not the config file, says which clusters and
// instances every controller watches; the controller tells the detector of
// each change through UpsertCluster and RemoveCluster while it runs.

// startLoop starts a cluster's probe loop under Run's context; d.mu must
// be held. It does nothing before Run or once Run is stopping.
func (d *Detector) startLoop(name string) {
	cs := d.clusters[name]
	if d.runCtx == nil || d.stopped || cs.stop != nil {
		return
	}
	ctx, cancel := context.WithCancel(d.runCtx)
	cs.stop = cancel
	wake := cs.wake
	d.loops.Go(func() {
		defer cancel()
		d.loop(ctx, name, wake)
	})
}

// UpsertCluster watches a new cluster, or changes a watched one's
// instances, credentials, TLS and agents. A watched cluster keeps its
// master while that is still one of spec.Instances (SetMaster moves it);
// otherwise, and for a new cluster, spec.Master is watched. The replicas
// are every other instance. It reports whether the cluster was new.
func (d *Detector) UpsertCluster(spec ClusterSpec) (added bool, err error) {
	if spec.Name == "" || len(spec.Instances) == 0 {
		return false, fmt.Errorf("%w: cluster %q needs a name and instances", ErrBadConfig, spec.Name)
	}
	spec.Instances = slices.Clone(spec.Instances)
	spec.Agents = maps.Clone(spec.Agents)
	d.mu.Lock()
	defer d.mu.Unlock()
	cs, ok := d.clusters[spec.Name]
	master := spec.Master
	if ok && spec.configured(cs.spec.Master) {
		master = cs.spec.Master
	}
	if !spec.configured(master) {
		return false, fmt.Errorf("cluster %q: master %q: %w", spec.Name, master, ErrUnconfiguredInstance)
	}
	spec.Master = master
	spec.Replicas = slices.DeleteFunc(slices.Clone(spec.Instances), func(a string) bool { return strings.EqualFold(a, master) })
	if !ok {
		d.clusters[spec.Name] = &clusterState{spec: spec, own: d.freshVerdict(spec.Name, master, 0),
			replicas: map[string]ReplicaObservation{}, reach: map[string]AgentReach{}, wake: make(chan struct{}, 1)}
		d.startLoop(spec.Name)
		d.log.Info("watching cluster", "cluster", spec.Name, "master", master, "replicas", spec.Replicas)
		return true, nil
	}
	if master != cs.spec.Master {
		cs.serverID = 0
		clear(cs.reach)
		cs.own = d.freshVerdict(spec.Name, master, cs.own.Seq)
	}
	for r := range cs.replicas {
		if !spec.configured(r) {
			delete(cs.replicas, r) // no longer an instance: its view no longer counts
		}
	}
	if !slices.Equal(cs.spec.Instances, spec.Instances) {
		d.log.Info("cluster instances changed", "cluster", spec.Name, "master", master, "replicas", spec.Replicas)
	}
	cs.spec = spec
	return false, nil
}

// RemoveCluster stops watching a cluster; it reports whether it was watched.
func (d *Detector) RemoveCluster(name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	cs, ok := d.clusters[name]
	if !ok {
		return false
	}
	if cs.stop != nil {
		cs.stop()
	}
	delete(d.clusters, name)
	d.log.Info("stopped watching cluster", "cluster", name)
	return true
}

// ClusterNames returns the watched clusters, sorted.
func (d *Detector) ClusterNames() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.names()
}
