package detector

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/quorumha/quorumha/fsm"
)

// MasterFinder discovers the single writable master among seed addresses;
// ok is false when discovery cannot name exactly one.
type MasterFinder func(ctx context.Context, seeds []string) (master string, ok bool)

// InitialMaster chooses which instance a controller watches as the master
// when it starts. Reality first: the single writable master that discovery
// finds. When discovery cannot name one (the master is down, or two are
// writable), the master recorded in the replicated state, and failing that
// the first configured address. The reason is for the log.
//
// Only a configured address is ever chosen: the detector probes the master
// with the cluster's admin account, which must not go to a server someone
// else named (a replica's report_host, a forged record).
func InitialMaster(ctx context.Context, addrs []string, recorded string, find MasterFinder) (string, string) {
	configured := func(a string) bool {
		return slices.ContainsFunc(addrs, func(x string) bool { return strings.EqualFold(x, a) })
	}
	if find != nil {
		if m, ok := find(ctx, addrs); ok && configured(m) {
			return m, "discovered"
		}
	}
	if recorded != "" && configured(recorded) {
		return recorded, "recorded in the replicated state"
	}
	if len(addrs) > 0 {
		return addrs[0], "first configured instance (discovery found no single master)"
	}
	return "", "no instances"
}

// MasterSource is the replicated state's view of cluster masters.
type MasterSource interface {
	Cluster(name string) (fsm.ClusterState, bool)
}

// FollowRecordedMasters moves the detector to a cluster's new master when
// the replicated state records one (after a failover or switchover decided
// by any leader), so every controller watches the same instance. It only
// reacts to changes of the record, so it never fights the start-up choice.
// It returns when ctx ends.
func (d *Detector) FollowRecordedMasters(ctx context.Context, src MasterSource, every time.Duration, log *slog.Logger) {
	seen := map[string]time.Time{}
	for _, name := range d.names() {
		if cs, ok := src.Cluster(name); ok {
			seen[name] = cs.MasterSetAt
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.cfg.Clock.After(every):
		}
		for _, name := range d.names() {
			cs, ok := src.Cluster(name)
			if !ok || cs.Master == "" || !cs.MasterSetAt.After(seen[name]) {
				continue
			}
			seen[name] = cs.MasterSetAt
			spec, ok := d.Cluster(name)
			if !ok || spec.Master == cs.Master {
				continue
			}
			if err := d.SetMaster(name, cs.Master); err != nil {
				log.Warn("follow recorded master", "cluster", name, "master", cs.Master, "err", err)
				continue
			}
			log.Info("now watching the recorded master", "cluster", name, "master", cs.Master, "previous", spec.Master)
		}
	}
}
