package api

import (
	"time"

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
	// Origin says where the cluster's definition comes from: "state" (the
	// replicated state, shared by every controller) or "file" (this
	// controller's config file, not seeded into the state yet).
	Origin string `json:"origin,omitempty"`
	// Discovered lists replicas of the master that are not instances of the
	// cluster (leader only: discovery runs there).
	Discovered []DiscoveredInstance `json:"discovered,omitempty"`
}

// DiscoveredInstance is a replica found replicating from a cluster's
// master that is not one of its instances.
type DiscoveredInstance struct {
	Address string `json:"address"`
	// Source is "slave_hosts" (SHOW SLAVE HOSTS) or "dump_thread" (a binlog
	// dump thread's client address; the port is a guess).
	Source   string `json:"source"`
	ServerID uint32 `json:"server_id,omitempty"`
	// Action is "reported" or "added" (auto_add), or why adding failed.
	Action string    `json:"action"`
	Seen   time.Time `json:"seen"`
}

// ConfiguredInstance is one configured instance of a cluster.
type ConfiguredInstance struct {
	Address         string `json:"address"`
	Zone            string `json:"zone,omitempty"`
	CandidateMaster bool   `json:"candidate_master,omitempty"`
	NoMaster        bool   `json:"no_master,omitempty"`
}
