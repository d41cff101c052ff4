package main

import (
	"slices"
	"strings"
	"time"

	"github.com/quorumha/quorumha/config"
	"github.com/quorumha/quorumha/detector"
	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/lease"
)

// configView serves the API's cluster view: which clusters exist and their
// configured instances (from the configuration), plus this controller's live
// assessment of each (from the detector).
type configView struct {
	clusters map[string]config.Cluster
	names    []string
	det      *detector.Detector // nil before detection runs
	lease    *lease.Keeper      // nil: no lease view
}

// configuredInstance is the JSON shape of one configured instance (no secrets).
type configuredInstance struct {
	Address         string `json:"address"`
	Zone            string `json:"zone,omitempty"`
	CandidateMaster bool   `json:"candidate_master,omitempty"`
	NoMaster        bool   `json:"no_master,omitempty"`
}

func newConfigView(cfg *config.Config, det *detector.Detector, lk *lease.Keeper) *configView {
	v := &configView{clusters: map[string]config.Cluster{}, det: det, lease: lk}
	for _, c := range cfg.Clusters {
		v.clusters[c.Name] = c
		v.names = append(v.names, c.Name)
	}
	slices.Sort(v.names)
	return v
}

func (v *configView) KnownCluster(name string) bool { _, ok := v.clusters[name]; return ok }

func (v *configView) ClusterNames() []string { return slices.Clone(v.names) }

func (v *configView) ClusterInfo(name string) (any, bool) {
	c, ok := v.clusters[name]
	if !ok {
		return nil, false
	}
	out := make([]configuredInstance, 0, len(c.Instances))
	for _, in := range c.Instances {
		out = append(out, configuredInstance{Address: in.Address, Zone: in.Zone, CandidateMaster: in.CandidateMaster, NoMaster: in.NoMaster})
	}
	info := map[string]any{"configured_instances": out}
	if v.det != nil {
		if a, ok := v.det.Assessment(name); ok {
			info["assessment"] = a
		}
		if spec, ok := v.det.Cluster(name); ok {
			info["watched_master"] = spec.Master
		}
	}
	if v.lease != nil {
		// This controller's share of the masters' quorum leases: what
		// it last granted, and whether it stopped for a failover.
		info["lease"] = v.lease.View(name)
	}
	return info, true
}

// HealthyMaster is the watched master while this controller's latest
// assessment says it is healthy. Otherwise the API serves the master
// recorded in the replicated state (or 503 when none is known).
func (v *configView) HealthyMaster(name string) (string, bool) {
	if v.det == nil {
		return "", false
	}
	a, ok := v.det.Assessment(name)
	if !ok || a.State != detector.AssessHealthy {
		return "", false
	}
	return a.Master, true
}

// recordedMasterFresh is how long a master recorded by a failover or
// switchover is named by GET /v1/clusters/{name}/master while the detector
// still assesses another instance (it follows the record within
// followMastersEvery, then needs a probe round to call the new one healthy).
const recordedMasterFresh = 10 * time.Second

// recordedMasterView names a master the replicated state recorded moments
// ago (a switchover or failover just closed) while the detector does not
// yet call it healthy (it follows the record, then needs a probe round);
// otherwise the detector's healthy master, as configView does.
type recordedMasterView struct {
	*configView
	state *fsm.FSM
}

// HealthyMaster prefers a freshly recorded master the detector has not yet
// assessed.
func (v recordedMasterView) HealthyMaster(name string) (string, bool) {
	m, ok := v.configView.HealthyMaster(name)
	if cs, found := v.state.Cluster(name); found && cs.Master != "" && time.Since(cs.MasterSetAt) < recordedMasterFresh &&
		(!ok || !strings.EqualFold(m, cs.Master)) {
		return cs.Master, true
	}
	return m, ok
}
