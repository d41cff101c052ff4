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
	topo     func() *resolvedTopology
	recovery config.Recovery
	// maxAge is how old an observation may be and still count as current.
	maxAge time.Duration
	det    *detector.Detector // nil before detection runs
}

func newReplicaView(cfg *config.Config, topo func() *resolvedTopology, det *detector.Detector) *replicaView {
	return &replicaView{topo: topo, recovery: cfg.Recovery, det: det,
		maxAge: 3*cfg.Detector.ProbeInterval + cfg.Detector.ProbeTimeout}
}

var _ api.ReplicaView = (*replicaView)(nil)

func (v *replicaView) Configured(cluster, addr string) bool {
	return v.topo().configured(cluster, addr)
}

func (v *replicaView) ReplicaHealth(cluster, addr string) api.ReplicaHealth {
	c, _ := v.topo().cluster(cluster)
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
