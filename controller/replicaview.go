package controller

import (
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/quorumha/quorumha/api"
	"github.com/quorumha/quorumha/config"
	"github.com/quorumha/quorumha/detector"
)

// replicaView serves the API's proxy replica endpoint from this
// controller's latest detector observations of the replicas.
type replicaView struct {
	clusters map[string]config.Cluster
	recovery config.Recovery
	// maxAge is how old an observation may be and still let a replica
	// serve reads: a few probe intervals, so a stuck detector (or one
	// whose probes of the replica hang) stops vouching for it.
	maxAge time.Duration
	det    *detector.Detector // nil before detection runs
}

func newReplicaView(cfg *config.Config, det *detector.Detector) *replicaView {
	v := &replicaView{clusters: map[string]config.Cluster{}, recovery: cfg.Recovery, det: det,
		maxAge: 3*cfg.Detector.ProbeInterval + cfg.Detector.ProbeTimeout}
	for _, c := range cfg.Clusters {
		v.clusters[c.Name] = c
	}
	return v
}

var _ api.ReplicaView = (*replicaView)(nil)

func (v *replicaView) Configured(cluster, addr string) bool {
	c, ok := v.clusters[cluster]
	if !ok {
		return false
	}
	for _, in := range c.Instances {
		if strings.EqualFold(in.Address, addr) {
			return true
		}
	}
	return false
}

func (v *replicaView) ReplicaHealth(cluster, addr string) api.ReplicaHealth {
	c := v.clusters[cluster]
	h := api.ReplicaHealth{LagLimit: c.LagLimit(v.recovery), MaxAge: v.maxAge}
	if v.det == nil {
		return h
	}
	a, ok := v.det.Assessment(cluster)
	if !ok {
		return h
	}
	for _, o := range a.ReplicaView {
		if strings.EqualFold(o.Replica, addr) {
			h.Observed, h.Reachable = true, o.Reachable
			h.IORunning, h.SQLRunning, h.SecondsBehind = o.IORunning, o.SQLRunning, o.SecondsBehind
			h.ObservedAt = o.ObservedAt
			if o.MasterHost != "" {
				h.Source = net.JoinHostPort(o.MasterHost, strconv.Itoa(o.MasterPort))
			}
			if o.SameServer {
				h.SourceServerOf = a.Master
			}
		}
	}
	return h
}
