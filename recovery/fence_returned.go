package recovery

import (
	"context"

	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/topology"
)

// fenceReturned makes a master that a failover replaced read-only again
// when it comes back writable (scenario 22: a server restarted without
// read_only in its my.cnf). It touches only the old master of the cluster's
// last successful failover, only while the recorded master is another
// instance and no record is open, and it never makes it a replica: rejoining
// is an explicit operator action. Leader only, like every change to an
// instance, and after VerifyLeader.
func (d *Runner) fenceReturned(ctx context.Context) {
	open := map[string]bool{}
	for _, r := range d.state.OpenRecords() {
		open[r.Cluster] = true
	}
	for _, cc := range d.clusters() {
		cs, ok := d.state.Cluster(cc.Name)
		if !ok || open[cc.Name] || cs.LastFailoverID == 0 || cs.Master == "" {
			continue
		}
		rec, ok := d.state.Record(cs.LastFailoverID)
		if !ok || rec.Result != fsm.ResultSuccess || rec.OldMaster == "" || rec.OldMaster == cs.Master {
			continue
		}
		d.fenceIfWritable(ctx, cc, rec.OldMaster, rec.ID)
	}
}

func (d *Runner) fenceIfWritable(ctx context.Context, cc ClusterConfig, addr string, recID uint64) {
	in, err := d.exec.dial(ctx, addr, topology.Credentials{User: cc.User, Password: cc.Password})
	if err != nil {
		return // not back: nothing to fence
	}
	defer in.Close()
	st, err := in.Read(ctx)
	if err != nil || st.ReadOnly || st.IsReplica() {
		return // read-only, or already rejoined as a replica by an operator
	}
	if err := d.group.VerifyLeader(ctx); err != nil {
		return
	}
	killed, err := in.FenceWrites(ctx)
	if err != nil {
		d.log.Error("old master is back and writable; fencing it failed", "cluster", cc.Name, "instance", addr, "record", recID, "err", err)
		return
	}
	d.log.Warn("old master came back writable: set read_only and killed its client connections (rejoin it explicitly)",
		"cluster", cc.Name, "instance", addr, "record", recID, "killed", len(killed))
}
