package api

import (
	"github.com/quorumha/quorumha/detector"
	"github.com/quorumha/quorumha/lease"
)

// ClusterTopology is one controller's live view of a cluster, the
// "topology" of GET /v1/clusters: its configured instances (no secrets),
// the detector's latest assessment and the master it watches, and this
// controller's share of the masters' quorum leases. The controller fills
// it (controller.ClusterView); the CLI decodes it.
type ClusterTopology struct {
	Assessment          *detector.Assessment `json:"assessment,omitempty"`
	ConfiguredInstances []ConfiguredInstance `json:"configured_instances"`
	// Lease is what this controller last granted, and whether it stopped
	// for a failover (nil without a lease keeper).
	Lease         *lease.ClusterLease `json:"lease,omitempty"`
	WatchedMaster string              `json:"watched_master,omitempty"`
}

// ConfiguredInstance is one configured instance of a cluster.
type ConfiguredInstance struct {
	Address         string `json:"address"`
	Zone            string `json:"zone,omitempty"`
	CandidateMaster bool   `json:"candidate_master,omitempty"`
	NoMaster        bool   `json:"no_master,omitempty"`
}
