package controller

import (
	"strings"

	"github.com/quorumha/quorumha/api"
	"github.com/quorumha/quorumha/detector"
	"github.com/quorumha/quorumha/lease"
)

// configView serves the API's cluster view: which clusters exist and their
// configured instances (from the configuration), plus this controller's live
// assessment of each (from the detector).
type configView struct {
	topo       func() *resolvedTopology
	det        *detector.Detector // nil before detection runs
	lease      *lease.Keeper      // nil: no lease view
	discovered *discoveredReports // nil: no discovery reports
}

func newConfigView(topo func() *resolvedTopology, det *detector.Detector, lk *lease.Keeper, disc *discoveredReports) *configView {
	return &configView{topo: topo, det: det, lease: lk, discovered: disc}
}

func (v *configView) KnownCluster(name string) bool { _, ok := v.topo().cluster(name); return ok }

func (v *configView) ClusterNames() []string { return v.topo().names() }

// ClusterInfo is this controller's typed view of one cluster.
func (v *configView) ClusterInfo(name string) (api.ClusterTopology, bool) {
	c, ok := v.topo().cluster(name)
	if !ok {
		return api.ClusterTopology{}, false
	}
	out := make([]api.ConfiguredInstance, 0, len(c.Instances))
	for _, in := range c.Instances {
		out = append(out, api.ConfiguredInstance{Address: in.Address, Zone: in.Zone, CandidateMaster: in.CandidateMaster, NoMaster: in.NoMaster})
	}
	info := api.ClusterTopology{ConfiguredInstances: out, Origin: c.Origin}
	if v.discovered != nil {
		// The last round's report, less what has been added since.
		for _, d := range v.discovered.get(name) {
			if !c.configured(d.Address) {
				info.Discovered = append(info.Discovered, d)
			}
		}
	}
	if v.det != nil {
		if a, ok := v.det.Assessment(name); ok {
			info.Assessment = &a
		}
		if spec, ok := v.det.Cluster(name); ok {
			info.WatchedMaster = spec.Master
		}
	}
	if v.lease != nil {
		// This controller's share of the masters' quorum leases: what
		// it last granted, and whether it stopped for a failover.
		l := v.lease.View(name)
		info.Lease = &l
	}
	return info, true
}

// MasterDead reports whether this controller's latest assessment of the
// cluster confirms addr dead. The API names the master from the replicated
// state only; this only withholds it while the recorded master is known
// dead (an assessment of another instance, say the old master the detector
// still watches right after a failover, says nothing about it).
func (v *configView) MasterDead(name, addr string) bool {
	if v.det == nil {
		return false
	}
	a, ok := v.det.Assessment(name)
	return ok && a.State == detector.AssessDeadConfirmed && strings.EqualFold(a.Master, addr)
}
