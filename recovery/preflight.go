package recovery

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/quorumha/quorumha/topology"
)

// Severity tells whether a preflight problem blocks a safe failover.
type Severity string

// Severities of a Problem. check-repl exits non-zero only on errors.
const (
	// SeverityError means a failover or switchover would fail or lose data.
	SeverityError Severity = "error"
	// SeverityWarning means something is worth fixing but does not block.
	SeverityWarning Severity = "warning"
)

// ProblemCode is the stable machine name of a preflight problem; scripts
// match on it, so codes are never renamed, only added.
type ProblemCode string

// Problem codes reported by Preflight.
const (
	ProblemUnreachable             ProblemCode = "unreachable"                    // an instance could not be connected to or read.
	ProblemMultipleMasters         ProblemCode = "multiple_masters"               // more than one writable instance replicates from nobody.
	ProblemNoMaster                ProblemCode = "no_master"                      // no single master could be identified.
	ProblemMasterReadOnly          ProblemCode = "master_read_only"               // the only root of replication is read_only.
	ProblemNotReplicating          ProblemCode = "not_replicating"                // a configured instance is neither the master nor a replica.
	ProblemReplicaNotReadOnly      ProblemCode = "replica_not_read_only"          // a replica accepts writes.
	ProblemIOThreadNotRunning      ProblemCode = "io_thread_not_running"          // a replica's IO thread is stopped or not connected.
	ProblemSQLThreadNotRunning     ProblemCode = "sql_thread_not_running"         // a replica's SQL thread is stopped.
	ProblemWrongMaster             ProblemCode = "replica_of_wrong_master"        // a replica follows a configured instance that is not the master.
	ProblemUnconfiguredMaster      ProblemCode = "replica_of_unconfigured_master" // a replica follows an instance not in the config.
	ProblemCircular                ProblemCode = "circular_replication"           // replication loops.
	ProblemNoLogBin                ProblemCode = "no_log_bin"                     // a promotable instance has binary logging off.
	ProblemNoLogSlaveUpdates       ProblemCode = "no_log_slave_updates"           // a promotable replica does not log what it replicates.
	ProblemReplUserMissing         ProblemCode = "repl_user_missing"              // the replication user does not exist on a promotable instance.
	ProblemReplUserNoPrivilege     ProblemCode = "repl_user_no_privilege"         // the replication user lacks REPLICATION SLAVE there.
	ProblemReplGrantsUnknown       ProblemCode = "repl_grants_unknown"            // the replication user's grants could not be read.
	ProblemFiltersDiffer           ProblemCode = "filters_differ"                 // replication filters differ between instances.
	ProblemGTIDModeDiffers         ProblemCode = "gtid_mode_differs"              // instances do not all replicate the same way (MariaDB Using_Gtid, MySQL gtid_mode or auto-position).
	ProblemReplicationModeMismatch ProblemCode = "replication_mode_mismatch"      // replicas agree but not with the configured replication_mode.
	ProblemErrantGTIDs             ProblemCode = "errant_gtids"                   // a replica has transactions its master lacks.
	ProblemRelayLogPurge           ProblemCode = "relay_log_purge"                // relay_log_purge is on for a file/position replica.
	ProblemLagTooHigh              ProblemCode = "lag_too_high"                   // a replica lags more than the configured limit.
	ProblemNotInTopology           ProblemCode = "not_in_topology"                // a configured instance was not found by discovery.
	ProblemNotConfigured           ProblemCode = "not_configured"                 // a discovered instance is not in the config.
)

// Problem is one finding of Preflight. Message is meant for a human and
// names the instance and the facts; Code is for scripts.
type Problem struct {
	Severity Severity    `json:"severity"`
	Code     ProblemCode `json:"code"`
	// Instance is the address concerned, "" for cluster-wide problems.
	Instance string `json:"instance,omitempty"`
	Message  string `json:"message"`
}

// String formats the problem as check-repl prints it.
func (p Problem) String() string {
	tag := "ERROR"
	if p.Severity == SeverityWarning {
		tag = "WARN"
	}
	inst := p.Instance
	if inst == "" {
		inst = "cluster"
	}
	return fmt.Sprintf("%s [%s] %s: %s", tag, p.Code, inst, p.Message)
}

// ConfiguredInstance is one instance as the config describes it.
type ConfiguredInstance struct {
	Address         string
	CandidateMaster bool
	NoMaster        bool
	IgnoreFail      bool
	// CheckReplDelay makes lag above the limit an error (the instance could
	// not be promoted); otherwise it is a warning.
	CheckReplDelay bool
}

// ReplGrant is what one instance's grant tables say about the replication
// user, across every host entry the user has.
type ReplGrant struct {
	// Err is set when the grants could not be read.
	Err string
	// WithPrivilege are the host patterns of entries holding REPLICATION SLAVE.
	WithPrivilege []string
	// WithoutPrivilege are the host patterns of entries lacking it.
	WithoutPrivilege []string
}

// PreflightInput is everything Preflight judges, already read: it does no
// I/O, so the same input always gives the same problems.
type PreflightInput struct {
	Cluster    string
	Configured []ConfiguredInstance
	// Topo is the discovered topology (Discover or Analyze); nil means
	// nothing could be read at all.
	Topo *topology.Topology
	// ReplUser is the replication account checked in ReplGrants.
	ReplUser string
	// ReplGrants holds the grant check of each promotable configured
	// instance, keyed by configured address. A missing entry is not checked.
	ReplGrants map[string]ReplGrant
	// MaxLag is the lag limit; 0 disables the lag check.
	MaxLag time.Duration
	// ReplicationMode is the cluster's configured mode, "gtid" or "file".
	ReplicationMode string
}

// preflight carries one Preflight call.
type preflight struct {
	in       PreflightInput
	topo     *topology.Topology
	cfgByKey map[string]ConfiguredInstance // topology key (or address when not found) -> config
	problems []Problem
}

func (p *preflight) add(sev Severity, code ProblemCode, inst, format string, args ...any) {
	p.problems = append(p.problems, Problem{Severity: sev, Code: code, Instance: inst, Message: fmt.Sprintf(format, args...)})
}

// Preflight checks a cluster the way MHA's masterha_check_repl does, and
// more: it returns every problem found, errors first, then by instance and
// code, so its output is stable.
func Preflight(in PreflightInput) []Problem {
	topo := in.Topo
	if topo == nil {
		topo = topology.Analyze(nil, nil, nil)
	}
	p := &preflight{in: in, topo: topo, cfgByKey: map[string]ConfiguredInstance{}}
	for _, c := range in.Configured {
		p.cfgByKey[p.keyOf(c.Address)] = c
	}
	p.checkReachability()
	p.checkMaster()
	for _, i := range topo.Instances {
		p.checkInstance(i)
	}
	p.checkFilters()
	p.checkGTIDModes()
	p.checkGrants()
	slices.SortFunc(p.problems, func(a, b Problem) int {
		return cmp.Or(
			cmp.Compare(sevRank(a.Severity), sevRank(b.Severity)),
			cmp.Compare(a.Instance, b.Instance),
			cmp.Compare(a.Code, b.Code),
			cmp.Compare(a.Message, b.Message),
		)
	})
	return p.problems
}

func sevRank(s Severity) int {
	if s == SeverityError {
		return 0
	}
	return 1
}

// keyOf maps an address to the topology key of the instance it reaches, or
// to itself when no instance read answers to it.
func (p *preflight) keyOf(addr string) string {
	if i := p.topo.Lookup(addr); i != nil {
		return i.Key
	}
	return addr
}

// configured returns the config of the instance known as addr.
func (p *preflight) configured(addr string) (ConfiguredInstance, bool) {
	c, ok := p.cfgByKey[p.keyOf(addr)]
	return c, ok
}

func (p *preflight) checkReachability() {
	unreachable := map[string]bool{}
	for _, u := range p.topo.Unreachable {
		unreachable[u.Addr] = true
		sev := SeverityError
		note := ""
		if c, ok := p.configured(u.Addr); ok && c.IgnoreFail {
			sev, note = SeverityWarning, " (ignore_fail is set)"
		} else if !ok {
			note = " (not in the config; found as a replica's master)"
		}
		p.add(sev, ProblemUnreachable, u.Addr, "cannot connect or read: %v%s", u.Err, note)
	}
	for _, c := range p.in.Configured {
		if !unreachable[c.Address] && p.topo.Lookup(c.Address) == nil {
			p.add(SeverityWarning, ProblemNotInTopology, c.Address, "configured but not found by discovery")
		}
	}
	for _, i := range p.topo.Instances {
		if _, ok := p.cfgByKey[i.Key]; ok {
			continue
		}
		if i == p.topo.Master {
			p.add(SeverityError, ProblemNotConfigured, i.Key, "is the master but not in the config of cluster %q", p.in.Cluster)
			continue
		}
		p.add(SeverityWarning, ProblemNotConfigured, i.Key, "replicates in cluster %q (master %s) but is not in its config", p.in.Cluster, orNone(i.MasterKey()))
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// writableRoots are the writable instances replicating from nobody.
func (p *preflight) writableRoots() []*topology.Instance {
	var out []*topology.Instance
	for _, i := range p.topo.Instances {
		if i.Replica == nil && i.Writable() {
			out = append(out, i)
		}
	}
	return out
}

func (p *preflight) checkMaster() {
	if len(p.topo.Instances) == 0 {
		p.add(SeverityError, ProblemNoMaster, "", "no instance could be read")
		return
	}
	roots := p.writableRoots()
	switch {
	case len(roots) > 1:
		keys := make([]string, len(roots))
		for n, r := range roots {
			keys[n] = r.Key
		}
		for _, r := range roots {
			p.add(SeverityError, ProblemMultipleMasters, r.Key,
				"writable (read_only=OFF) and replicating from nobody, as are %s: split brain risk", strings.Join(keys, ", "))
		}
	case p.topo.Master == nil:
		var ro []string
		for _, i := range p.topo.Instances {
			if i.Replica == nil {
				ro = append(ro, i.Key)
			}
		}
		if len(ro) == 0 {
			p.add(SeverityError, ProblemNoMaster, "", "every instance read is a replica; none is the master")
		} else {
			p.add(SeverityError, ProblemNoMaster, "", "no writable master; read-only instances replicating from nobody: %s", strings.Join(ro, ", "))
		}
	case !p.topo.Master.Writable():
		p.add(SeverityWarning, ProblemMasterReadOnly, p.topo.Master.Key, "the master is read_only=ON: clients cannot write")
	}
	for _, a := range p.topo.Anomalies {
		switch a.Kind {
		case topology.CircularReplication:
			p.add(SeverityError, ProblemCircular, a.Instance, "replication loops: %s", a.Detail)
		case topology.ErrantTransactions:
			p.add(SeverityError, ProblemErrantGTIDs, a.Instance,
				"has transactions its master lacks (%s); promoting it or repointing others to it would replay them", a.Detail)
		}
	}
}

// promotable reports whether i may become master: configured and not no_master.
func (p *preflight) promotable(i *topology.Instance) bool {
	c, ok := p.cfgByKey[i.Key]
	return ok && !c.NoMaster
}

func (p *preflight) checkInstance(i *topology.Instance) {
	if p.promotable(i) && !i.LogBin {
		p.add(SeverityError, ProblemNoLogBin, i.Key,
			"log_bin is OFF: it cannot be promoted (replicas need its binlog); enable log_bin or set no_master")
	}
	r := i.Replica
	if r == nil {
		if p.topo.Master != nil && i != p.topo.Master {
			p.add(SeverityError, ProblemNotReplicating, i.Key,
				"has no replication configured and is not the master %s", p.topo.Master.Key)
		}
		return
	}
	if p.promotable(i) && i.LogBin && !i.LogSlaveUpdates {
		p.add(SeverityError, ProblemNoLogSlaveUpdates, i.Key,
			"log_slave_updates is OFF: once promoted, other replicas cannot catch up from its binlog; enable it or set no_master")
	}
	mk := i.MasterKey()
	if !i.ReadOnly {
		p.add(SeverityError, ProblemReplicaNotReadOnly, i.Key, "replica of %s has read_only=OFF: writes to it are errant transactions", mk)
	}
	if r.IORunning != topology.IOYes {
		msg := fmt.Sprintf("Slave_IO_Running=%s (master %s)", r.IORunning, mk)
		if r.LastIOErrno != 0 {
			msg += fmt.Sprintf("; Last_IO_Errno=%d Last_IO_Error: %s", r.LastIOErrno, r.LastIOError)
		}
		p.add(SeverityError, ProblemIOThreadNotRunning, i.Key, "%s", msg)
	}
	if !r.SQLRunning {
		msg := fmt.Sprintf("Slave_SQL_Running=No (master %s)", mk)
		if r.LastSQLErrno != 0 {
			msg += fmt.Sprintf("; Last_SQL_Errno=%d Last_SQL_Error: %s", r.LastSQLErrno, r.LastSQLError)
		}
		p.add(SeverityError, ProblemSQLThreadNotRunning, i.Key, "%s", msg)
	}
	p.checkMasterOf(i, mk)
	if i.RelayLogPurge && (!r.UsesGTID() || p.in.ReplicationMode == "file") {
		p.add(SeverityWarning, ProblemRelayLogPurge, i.Key,
			"relay_log_purge=ON with file/position replication: applied relay logs are deleted, so they cannot fill in other replicas after a failover; set relay_log_purge=0")
	}
	p.checkLag(i)
}

func (p *preflight) checkMasterOf(i *topology.Instance, mk string) {
	m := p.topo.Lookup(mk)
	_, cfg := p.configured(mk)
	switch {
	case !cfg && (m == nil || m != p.topo.Master):
		p.add(SeverityError, ProblemUnconfiguredMaster, i.Key,
			"replicates from %s, which is not an instance of cluster %q", mk, p.in.Cluster)
	case p.topo.Master != nil && m != p.topo.Master:
		p.add(SeverityError, ProblemWrongMaster, i.Key,
			"replicates from %s, not from the cluster's master %s", mk, p.topo.Master.Key)
	}
}

func (p *preflight) checkLag(i *topology.Instance) {
	r := i.Replica
	if p.in.MaxLag <= 0 || r.SecondsBehind == nil {
		return
	}
	lag := time.Duration(*r.SecondsBehind) * time.Second
	if lag <= p.in.MaxLag {
		return
	}
	sev := SeverityWarning
	effect := "check_repl_delay is off for it, so it stays promotable"
	if c, ok := p.cfgByKey[i.Key]; ok && c.CheckReplDelay {
		sev, effect = SeverityError, "it would be refused as a new master"
	}
	delay := ""
	if r.SQLDelay > 0 {
		delay = fmt.Sprintf(" (MASTER_DELAY=%d)", r.SQLDelay)
	}
	p.add(sev, ProblemLagTooHigh, i.Key, "Seconds_Behind_Master=%d%s exceeds the limit of %s: %s",
		*r.SecondsBehind, delay, p.in.MaxLag, effect)
}
