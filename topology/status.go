package topology

import (
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// IOState is the replication IO (receiver) thread's running state.
type IOState int

// IO thread states as SHOW SLAVE/REPLICA STATUS reports them. Connecting means
// the thread runs but has no working connection to its master, which is what
// a replica of a dead master shows.
const (
	IONo IOState = iota
	IOYes
	IOConnecting
)

// String returns the server's spelling.
func (s IOState) String() string {
	switch s {
	case IOYes:
		return "Yes"
	case IOConnecting:
		return "Connecting"
	default:
		return "No"
	}
}

// ReplicationFilters are the replicate-* rules of a replica. Failover must
// not promote a replica whose filters differ from its peers (MHA's
// check_repl_filter), so they are compared with Equal.
type ReplicationFilters struct {
	DoDB, IgnoreDB               []string
	DoTable, IgnoreTable         []string
	WildDoTable, WildIgnoreTable []string
	DoDomainIDs, IgnoreDomainIDs []string // MariaDB only
}

// IsEmpty reports whether no filter is configured.
func (f ReplicationFilters) IsEmpty() bool {
	return len(f.DoDB)+len(f.IgnoreDB)+len(f.DoTable)+len(f.IgnoreTable)+
		len(f.WildDoTable)+len(f.WildIgnoreTable)+len(f.DoDomainIDs)+len(f.IgnoreDomainIDs) == 0
}

// Equal compares filters ignoring the order of entries.
func (f ReplicationFilters) Equal(o ReplicationFilters) bool {
	same := func(a, b []string) bool {
		a, b = slices.Clone(a), slices.Clone(b)
		slices.Sort(a)
		slices.Sort(b)
		return slices.Equal(a, b)
	}
	return same(f.DoDB, o.DoDB) && same(f.IgnoreDB, o.IgnoreDB) &&
		same(f.DoTable, o.DoTable) && same(f.IgnoreTable, o.IgnoreTable) &&
		same(f.WildDoTable, o.WildDoTable) && same(f.WildIgnoreTable, o.WildIgnoreTable) &&
		same(f.DoDomainIDs, o.DoDomainIDs) && same(f.IgnoreDomainIDs, o.IgnoreDomainIDs)
}

// splitList splits a server's comma-separated list value.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// ReplicaStatus is one row of SHOW SLAVE STATUS / SHOW REPLICA STATUS for the
// default channel, decoded independently of flavor and of column naming.
type ReplicaStatus struct {
	IOThreadState      string // Slave_IO_State, free text
	MasterHost         string
	MasterPort         int
	MasterUser         string
	ConnectRetry       int
	MasterServerID     uint32
	MasterUUID         string // MySQL only
	IORunning          IOState
	SQLRunning         bool
	MasterLogFile      string
	ReadMasterLogPos   uint64
	RelayMasterLogFile string
	ExecMasterLogPos   uint64
	RelayLogFile       string
	RelayLogPos        uint64
	RelayLogSpace      uint64
	// SecondsBehind is nil when the server reports NULL (SQL or IO thread not
	// running, or not connected).
	SecondsBehind *int64
	LastIOErrno   int
	LastIOError   string
	LastSQLErrno  int
	LastSQLError  string
	// UsingGTID is MariaDB's Using_Gtid: "No", "Slave_Pos" or "Current_Pos".
	UsingGTID string
	// GTIDIOPos is MariaDB's Gtid_IO_Pos: what the IO thread has received.
	GTIDIOPos string
	// AutoPosition is MySQL's Auto_Position (GTID auto-positioning).
	AutoPosition     bool
	RetrievedGTIDSet string // MySQL only, normalised by ParseGTIDSet when valid
	ExecutedGTIDSet  string // MySQL only, normalised by ParseGTIDSet when valid
	Filters          ReplicationFilters
	SQLDelay         int64
	// SQLRemainingDelay is nil unless the SQL thread is waiting out SQL_Delay.
	SQLRemainingDelay    *int64
	SlaveSQLRunningState string
	ParallelMode         string // MariaDB only
	ChannelName          string // MySQL only
}

// UsesGTID reports whether the replica positions itself by GTID (MariaDB
// Using_Gtid other than No, or MySQL auto-position).
func (r *ReplicaStatus) UsesGTID() bool {
	return r.AutoPosition || (r.UsingGTID != "" && !strings.EqualFold(r.UsingGTID, "No"))
}

// Running reports whether both threads run and the IO thread is connected.
func (r *ReplicaStatus) Running() bool { return r.IORunning == IOYes && r.SQLRunning }

// ReadCoord is how far the IO thread has read the master's binlog.
func (r *ReplicaStatus) ReadCoord() BinlogCoord {
	return BinlogCoord{File: r.MasterLogFile, Pos: r.ReadMasterLogPos}
}

// ExecCoord is how far the SQL thread has applied, in master binlog terms.
func (r *ReplicaStatus) ExecCoord() BinlogCoord {
	return BinlogCoord{File: r.RelayMasterLogFile, Pos: r.ExecMasterLogPos}
}

// RelayLogApplied reports whether the SQL thread has executed everything the
// IO thread fetched, by coordinates. It does not wait for in-flight parallel
// workers beyond what Exec_Master_Log_Pos shows, which is committed work.
func (r *ReplicaStatus) RelayLogApplied() bool {
	return r.MasterLogFile == r.RelayMasterLogFile && r.ReadMasterLogPos == r.ExecMasterLogPos
}

// normalizeColumn maps both naming generations to one key: MySQL 8.0.22
// renamed Master/Slave to Source/Replica as whole words (Read_Source_Log_Pos,
// Replica_SQL_Running_State), while Replicate_* columns kept their names.
func normalizeColumn(name string) string {
	toks := strings.Split(strings.ToLower(name), "_")
	for i, t := range toks {
		switch t {
		case "source":
			toks[i] = "master"
		case "replica":
			toks[i] = "slave"
		}
	}
	return strings.Join(toks, "_")
}

// statusRow is a decoded row keyed by normalized column name.
type statusRow map[string]sql.NullString

func newStatusRow(cols []string, vals []sql.NullString) (statusRow, error) {
	if len(cols) != len(vals) {
		return nil, fmt.Errorf("%w: %d columns, %d values", ErrBadStatus, len(cols), len(vals))
	}
	row := make(statusRow, len(cols))
	for i, c := range cols {
		row[normalizeColumn(c)] = vals[i]
	}
	return row, nil
}

func (r statusRow) str(col string) string { return r[col].String }

func (r statusRow) uint(col string, errs *[]string) uint64 {
	v, ok := r[col]
	if !ok || !v.Valid || v.String == "" {
		return 0
	}
	n, err := strconv.ParseUint(strings.TrimSpace(v.String), 10, 64)
	if err != nil {
		*errs = append(*errs, fmt.Sprintf("%s=%q", col, v.String))
	}
	return n
}

func (r statusRow) int(col string, errs *[]string) int64 {
	v, ok := r[col]
	if !ok || !v.Valid || v.String == "" {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v.String), 10, 64)
	if err != nil {
		*errs = append(*errs, fmt.Sprintf("%s=%q", col, v.String))
	}
	return n
}

func (r statusRow) nullInt(col string, errs *[]string) *int64 {
	v, ok := r[col]
	if !ok || !v.Valid || v.String == "" {
		return nil
	}
	n := r.int(col, errs)
	return &n
}

// parseBool reads Yes/No, 1/0 and ON/OFF spellings.
func parseBool(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "yes", "1", "on", "true":
		return true
	}
	return false
}

// ParseReplicaStatus decodes one row of SHOW SLAVE STATUS or SHOW REPLICA
// STATUS given its column names and values (NULL as an invalid NullString).
// It accepts MariaDB, MySQL 5.7 and MySQL 8.0.22+ column names; unknown
// columns are ignored so newer servers keep working.
func ParseReplicaStatus(cols []string, vals []sql.NullString) (*ReplicaStatus, error) {
	row, err := newStatusRow(cols, vals)
	if err != nil {
		return nil, err
	}
	if _, ok := row["master_host"]; !ok {
		return nil, fmt.Errorf("%w: no Master_Host/Source_Host column", ErrBadStatus)
	}
	var bad []string
	rs := &ReplicaStatus{
		IOThreadState:        row.str("slave_io_state"),
		MasterHost:           row.str("master_host"),
		MasterPort:           int(row.uint("master_port", &bad)),
		MasterUser:           row.str("master_user"),
		ConnectRetry:         int(row.uint("connect_retry", &bad)),
		MasterServerID:       uint32(row.uint("master_server_id", &bad)),
		MasterUUID:           row.str("master_uuid"),
		SQLRunning:           parseBool(row.str("slave_sql_running")),
		MasterLogFile:        row.str("master_log_file"),
		ReadMasterLogPos:     row.uint("read_master_log_pos", &bad),
		RelayMasterLogFile:   row.str("relay_master_log_file"),
		ExecMasterLogPos:     row.uint("exec_master_log_pos", &bad),
		RelayLogFile:         row.str("relay_log_file"),
		RelayLogPos:          row.uint("relay_log_pos", &bad),
		RelayLogSpace:        row.uint("relay_log_space", &bad),
		SecondsBehind:        row.nullInt("seconds_behind_master", &bad),
		LastIOErrno:          int(row.int("last_io_errno", &bad)),
		LastIOError:          row.str("last_io_error"),
		LastSQLErrno:         int(row.int("last_sql_errno", &bad)),
		LastSQLError:         row.str("last_sql_error"),
		UsingGTID:            row.str("using_gtid"),
		GTIDIOPos:            row.str("gtid_io_pos"),
		AutoPosition:         parseBool(row.str("auto_position")),
		RetrievedGTIDSet:     normalizeGTIDText(row.str("retrieved_gtid_set")),
		ExecutedGTIDSet:      normalizeGTIDText(row.str("executed_gtid_set")),
		SQLDelay:             row.int("sql_delay", &bad),
		SQLRemainingDelay:    row.nullInt("sql_remaining_delay", &bad),
		SlaveSQLRunningState: row.str("slave_sql_running_state"),
		ParallelMode:         row.str("parallel_mode"),
		ChannelName:          row.str("channel_name"),
		Filters: ReplicationFilters{
			DoDB:            splitList(row.str("replicate_do_db")),
			IgnoreDB:        splitList(row.str("replicate_ignore_db")),
			DoTable:         splitList(row.str("replicate_do_table")),
			IgnoreTable:     splitList(row.str("replicate_ignore_table")),
			WildDoTable:     splitList(row.str("replicate_wild_do_table")),
			WildIgnoreTable: splitList(row.str("replicate_wild_ignore_table")),
			DoDomainIDs:     splitList(row.str("replicate_do_domain_ids")),
			IgnoreDomainIDs: splitList(row.str("replicate_ignore_domain_ids")),
		},
	}
	switch strings.ToLower(strings.TrimSpace(row.str("slave_io_running"))) {
	case "yes":
		rs.IORunning = IOYes
	case "no", "":
		rs.IORunning = IONo
	default:
		// "Preparing" (MariaDB, thread starting) and any future transient
		// state: running, not yet connected.
		rs.IORunning = IOConnecting
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrBadStatus, strings.Join(bad, ", "))
	}
	return rs, nil
}

// normalizeGTIDText returns the canonical form of a MySQL GTID set, or the
// text with whitespace removed when it does not parse (the raw value is still
// useful in a report).
func normalizeGTIDText(s string) string {
	if s == "" {
		return ""
	}
	if set, err := ParseGTIDSet(s); err == nil {
		return set.String()
	}
	return strings.Join(strings.Fields(s), "")
}
