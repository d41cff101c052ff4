package topology

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// The detector keeps its own small pools (one per instance, never piling
// probes up), so its statements take any *sql.DB, *sql.Conn or *sql.Tx
// rather than a *Conn.

// Replica status statements: the old name works on every MariaDB and on
// MySQL before 8.4; the new one on MariaDB >= 10.5 and MySQL >= 8.0.22.
const (
	showSlaveStatus   = "SHOW SLAVE STATUS"
	showReplicaStatus = "SHOW REPLICA STATUS"
	erParseError      = 1064 // ER_PARSE_ERROR: the server does not know the statement
)

// ProbeReplicaStatus runs the replica status statement and returns the first
// row by column name (nil when the server is not a replica), and the
// statement that worked, to pass back as stmt next time ("" tries the old
// name first and falls back to SHOW REPLICA STATUS on servers that dropped
// it).
func ProbeReplicaStatus(ctx context.Context, q queryer, stmt string) (map[string]sql.NullString, string, error) {
	if stmt == "" {
		stmt = showSlaveStatus
	}
	rows, err := q.QueryContext(ctx, stmt)
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == erParseError && stmt == showSlaveStatus {
		stmt = showReplicaStatus
		rows, err = q.QueryContext(ctx, stmt)
	}
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", stmt, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, stmt, fmt.Errorf("%s columns: %w", stmt, err)
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, stmt, fmt.Errorf("%s: %w", stmt, err)
		}
		return nil, stmt, nil
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, stmt, fmt.Errorf("%s scan: %w", stmt, err)
	}
	out := make(map[string]sql.NullString, len(cols))
	for i, c := range cols {
		out[c] = vals[i]
	}
	return out, stmt, nil
}

// rowQueryer is what *sql.Conn, *sql.DB and *sql.Tx share for one row.
type rowQueryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// ProbeMasterVersion is a master probe's first round trip: read_only,
// server_id and @@version (which names the GTID position variable, see
// PositionVariable).
func ProbeMasterVersion(ctx context.Context, q rowQueryer) (readOnly int, serverID uint32, version string, err error) {
	err = q.QueryRowContext(ctx, "SELECT @@global.read_only, @@global.server_id, @@version").Scan(&readOnly, &serverID, &version)
	return readOnly, serverID, version, err
}

// ProbeMasterPosition is a master probe once the position variable is
// known: read_only, server_id and the GTID position.
func ProbeMasterPosition(ctx context.Context, q rowQueryer, positionVar string) (readOnly int, serverID uint32, position string, err error) {
	var pos sql.NullString
	err = q.QueryRowContext(ctx, "SELECT @@global.read_only, @@global.server_id, @@global."+positionVar).Scan(&readOnly, &serverID, &pos)
	return readOnly, serverID, pos.String, err
}

// PositionVariable names the variable a probe reads the server's GTID
// position from, by its @@version.
func PositionVariable(version string) string {
	if strings.Contains(strings.ToLower(version), "mariadb") {
		return "gtid_binlog_pos"
	}
	return "gtid_executed"
}
