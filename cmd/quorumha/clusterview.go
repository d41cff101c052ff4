package main

import (
	"slices"

	"github.com/quorumha/quorumha/config"
)

// configView serves the API's cluster view from the configuration alone:
// which clusters exist and their configured instances. It is what a
// controller knows before the detector has probed anything.
type configView struct {
	clusters map[string]config.Cluster
	names    []string
}

// configuredInstance is the JSON shape of one configured instance (no secrets).
type configuredInstance struct {
	Address         string `json:"address"`
	Zone            string `json:"zone,omitempty"`
	CandidateMaster bool   `json:"candidate_master,omitempty"`
	NoMaster        bool   `json:"no_master,omitempty"`
}

func newConfigView(cfg *config.Config) *configView {
	v := &configView{clusters: map[string]config.Cluster{}}
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
	return map[string]any{"configured_instances": out}, true
}

// HealthyMaster is unknown without probes: the API then serves the master
// recorded in the replicated state.
func (v *configView) HealthyMaster(string) (string, bool) { return "", false }
