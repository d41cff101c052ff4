package controller

import (
	"fmt"
	"slices"
	"strings"

	"github.com/quorumha/quorumha/config"
	"github.com/quorumha/quorumha/fsm"
)

// ClusterDefFromConfig is the replicated definition a config file's
// cluster seeds. Secrets stay out: a password_file is referenced by path,
// and an inline or environment password is not referenced at all, so each
// controller keeps using its own file's secret for that cluster.
func ClusterDefFromConfig(c config.Cluster) fsm.ClusterDef {
	d := fsm.ClusterDef{Name: c.Name, User: c.User, PasswordFile: c.PasswordFile, ReplUser: c.ReplUser,
		ReplPasswordFile: c.ReplPasswordFile, SSHUser: c.SSHUser, MasterBinlogDir: c.MasterBinlogDir,
		ReplicationMode: c.ReplicationMode, MaxLag: c.MaxLag, AutoAdd: c.AutoAdd}
	for _, in := range c.Instances {
		d.Instances = append(d.Instances, instanceDefFromConfig(in))
	}
	return d
}

func instanceDefFromConfig(in config.Instance) fsm.InstanceDef {
	return fsm.InstanceDef{Address: in.Address, Zone: in.Zone, CandidateMaster: in.CandidateMaster,
		NoMaster: in.NoMaster, IgnoreFail: in.IgnoreFail, CheckReplDelay: in.CheckReplDelay, Agent: in.Agent}
}

// stateEmpty reports whether the replicated state has never held a
// cluster definition: the topology is not bootstrapped yet.
func stateEmpty(defs []fsm.ClusterDef, removed []string) bool {
	return len(defs) == 0 && len(removed) == 0
}

// SeedClusters returns what the leader writes to bootstrap the replicated
// topology: every cluster of its file, when the state has never held a
// cluster definition (none defined, none removed); nothing otherwise. Once
// bootstrapped, a file never adds, changes or re-adds a cluster, however it
// differs: the state wins, and the differences are reported (DiffTopology).
func SeedClusters(local []config.Cluster, defs []fsm.ClusterDef, removed []string) []fsm.ClusterDef {
	if !stateEmpty(defs, removed) {
		return nil
	}
	var out []fsm.ClusterDef
	for _, c := range local {
		out = append(out, ClusterDefFromConfig(c))
	}
	return out
}

// DiffTopology lists, one line each, how a config file's clusters differ
// from the replicated definitions (which win). Clusters the state has not
// defined yet are listed as "not yet in the replicated state". Empty when
// they agree.
func DiffTopology(local []config.Cluster, defs []fsm.ClusterDef, removed []string) []string {
	var out []string
	for _, c := range local {
		i := slices.IndexFunc(defs, func(d fsm.ClusterDef) bool { return d.Name == c.Name })
		switch {
		case i >= 0:
			out = append(out, diffCluster(ClusterDefFromConfig(c), defs[i])...)
		case slices.Contains(removed, c.Name):
			out = append(out, fmt.Sprintf("cluster %q: in the file but removed from the replicated state (not watched)", c.Name))
		case stateEmpty(defs, removed):
			out = append(out, fmt.Sprintf("cluster %q: in the file, not yet in the replicated state (the leader seeds it)", c.Name))
		default:
			out = append(out, fmt.Sprintf("cluster %q: in the file, not in the replicated state: not watched (add it with `quorumha cluster add`)", c.Name))
		}
	}
	for _, d := range defs {
		if !slices.ContainsFunc(local, func(c config.Cluster) bool { return c.Name == d.Name }) {
			out = append(out, fmt.Sprintf("cluster %q: in the replicated state only (%d instances; watched, with no local hooks, TLS or agent credentials)", d.Name, len(d.Instances)))
		}
	}
	return out
}

// diffCluster compares a file's definition (f) with the state's (s).
func diffCluster(f, s fsm.ClusterDef) []string {
	var out []string
	field := func(key string, fv, sv any) {
		if fmt.Sprint(fv) != fmt.Sprint(sv) {
			out = append(out, fmt.Sprintf("cluster %q: %s: file %v, state %v", f.Name, key, fv, sv))
		}
	}
	field("user", f.User, s.User)
	if f.PasswordFile != "" || s.PasswordFile != "" || s.PasswordEnv != "" {
		field("password_file", f.PasswordFile, s.PasswordFile)
	}
	field("repl_user", f.ReplUser, s.ReplUser)
	field("replication_mode", orGTID(f.ReplicationMode), orGTID(s.ReplicationMode))
	field("max_lag", f.MaxLag, s.MaxLag)
	field("auto_add", f.AutoAdd, s.AutoAdd)
	for _, fi := range f.Instances {
		si, ok := s.Instance(fi.Address)
		if !ok {
			out = append(out, fmt.Sprintf("cluster %q: instance %s: in the file, not in the state (not watched)", f.Name, fi.Address))
			continue
		}
		ff, sf := instanceFlags(fi), instanceFlags(si)
		if ff != sf {
			out = append(out, fmt.Sprintf("cluster %q: instance %s: file %s, state %s", f.Name, fi.Address, ff, sf))
		}
	}
	for _, si := range s.Instances {
		if _, ok := (&f).Instance(si.Address); !ok {
			out = append(out, fmt.Sprintf("cluster %q: instance %s: in the state only (%s, added by %s)", f.Name, si.Address, instanceFlags(si), orDash(si.AddedBy)))
		}
	}
	return out
}

func instanceFlags(in fsm.InstanceDef) string {
	f := in.Flags()
	if in.Agent != "" {
		f = append(f, "agent="+in.Agent)
	}
	if len(f) == 0 {
		return "(defaults)"
	}
	return strings.Join(f, ",")
}

func orGTID(s string) string {
	if s == "" {
		return config.ReplicationGTID
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
