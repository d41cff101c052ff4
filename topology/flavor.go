package topology

import (
	"fmt"
	"strconv"
	"strings"
)

// Flavor tells which server family an instance belongs to: the families share
// the protocol but differ in replication SQL, variable names and GTIDs.
type Flavor int

// The flavors quorumha knows. The zero value is deliberately unknown so an
// unread Version is never mistaken for MySQL.
const (
	FlavorUnknown Flavor = iota
	MariaDB
	MySQL
)

// String names the flavor for logs and JSON.
func (f Flavor) String() string {
	switch f {
	case MariaDB:
		return "mariadb"
	case MySQL:
		return "mysql"
	default:
		return "unknown"
	}
}

// Version is a parsed server version. Dialect methods hang off it because the
// right statement depends on both flavor and release (MySQL renamed its
// replication statements between 8.0.22 and 8.4).
type Version struct {
	Major, Minor, Patch int
	Flavor              Flavor
	// Raw is @@version as the server reported it.
	Raw string
}

// ParseVersion parses @@version (and uses @@version_comment as a hint) into a
// Version. It accepts MariaDB's replication-protocol prefix "5.5.5-10.3.39-MariaDB",
// distribution suffixes ("-0+deb12u1", "-log") and Percona's "8.0.36-28".
func ParseVersion(versionString, versionComment string) (Version, error) {
	raw := strings.TrimSpace(versionString)
	s := raw
	mariadb := strings.Contains(strings.ToLower(raw), "mariadb") ||
		strings.Contains(strings.ToLower(versionComment), "mariadb")
	if mariadb && strings.HasPrefix(s, "5.5.5-") {
		s = strings.TrimPrefix(s, "5.5.5-")
	}
	// The numeric part ends at the first character that is neither digit nor dot.
	end := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if end >= 0 {
		s = s[:end]
	}
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return Version{}, fmt.Errorf("%w: %q", ErrBadVersion, raw)
	}
	nums := [3]int{}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return Version{}, fmt.Errorf("%w: %q", ErrBadVersion, raw)
		}
		nums[i] = n
	}
	v := Version{Major: nums[0], Minor: nums[1], Patch: nums[2], Flavor: MySQL, Raw: raw}
	if mariadb {
		v.Flavor = MariaDB
	}
	return v, nil
}

// String returns the raw version, or the numeric form when Raw is empty.
func (v Version) String() string {
	if v.Raw != "" {
		return v.Raw
	}
	return fmt.Sprintf("%d.%d.%d-%s", v.Major, v.Minor, v.Patch, v.Flavor)
}

// AtLeast reports whether v is major.minor.patch or newer (flavor ignored).
func (v Version) AtLeast(major, minor, patch int) bool {
	if v.Major != major {
		return v.Major > major
	}
	if v.Minor != minor {
		return v.Minor > minor
	}
	return v.Patch >= patch
}

// IsMariaDB is a shorthand for v.Flavor == MariaDB.
func (v Version) IsMariaDB() bool { return v.Flavor == MariaDB }

// mysqlReplicaTerms reports whether MySQL accepts START/STOP/SHOW/RESET REPLICA
// (8.0.22+). MySQL 8.4 removed the SLAVE forms, so this is not optional.
func (v Version) mysqlReplicaTerms() bool {
	return v.Flavor == MySQL && v.AtLeast(8, 0, 22)
}

// ShowReplicaStatusSQL returns the statement that shows the default replication
// channel's status. MariaDB's SHOW REPLICA STATUS (10.5.1+) still returns
// Slave_* columns, so the classic form is used there; multi-source MariaDB
// (SHOW ALL SLAVES STATUS) is out of scope: quorumha manages the default
// connection only.
func (v Version) ShowReplicaStatusSQL() string {
	if v.mysqlReplicaTerms() {
		return "SHOW REPLICA STATUS"
	}
	return "SHOW SLAVE STATUS"
}

// ShowReplicasSQL lists replicas that registered with report_host (SHOW
// REPLICAS on MySQL 8.0.22+, SHOW SLAVE HOSTS elsewhere).
func (v Version) ShowReplicasSQL() string {
	if v.mysqlReplicaTerms() {
		return "SHOW REPLICAS"
	}
	return "SHOW SLAVE HOSTS"
}

// ShowMasterStatusSQL returns the statement showing the current binlog file
// and position: SHOW BINARY LOG STATUS on MySQL 8.2+ (the old form is gone in
// 8.4), SHOW MASTER STATUS elsewhere.
func (v Version) ShowMasterStatusSQL() string {
	if v.Flavor == MySQL && v.AtLeast(8, 2, 0) {
		return "SHOW BINARY LOG STATUS"
	}
	return "SHOW MASTER STATUS"
}

// ReplicaThreads selects which replication threads an operation touches.
type ReplicaThreads int

// The thread selections. Both is the zero value because it is the safe default
// for START and STOP.
const (
	BothThreads ReplicaThreads = iota
	IOThread
	SQLThread
)

// String names the selection for logs.
func (t ReplicaThreads) String() string {
	switch t {
	case IOThread:
		return "io_thread"
	case SQLThread:
		return "sql_thread"
	default:
		return "both"
	}
}

func (t ReplicaThreads) clause() string {
	switch t {
	case IOThread:
		return " IO_THREAD"
	case SQLThread:
		return " SQL_THREAD"
	default:
		return ""
	}
}

// StopReplicaSQL returns STOP SLAVE / STOP REPLICA for the chosen threads.
func (v Version) StopReplicaSQL(threads ReplicaThreads) string {
	if v.mysqlReplicaTerms() {
		return "STOP REPLICA" + threads.clause()
	}
	return "STOP SLAVE" + threads.clause()
}

// StartReplicaSQL returns START SLAVE / START REPLICA for the chosen threads.
func (v Version) StartReplicaSQL(threads ReplicaThreads) string {
	if v.mysqlReplicaTerms() {
		return "START REPLICA" + threads.clause()
	}
	return "START SLAVE" + threads.clause()
}

// ResetReplicaAllSQL returns the statement that forgets the replication
// configuration entirely, used on a promoted master.
func (v Version) ResetReplicaAllSQL() string {
	if v.mysqlReplicaTerms() {
		return "RESET REPLICA ALL"
	}
	return "RESET SLAVE ALL"
}

// ReadOnlySQL returns the statement(s) that turn writes off or on. MySQL gets
// super_read_only, which also stops SUPER sessions (MHA's online switch bug);
// turning it off turns read_only off too. MariaDB has no super_read_only: in
// 10.11 read_only does not stop users holding READ_ONLY ADMIN, which SUPER and
// ALL PRIVILEGES include (MariaDB 11.0.1 separated them, MDEV-29596), so
// fencing a MariaDB master must also kill its client connections.
func (v Version) ReadOnlySQL(on bool) []string {
	if v.Flavor == MySQL && v.AtLeast(5, 7, 8) {
		if on {
			return []string{"SET GLOBAL read_only = 1", "SET GLOBAL super_read_only = 1"}
		}
		return []string{"SET GLOBAL super_read_only = 0", "SET GLOBAL read_only = 0"}
	}
	if on {
		return []string{"SET GLOBAL read_only = 1"}
	}
	return []string{"SET GLOBAL read_only = 0"}
}

// SemiSyncMasterSQL switches the master side of semi-synchronous
// replication: built into MariaDB (rpl_semi_sync_master_enabled), a plugin
// on MySQL, renamed rpl_semi_sync_source_enabled in 8.0.26.
func (v Version) SemiSyncMasterSQL(on bool) string {
	val := 0
	if on {
		val = 1
	}
	name := "rpl_semi_sync_master_enabled"
	if v.Flavor == MySQL && v.AtLeast(8, 0, 26) {
		name = "rpl_semi_sync_source_enabled"
	}
	return fmt.Sprintf("SET GLOBAL %s = %d", name, val)
}

// GTIDVariables lists the global variables holding this flavor's GTID state,
// read by Conn.Read.
func (v Version) GTIDVariables() []string {
	if v.Flavor == MariaDB {
		return []string{"gtid_binlog_pos", "gtid_binlog_state", "gtid_slave_pos", "gtid_current_pos",
			"gtid_domain_id", "gtid_strict_mode"}
	}
	return []string{"gtid_executed", "gtid_purged", "gtid_mode", "enforce_gtid_consistency"}
}

// sourcePosWaitFunc names the file/position wait function: MASTER_POS_WAIT was
// deprecated for SOURCE_POS_WAIT in MySQL 8.0.26.
func (v Version) sourcePosWaitFunc() string {
	if v.Flavor == MySQL && v.AtLeast(8, 0, 26) {
		return "SOURCE_POS_WAIT"
	}
	return "MASTER_POS_WAIT"
}
