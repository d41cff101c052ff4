package recovery

// This file holds the cluster-wide consistency checks of Preflight:
// replication filters, GTID modes and the replication user's grants.

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/quorumha/quorumha/topology"
)

// checkFilters compares every instance's replication filters with those most
// instances share (ties go to the master's, then to the smallest address),
// as a failover to a replica with other filters silently loses data.
func (p *preflight) checkFilters() {
	if len(p.topo.Instances) < 2 {
		return
	}
	type group struct {
		f       topology.ReplicationFilters
		members []string
		master  bool
	}
	var groups []*group
	for _, i := range p.topo.Instances {
		var g *group
		for _, c := range groups {
			if c.f.Equal(i.ReplicationFilters) {
				g = c
				break
			}
		}
		if g == nil {
			g = &group{f: i.ReplicationFilters}
			groups = append(groups, g)
		}
		g.members = append(g.members, i.Key)
		g.master = g.master || i == p.topo.Master
	}
	if len(groups) < 2 {
		return
	}
	ref := groups[0]
	for _, g := range groups[1:] {
		if len(g.members) > len(ref.members) || (len(g.members) == len(ref.members) && g.master && !ref.master) {
			ref = g
		}
	}
	for _, g := range groups {
		if g == ref {
			continue
		}
		for _, m := range g.members {
			p.add(SeverityError, ProblemFiltersDiffer, m, "replication filters %s differ from %s on %s",
				describeFilters(g.f), describeFilters(ref.f), strings.Join(ref.members, ", "))
		}
	}
}

func describeFilters(f topology.ReplicationFilters) string {
	if f.IsEmpty() {
		return "{none}"
	}
	var parts []string
	for _, kv := range []struct {
		name string
		v    []string
	}{
		{"replicate_do_db", f.DoDB}, {"replicate_ignore_db", f.IgnoreDB},
		{"replicate_do_table", f.DoTable}, {"replicate_ignore_table", f.IgnoreTable},
		{"replicate_wild_do_table", f.WildDoTable}, {"replicate_wild_ignore_table", f.WildIgnoreTable},
		{"replicate_do_domain_ids", f.DoDomainIDs}, {"replicate_ignore_domain_ids", f.IgnoreDomainIDs},
	} {
		if len(kv.v) > 0 {
			parts = append(parts, kv.name+"="+strings.Join(kv.v, ","))
		}
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// replMode describes how a replica positions itself, in the server's terms.
func replMode(i *topology.Instance) string {
	r := i.Replica
	if i.Version.Flavor == topology.MySQL {
		if r.AutoPosition {
			return "Auto_Position=1"
		}
		return "Auto_Position=0"
	}
	if r.UsingGTID == "" {
		return "Using_Gtid=No"
	}
	return "Using_Gtid=" + r.UsingGTID
}

// checkGTIDModes finds instances that do not replicate like the others:
// MySQL gtid_mode differing between servers, and replicas positioning by
// GTID while others use file/position (or the reverse). After a failover the
// odd one out would be repointed in a mode it was not in, or not at all.
func (p *preflight) checkGTIDModes() {
	var modes []string // MySQL gtid_mode, per instance
	var mysql []*topology.Instance
	for _, i := range p.topo.Instances {
		if i.Version.Flavor == topology.MySQL {
			mysql = append(mysql, i)
			modes = append(modes, strings.ToUpper(i.GTIDMode))
		}
	}
	masterMode := ""
	if m := p.topo.Master; m != nil && m.Version.Flavor == topology.MySQL {
		masterMode = strings.ToUpper(m.GTIDMode)
	}
	if ref, odd := majority(modes, masterMode); len(odd) > 0 {
		for _, n := range odd {
			p.add(SeverityError, ProblemGTIDModeDiffers, mysql[n].Key, "gtid_mode=%s while the others have gtid_mode=%s", modes[n], ref)
		}
	}

	replicas := p.topo.Replicas
	uses := make([]string, len(replicas))
	for n, r := range replicas {
		uses[n] = boolWord(r.Replica.UsesGTID())
	}
	want := boolWord(p.in.ReplicationMode != "file")
	ref, odd := majority(uses, want)
	oddSet := map[int]bool{}
	for _, n := range odd {
		oddSet[n] = true
		var others []string
		for k, r := range replicas {
			if uses[k] == ref {
				others = append(others, r.Key+" ("+replMode(r)+")")
			}
		}
		p.add(SeverityError, ProblemGTIDModeDiffers, replicas[n].Key, "replicates with %s, unlike %s: replicas must all use GTID or all use file/position",
			replMode(replicas[n]), strings.Join(others, ", "))
	}
	if ref != "" && ref != want {
		for n, r := range replicas {
			if !oddSet[n] {
				p.add(SeverityWarning, ProblemReplicationModeMismatch, r.Key, "replicates with %s but the cluster's replication_mode is %q",
					replMode(r), p.in.ReplicationMode)
			}
		}
	}
}

func boolWord(b bool) string {
	if b {
		return "gtid"
	}
	return "file"
}

// majority returns the most frequent value (ties go to prefer when it is
// among the tied, else to the smallest value) and the indexes of the values
// that differ from it.
func majority(vals []string, prefer string) (string, []int) {
	if len(vals) == 0 {
		return "", nil
	}
	count := map[string]int{}
	for _, v := range vals {
		count[v]++
	}
	ref, best := "", -1
	for _, v := range slices.Sorted(maps.Keys(count)) {
		if c := count[v]; c > best || (c == best && v == prefer) {
			ref, best = v, c
		}
	}
	var odd []int
	for n, v := range vals {
		if v != ref {
			odd = append(odd, n)
		}
	}
	return ref, odd
}

// checkGrants reports promotable instances on which the replication user
// could not log in to replicate: once promoted, the other replicas connect
// to it as that user.
func (p *preflight) checkGrants() {
	user := p.in.ReplUser
	for _, c := range p.in.Configured {
		g, ok := p.in.ReplGrants[c.Address]
		if !ok || c.NoMaster {
			continue
		}
		switch {
		case g.Err != "":
			p.add(SeverityWarning, ProblemReplGrantsUnknown, c.Address, "cannot read the grants of replication user %q: %s", user, g.Err)
		case len(g.WithPrivilege) > 0:
		case len(g.WithoutPrivilege) > 0:
			p.add(SeverityError, ProblemReplUserNoPrivilege, c.Address,
				"replication user %q exists (%s) but has no REPLICATION SLAVE privilege: replicas could not connect to it once promoted",
				user, accounts(user, g.WithoutPrivilege))
		default:
			p.add(SeverityError, ProblemReplUserMissing, c.Address,
				"replication user %q does not exist: replicas could not connect to it once promoted", user)
		}
	}
}

func accounts(user string, hosts []string) string {
	out := make([]string, len(hosts))
	for n, h := range hosts {
		out[n] = fmt.Sprintf("'%s'@'%s'", user, h)
	}
	return strings.Join(out, ", ")
}

// ReplUserOf returns the replication user to check: the configured one, else
// the Master_User the replicas use when they all agree ("" otherwise).
func ReplUserOf(configured string, topo *topology.Topology) string {
	if configured != "" || topo == nil {
		return configured
	}
	user := ""
	for _, r := range topo.Replicas {
		switch {
		case r.Replica.MasterUser == "":
		case user == "":
			user = r.Replica.MasterUser
		case user != r.Replica.MasterUser:
			return ""
		}
	}
	return user
}
