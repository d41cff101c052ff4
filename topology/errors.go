// Package topology is quorumha's model of MySQL and MariaDB instances: it reads
// their state, speaks each flavor's SQL dialect, does GTID arithmetic and
// discovers replication topologies. It changes instances only when asked and
// decides nothing: choosing what to do is the detector's and recovery's job.
package topology

import "errors"

// Sentinel errors of the topology package. Callers match them with errors.Is;
// every returned error wraps one of them or a driver error, and names the
// instance it concerns.
var (
	// ErrBadVersion means a server version string could not be parsed.
	ErrBadVersion = errors.New("topology: unparsable server version")
	// ErrBadGTID means a GTID set or MariaDB GTID position could not be parsed.
	ErrBadGTID = errors.New("topology: malformed GTID")
	// ErrBadCoord means a binlog file/position coordinate could not be parsed.
	ErrBadCoord = errors.New("topology: malformed binlog coordinate")
	// ErrIncomparable means two positions cannot be ordered: different kinds
	// (GTID vs file/pos, MySQL vs MariaDB) or binlogs with different base names.
	ErrIncomparable = errors.New("topology: positions are not comparable")
	// ErrBadStatus means a SHOW ... STATUS row could not be decoded.
	ErrBadStatus = errors.New("topology: malformed status row")
	// ErrNotReplica means the instance has no replication configured.
	ErrNotReplica = errors.New("topology: instance is not a replica")
	// ErrWaitTimeout means a wait for a replication position ran out of time.
	ErrWaitTimeout = errors.New("topology: timed out waiting for position")
	// ErrReplicationStopped means a wait could not complete because the
	// replication SQL (applier) thread is not running.
	ErrReplicationStopped = errors.New("topology: replication SQL thread not running")
	// ErrBadOptions means a caller passed inconsistent operation options.
	ErrBadOptions = errors.New("topology: invalid options")
	// ErrNotConfigured means an address is not one of the cluster's
	// configured instances, so quorumha does not log in to it.
	ErrNotConfigured = errors.New("topology: not a configured instance")
)
