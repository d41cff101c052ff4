package topology

import (
	"fmt"
	"slices"
	"strings"
)

// AnomalyKind names a problem found in a topology. The detector and
// check-repl map kinds to actions and messages, so kinds are stable strings.
type AnomalyKind string

// Anomaly kinds reported by Analyze.
const (
	// MultipleWritableMasters: more than one writable instance replicates
	// from nobody: split brain, or an old master that came back writable.
	MultipleWritableMasters AnomalyKind = "MultipleWritableMasters"
	// NoMaster: no instance is a root of replication.
	NoMaster AnomalyKind = "NoMaster"
	// MasterReadOnly: the single root is read-only (fenced, or not yet promoted).
	MasterReadOnly AnomalyKind = "MasterReadOnly"
	// ReplicaOfUnknownHost: a replica's master was neither read nor tried.
	ReplicaOfUnknownHost AnomalyKind = "ReplicaOfUnknownHost"
	// BrokenChain: a replica's master is known but could not be read.
	BrokenChain AnomalyKind = "BrokenChain"
	// ReplicaNotReadOnly: a replica accepts writes (errant transactions ahead).
	ReplicaNotReadOnly AnomalyKind = "ReplicaNotReadOnly"
	// ReplicationStopped: a replica's IO or SQL thread is not running.
	ReplicationStopped AnomalyKind = "ReplicationStopped"
	// CircularReplication: following masters from a replica loops.
	CircularReplication AnomalyKind = "CircularReplication"
	// ErrantTransactions: a replica has GTIDs its master does not.
	ErrantTransactions AnomalyKind = "ErrantTransactions"
)

// Anomaly is one problem with the instance it concerns and a human detail.
type Anomaly struct {
	Kind     AnomalyKind
	Instance string
	Detail   string
}

// String formats the anomaly for check-repl's problem list.
func (a Anomaly) String() string { return fmt.Sprintf("%s %s: %s", a.Kind, a.Instance, a.Detail) }

// UnreachableInstance is an address discovery or a caller tried and failed.
type UnreachableInstance struct {
	Addr string
	Err  error
}

// Topology is the replication graph as read at one moment.
type Topology struct {
	// Instances are every instance read, sorted by Key.
	Instances []*Instance
	// Master is the single writable instance that replicates from nobody,
	// or, failing that, the single read-only root; nil when ambiguous.
	Master *Instance
	// Replicas are every instance with replication configured, sorted by Key.
	Replicas    []*Instance
	Unreachable []UnreachableInstance
	Anomalies   []Anomaly
	aliases     map[string]string
}

// Lookup finds an instance by its key or any address it is known by
// (@@hostname:@@port, report_host:report_port, or an address discovery used).
func (t *Topology) Lookup(addr string) *Instance {
	key := addr
	if k, ok := t.aliases[addr]; ok {
		key = k
	}
	for _, i := range t.Instances {
		if i.Key == key {
			return i
		}
	}
	return nil
}

// MasterOf returns the instance i replicates from, if it was read.
func (t *Topology) MasterOf(i *Instance) *Instance {
	if i.Replica == nil {
		return nil
	}
	return t.Lookup(i.MasterKey())
}

// ReplicasOf returns the instances that replicate directly from m.
func (t *Topology) ReplicasOf(m *Instance) []*Instance {
	var out []*Instance
	for _, r := range t.Replicas {
		if t.MasterOf(r) == m {
			out = append(out, r)
		}
	}
	return out
}

// HasAnomaly reports whether an anomaly of kind was found (for any instance
// when instance is "").
func (t *Topology) HasAnomaly(kind AnomalyKind, instance string) bool {
	for _, a := range t.Anomalies {
		if a.Kind == kind && (instance == "" || a.Instance == instance) {
			return true
		}
	}
	return false
}

// Analyze builds a Topology from instances already read and addresses that
// failed. aliases maps extra addresses to instance keys (may be nil). It is a
// pure function: it decides nothing and touches no server, it only names
// what it sees.
func Analyze(instances []*Instance, aliases map[string]string, unreachable []UnreachableInstance) *Topology {
	t := &Topology{aliases: map[string]string{}, Unreachable: slices.Clone(unreachable)}
	t.Instances = slices.Clone(instances)
	slices.SortFunc(t.Instances, func(a, b *Instance) int { return strings.Compare(a.Key, b.Key) })
	for _, i := range t.Instances {
		for _, a := range []string{joinHostPort(i.Hostname, i.Port), joinHostPort(i.ReportHost, reportPort(i))} {
			if !strings.HasPrefix(a, ":") {
				t.aliases[a] = i.Key
			}
		}
	}
	for a, k := range aliases {
		t.aliases[a] = k
	}
	for _, i := range t.Instances {
		t.aliases[i.Key] = i.Key
		if i.Replica != nil {
			t.Replicas = append(t.Replicas, i)
		}
	}
	slices.SortFunc(t.Unreachable, func(a, b UnreachableInstance) int { return strings.Compare(a.Addr, b.Addr) })
	t.findMaster()
	t.checkReplicas()
	return t
}

func reportPort(i *Instance) int {
	if i.ReportPort != 0 {
		return i.ReportPort
	}
	return i.Port
}

func (t *Topology) add(kind AnomalyKind, inst, format string, args ...any) {
	t.Anomalies = append(t.Anomalies, Anomaly{Kind: kind, Instance: inst, Detail: fmt.Sprintf(format, args...)})
}

func (t *Topology) findMaster() {
	var roots, writable []*Instance
	for _, i := range t.Instances {
		if i.Replica == nil {
			roots = append(roots, i)
			if i.Writable() {
				writable = append(writable, i)
			}
		}
	}
	switch {
	case len(writable) == 1:
		t.Master = writable[0]
	case len(writable) > 1:
		keys := make([]string, len(writable))
		for n, w := range writable {
			keys[n] = w.Key
		}
		for _, w := range writable {
			t.add(MultipleWritableMasters, w.Key, "writable and replicating from nobody, as are %s", strings.Join(keys, ", "))
		}
	case len(roots) == 1:
		t.Master = roots[0]
		t.add(MasterReadOnly, roots[0].Key, "the only root of replication is read_only")
	case len(roots) == 0 && len(t.Instances) > 0:
		t.add(NoMaster, "", "every instance read is a replica")
	case len(roots) > 1:
		t.add(NoMaster, "", "%d read-only roots and no writable one", len(roots))
	}
}

func (t *Topology) unreachable(addr string) bool {
	for _, u := range t.Unreachable {
		if u.Addr == addr {
			return true
		}
	}
	return false
}

func (t *Topology) checkReplicas() {
	reportedCycle := map[string]bool{}
	for _, r := range t.Replicas {
		rs := r.Replica
		mk := r.MasterKey()
		master := t.Lookup(mk)
		switch {
		case master != nil:
		case t.unreachable(mk):
			t.add(BrokenChain, r.Key, "master %s is unreachable", mk)
		default:
			t.add(ReplicaOfUnknownHost, r.Key, "master %s is not a known instance", mk)
		}
		if !r.ReadOnly {
			t.add(ReplicaNotReadOnly, r.Key, "replica of %s has read_only=OFF", mk)
		}
		if rs.IORunning != IOYes || !rs.SQLRunning {
			d := fmt.Sprintf("io=%s sql=%v", rs.IORunning, boolYesNo(rs.SQLRunning))
			if rs.LastIOErrno != 0 {
				d += fmt.Sprintf("; io error %d: %s", rs.LastIOErrno, rs.LastIOError)
			}
			if rs.LastSQLErrno != 0 {
				d += fmt.Sprintf("; sql error %d: %s", rs.LastSQLErrno, rs.LastSQLError)
			}
			t.add(ReplicationStopped, r.Key, "%s", d)
		}
		if cycle := t.cycleFrom(r); len(cycle) > 0 && !reportedCycle[cycle[0]] {
			reportedCycle[cycle[0]] = true
			t.add(CircularReplication, cycle[0], "%s", strings.Join(append(cycle, cycle[0]), " -> "))
		}
		if master != nil {
			if errant := errantOf(r, master); errant != "" {
				t.add(ErrantTransactions, r.Key, "GTIDs not on master %s: %s", master.Key, errant)
			}
		}
	}
}

func boolYesNo(b bool) string {
	if b {
		return "Yes"
	}
	return "No"
}

// cycleFrom returns the keys of a replication loop reachable from r, rotated
// to start at the smallest key, or nil.
func (t *Topology) cycleFrom(r *Instance) []string {
	var path []string
	seen := map[string]int{}
	for cur := r; cur != nil && cur.Replica != nil; cur = t.MasterOf(cur) {
		if at, ok := seen[cur.Key]; ok {
			cycle := path[at:]
			smallest := 0
			for n, k := range cycle {
				if k < cycle[smallest] {
					smallest = n
				}
			}
			return append(slices.Clone(cycle[smallest:]), cycle[:smallest]...)
		}
		seen[cur.Key] = len(path)
		path = append(path, cur.Key)
	}
	return nil
}

// errantOf returns a replica's errant GTIDs against its master, "" if none or
// if they cannot be computed (file/pos replication, unparsable values).
func errantOf(r, m *Instance) string {
	switch {
	case r.Version.Flavor == MySQL && m.Version.Flavor == MySQL && r.GTIDEnabled() && m.GTIDEnabled():
		e, err := ErrantGTIDs(MySQL, r.GTIDExecuted, m.GTIDExecuted)
		if err == nil {
			return e
		}
	case r.Version.Flavor == MariaDB && m.Version.Flavor == MariaDB && m.GTIDBinlogState != "":
		own := r.GTIDCurrentPos
		if r.LogBin && r.GTIDBinlogState != "" {
			own = r.GTIDBinlogState
		}
		e, err := ErrantGTIDs(MariaDB, own, m.GTIDBinlogState)
		if err == nil {
			return e
		}
	}
	return ""
}
