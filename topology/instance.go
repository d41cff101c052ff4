package topology

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SemiSyncState is an instance's semi-synchronous replication state. MariaDB
// 10.3+ has it built in (rpl_semi_sync_master_*/slave_*); MySQL needs the
// plugin and renamed it rpl_semi_sync_source_*/replica_* in 8.0.26. Enabled is
// the configuration, Active the runtime status (a master falls back to async
// after rpl_semi_sync_master_timeout without acknowledgement).
type SemiSyncState struct {
	MasterEnabled, MasterActive   bool
	ReplicaEnabled, ReplicaActive bool
	// MasterClients is how many semi-sync replicas are connected.
	MasterClients int
}

// Instance is one server's state as read at ReadAt. It is a plain value for
// the detector and recovery to decide on; nothing in it is live.
type Instance struct {
	// Key is the address quorumha dialed ("host:port"); it identifies the
	// instance in a Topology.
	Key        string
	Hostname   string // @@hostname
	Port       int    // @@port
	ReportHost string // @@report_host, how replicas announce themselves
	ReportPort int

	Version      Version
	ServerID     uint32
	ServerUUID   string // MySQL only
	GTIDDomainID uint32 // MariaDB only
	// GTIDStrictMode is MariaDB's gtid_strict_mode, which makes sequence
	// numbers comparable within a domain.
	GTIDStrictMode bool

	ReadOnly        bool
	SuperReadOnly   bool // MySQL only; always false on MariaDB
	LogBin          bool
	LogSlaveUpdates bool
	BinlogFormat    string
	// GTIDMode and EnforceGTIDConsistency are MySQL's; MariaDB always logs GTIDs.
	GTIDMode               string
	EnforceGTIDConsistency string

	GTIDExecuted    string // MySQL gtid_executed, canonical
	GTIDPurged      string // MySQL gtid_purged, canonical
	GTIDBinlogPos   string // MariaDB
	GTIDBinlogState string // MariaDB
	GTIDSlavePos    string // MariaDB
	GTIDCurrentPos  string // MariaDB

	// MasterStatus is this server's own binlog position (nil with log_bin off).
	MasterStatus *BinlogCoord
	SemiSync     SemiSyncState
	// Replica is nil when the instance has no replication configured.
	Replica *ReplicaStatus

	RelayLogPurge bool
	// ReplicationFilters come from the replicate_* variables on MariaDB and
	// from the replica status on MySQL.
	ReplicationFilters ReplicationFilters
	ParallelWorkers    int
	SyncBinlog         int
	// InnoDBFlushLogAtTrxCommit tells how durable the instance is (1 = safe).
	InnoDBFlushLogAtTrxCommit int
	Uptime                    time.Duration
	ReadAt                    time.Time
}

// IsReplica reports whether replication is configured (threads may be stopped).
func (i *Instance) IsReplica() bool { return i.Replica != nil }

// Writable reports whether clients without special privileges can write.
func (i *Instance) Writable() bool { return !i.ReadOnly }

// MasterKey is the replica's master as "host:port", or "" for a non-replica.
func (i *Instance) MasterKey() string {
	if i.Replica == nil {
		return ""
	}
	return joinHostPort(i.Replica.MasterHost, i.Replica.MasterPort)
}

// GTIDEnabled reports whether positions can be expressed as GTIDs: always on
// MariaDB (every event carries one), gtid_mode=ON on MySQL.
func (i *Instance) GTIDEnabled() bool {
	if i.Version.Flavor == MariaDB {
		return true
	}
	return strings.EqualFold(i.GTIDMode, "ON")
}

// BinlogPosition is how far this server's own binlog goes: the target
// replicas wait for in a switchover. MySQL: gtid_executed; MariaDB:
// gtid_binlog_pos; without GTIDs the SHOW MASTER STATUS coordinate.
func (i *Instance) BinlogPosition() (Position, error) {
	switch {
	case i.Version.Flavor == MariaDB && i.GTIDBinlogPos != "":
		p, err := ParseMariaDBPos(i.GTIDBinlogPos)
		return MariaDBGTIDPosition(p), wrapInstance(i.Key, err)
	case i.Version.Flavor == MySQL && i.GTIDEnabled():
		s, err := ParseGTIDSet(i.GTIDExecuted)
		return MySQLGTIDPosition(s), wrapInstance(i.Key, err)
	case i.MasterStatus != nil:
		return FilePosition(*i.MasterStatus), nil
	}
	return Position{}, fmt.Errorf("%s: %w: no binlog position (log_bin off?)", i.Key, ErrIncomparable)
}

// ExecutedPosition is what this instance has applied, for ordering replicas
// of one master. MySQL: gtid_executed; MariaDB: gtid_current_pos (which also
// counts local writes, so errant ones show up as Ahead/Diverged); a file/pos
// replica: its SQL thread's coordinate in the master's binlog.
func (i *Instance) ExecutedPosition() (Position, error) {
	switch {
	case i.Version.Flavor == MariaDB && (i.Replica == nil || i.Replica.UsesGTID()):
		p, err := ParseMariaDBPos(i.GTIDCurrentPos)
		return MariaDBGTIDPosition(p), wrapInstance(i.Key, err)
	case i.Version.Flavor == MySQL && i.GTIDEnabled():
		s, err := ParseGTIDSet(i.GTIDExecuted)
		return MySQLGTIDPosition(s), wrapInstance(i.Key, err)
	case i.Replica != nil:
		return FilePosition(i.Replica.ExecCoord()), nil
	}
	return i.BinlogPosition()
}

// ReadPosition is what a replica's IO thread has received from its master
// (applied or not): MariaDB Gtid_IO_Pos, MySQL Retrieved ∪ Executed, or
// the read coordinate. MHA picks the "latest" replica by this.
func (i *Instance) ReadPosition() (Position, error) {
	if i.Replica == nil {
		return Position{}, fmt.Errorf("%s: %w", i.Key, ErrNotReplica)
	}
	r := i.Replica
	switch {
	case i.Version.Flavor == MariaDB && r.UsesGTID():
		p, err := ParseMariaDBPos(r.GTIDIOPos)
		if err == nil && len(p) == 0 {
			// Nothing received since START SLAVE: fall back to what is applied.
			p, err = ParseMariaDBPos(i.GTIDSlavePos)
		}
		return MariaDBGTIDPosition(p), wrapInstance(i.Key, err)
	case i.Version.Flavor == MySQL && i.GTIDEnabled():
		got, err := ParseGTIDSet(r.RetrievedGTIDSet)
		if err != nil {
			return Position{}, wrapInstance(i.Key, err)
		}
		done, err := ParseGTIDSet(i.GTIDExecuted)
		return MySQLGTIDPosition(got.Union(done)), wrapInstance(i.Key, err)
	}
	return FilePosition(r.ReadCoord()), nil
}

func wrapInstance(key string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", key, err)
}

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}

// instanceVariables returns the global variables Read asks for, for both
// flavors. They are fetched with SHOW GLOBAL VARIABLES WHERE Variable_name IN (...),
// which silently skips names a server lacks: MHA died selecting
// @@global.super_read_only on MariaDB.
func instanceVariables() []string {
	return []string{
		"version", "version_comment", "server_id", "server_uuid", "hostname", "port",
		"report_host", "report_port", "read_only", "super_read_only", "log_bin",
		"log_slave_updates", "log_replica_updates", "binlog_format",
		"gtid_mode", "enforce_gtid_consistency", "gtid_executed", "gtid_purged",
		"gtid_binlog_pos", "gtid_binlog_state", "gtid_slave_pos", "gtid_current_pos",
		"gtid_domain_id", "gtid_strict_mode", "relay_log_purge",
		"rpl_semi_sync_master_enabled", "rpl_semi_sync_slave_enabled",
		"rpl_semi_sync_source_enabled", "rpl_semi_sync_replica_enabled",
		"replicate_do_db", "replicate_ignore_db", "replicate_do_table",
		"replicate_ignore_table", "replicate_wild_do_table", "replicate_wild_ignore_table",
		"replicate_do_domain_ids", "replicate_ignore_domain_ids",
		"slave_parallel_threads", "slave_parallel_workers", "replica_parallel_workers",
		"sync_binlog", "innodb_flush_log_at_trx_commit",
	}
}

// instanceStatus returns the global status counters Read asks for.
func instanceStatus() []string {
	return []string{
		"Uptime",
		"Rpl_semi_sync_master_status", "Rpl_semi_sync_slave_status",
		"Rpl_semi_sync_source_status", "Rpl_semi_sync_replica_status",
		"Rpl_semi_sync_master_clients", "Rpl_semi_sync_source_clients",
	}
}

// buildInstance assembles an Instance from what Read fetched. It is pure so it
// can be tested on recorded SHOW outputs of servers not installed here.
// Variable and status names are matched case-insensitively.
func buildInstance(key string, vars, status map[string]string, replica *ReplicaStatus,
	master *BinlogCoord, readAt time.Time) (*Instance, error) {
	v := lowerKeys(vars)
	st := lowerKeys(status)
	ver, err := ParseVersion(v["version"], v["version_comment"])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	var bad []string
	num := func(m map[string]string, name string) uint64 {
		s, ok := m[name]
		if !ok || s == "" {
			return 0
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s=%q", name, s))
		}
		return n
	}
	inst := &Instance{
		Key:                       key,
		Hostname:                  v["hostname"],
		Port:                      int(num(v, "port")),
		ReportHost:                v["report_host"],
		ReportPort:                int(num(v, "report_port")),
		Version:                   ver,
		ServerID:                  uint32(num(v, "server_id")),
		ServerUUID:                v["server_uuid"],
		GTIDDomainID:              uint32(num(v, "gtid_domain_id")),
		GTIDStrictMode:            parseBool(v["gtid_strict_mode"]),
		ReadOnly:                  parseBool(v["read_only"]),
		SuperReadOnly:             ver.Flavor == MySQL && parseBool(v["super_read_only"]),
		LogBin:                    parseBool(v["log_bin"]),
		LogSlaveUpdates:           parseBool(firstOf(v, "log_replica_updates", "log_slave_updates")),
		BinlogFormat:              v["binlog_format"],
		GTIDMode:                  v["gtid_mode"],
		EnforceGTIDConsistency:    v["enforce_gtid_consistency"],
		GTIDExecuted:              normalizeGTIDText(v["gtid_executed"]),
		GTIDPurged:                normalizeGTIDText(v["gtid_purged"]),
		GTIDBinlogPos:             v["gtid_binlog_pos"],
		GTIDBinlogState:           v["gtid_binlog_state"],
		GTIDSlavePos:              v["gtid_slave_pos"],
		GTIDCurrentPos:            v["gtid_current_pos"],
		MasterStatus:              master,
		Replica:                   replica,
		RelayLogPurge:             parseBool(v["relay_log_purge"]),
		ParallelWorkers:           int(num(v, firstKey(v, "replica_parallel_workers", "slave_parallel_workers", "slave_parallel_threads"))),
		SyncBinlog:                int(num(v, "sync_binlog")),
		InnoDBFlushLogAtTrxCommit: int(num(v, "innodb_flush_log_at_trx_commit")),
		Uptime:                    time.Duration(num(st, "uptime")) * time.Second,
		ReadAt:                    readAt,
		SemiSync: SemiSyncState{
			MasterEnabled:  parseBool(firstOf(v, "rpl_semi_sync_source_enabled", "rpl_semi_sync_master_enabled")),
			ReplicaEnabled: parseBool(firstOf(v, "rpl_semi_sync_replica_enabled", "rpl_semi_sync_slave_enabled")),
			MasterActive:   parseBool(firstOf(st, "rpl_semi_sync_source_status", "rpl_semi_sync_master_status")),
			ReplicaActive:  parseBool(firstOf(st, "rpl_semi_sync_replica_status", "rpl_semi_sync_slave_status")),
			MasterClients:  int(num(st, firstKey(st, "rpl_semi_sync_source_clients", "rpl_semi_sync_master_clients"))),
		},
	}
	if ver.Flavor == MariaDB {
		inst.ReplicationFilters = ReplicationFilters{
			DoDB:            splitList(v["replicate_do_db"]),
			IgnoreDB:        splitList(v["replicate_ignore_db"]),
			DoTable:         splitList(v["replicate_do_table"]),
			IgnoreTable:     splitList(v["replicate_ignore_table"]),
			WildDoTable:     splitList(v["replicate_wild_do_table"]),
			WildIgnoreTable: splitList(v["replicate_wild_ignore_table"]),
			DoDomainIDs:     splitList(v["replicate_do_domain_ids"]),
			IgnoreDomainIDs: splitList(v["replicate_ignore_domain_ids"]),
		}
	} else if replica != nil {
		inst.ReplicationFilters = replica.Filters
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s: %w: %s", key, ErrBadStatus, strings.Join(bad, ", "))
	}
	return inst, nil
}

func lowerKeys(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}

// firstKey returns the first of names present in m ("" if none).
func firstKey(m map[string]string, names ...string) string {
	for _, n := range names {
		if _, ok := m[n]; ok {
			return n
		}
	}
	return ""
}

func firstOf(m map[string]string, names ...string) string { return m[firstKey(m, names...)] }
