package topology

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ReplicaHeartbeat is what a replica's IO thread has received from its
// master besides events: a master sends a heartbeat after every heartbeat
// period without binlog events, so on a live link the received position or
// the heartbeat count moves at least once per period.
type ReplicaHeartbeat struct {
	// Received is the number of heartbeats received (since the IO thread
	// last started, or the server started).
	Received uint64
	// Period is the replica's MASTER_HEARTBEAT_PERIOD; 0 means off.
	Period time.Duration
	// Last is when the last heartbeat arrived (MySQL only; zero when
	// unknown or none yet).
	Last time.Time
}

// Heartbeat statements. MariaDB keeps the default connection's figures in
// global status variables (its SHOW SLAVE STATUS lacks them; SHOW ALL
// SLAVES STATUS has them per connection); MySQL in performance_schema, per
// channel (the default channel is ”).
const (
	mariaDBHeartbeatSQL = "SHOW GLOBAL STATUS WHERE Variable_name IN ('Slave_received_heartbeats', 'Slave_heartbeat_period')"
	mysqlHeartbeatSQL   = "SELECT s.COUNT_RECEIVED_HEARTBEATS, s.LAST_HEARTBEAT_TIMESTAMP, c.HEARTBEAT_INTERVAL " +
		"FROM performance_schema.replication_connection_status s " +
		"JOIN performance_schema.replication_connection_configuration c ON c.CHANNEL_NAME = s.CHANNEL_NAME " +
		"WHERE s.CHANNEL_NAME = ''"
)

// ReplicaHeartbeatSQL is the statement that reads a replica's heartbeats.
func ReplicaHeartbeatSQL(mariadb bool) string {
	if mariadb {
		return mariaDBHeartbeatSQL
	}
	return mysqlHeartbeatSQL
}

// ParseReplicaHeartbeat decodes the result of ReplicaHeartbeatSQL. ok is
// false when the result holds no heartbeat count (not a replica; MySQL
// without the default channel).
func ParseReplicaHeartbeat(mariadb bool, cols []string, rows [][]sql.NullString) (hb ReplicaHeartbeat, ok bool, err error) {
	if mariadb {
		return parseMariaDBHeartbeat(rows)
	}
	if len(rows) == 0 {
		return ReplicaHeartbeat{}, false, nil
	}
	if len(cols) != 3 || len(rows[0]) != 3 {
		return ReplicaHeartbeat{}, false, fmt.Errorf("%w: heartbeat row of %d columns, want 3", ErrBadStatus, len(cols))
	}
	row := rows[0]
	if !row[0].Valid {
		return ReplicaHeartbeat{}, false, nil
	}
	if hb.Received, err = strconv.ParseUint(strings.TrimSpace(row[0].String), 10, 64); err != nil {
		return ReplicaHeartbeat{}, false, fmt.Errorf("%w: COUNT_RECEIVED_HEARTBEATS=%q", ErrBadStatus, row[0].String)
	}
	if hb.Period, err = parseSeconds(row[2]); err != nil {
		return ReplicaHeartbeat{}, false, fmt.Errorf("%w: HEARTBEAT_INTERVAL=%q", ErrBadStatus, row[2].String)
	}
	if ts := strings.TrimSpace(row[1].String); row[1].Valid && ts != "" && !strings.HasPrefix(ts, "0000-00-00") {
		// performance_schema timestamps are the server's local time without
		// a zone; taken as UTC, they serve for display only.
		if t, err := time.Parse("2006-01-02 15:04:05.999999", ts); err == nil {
			hb.Last = t
		}
	}
	return hb, true, nil
}

func parseMariaDBHeartbeat(rows [][]sql.NullString) (ReplicaHeartbeat, bool, error) {
	var hb ReplicaHeartbeat
	var haveCount bool
	for _, r := range rows {
		if len(r) < 2 {
			return ReplicaHeartbeat{}, false, fmt.Errorf("%w: status row of %d columns, want 2", ErrBadStatus, len(r))
		}
		switch strings.ToLower(r[0].String) {
		case "slave_received_heartbeats":
			n, err := strconv.ParseUint(strings.TrimSpace(r[1].String), 10, 64)
			if err != nil {
				return ReplicaHeartbeat{}, false, fmt.Errorf("%w: Slave_received_heartbeats=%q", ErrBadStatus, r[1].String)
			}
			hb.Received, haveCount = n, true
		case "slave_heartbeat_period":
			p, err := parseSeconds(r[1])
			if err != nil {
				return ReplicaHeartbeat{}, false, fmt.Errorf("%w: Slave_heartbeat_period=%q", ErrBadStatus, r[1].String)
			}
			hb.Period = p
		}
	}
	return hb, haveCount, nil
}

// parseSeconds reads a decimal number of seconds ("1.000", "30"); NULL or
// "" is 0.
func parseSeconds(v sql.NullString) (time.Duration, error) {
	s := strings.TrimSpace(v.String)
	if !v.Valid || s == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("not a number of seconds: %q", s)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// ReadReplicaHeartbeat reads a replica's heartbeats on db (any *sql.DB,
// *sql.Conn or *sql.Tx). mariadb selects the dialect.
func ReadReplicaHeartbeat(ctx context.Context, db interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}, mariadb bool) (ReplicaHeartbeat, bool, error) {
	cols, rows, err := queryTable(ctx, db, ReplicaHeartbeatSQL(mariadb))
	if err != nil {
		return ReplicaHeartbeat{}, false, fmt.Errorf("read heartbeats: %w", err)
	}
	return ParseReplicaHeartbeat(mariadb, cols, rows)
}

// CheckDetectionSettings returns check-repl's warnings, each with the
// statement to run, when a replica would notice a vanished
// master late: a heartbeat period above twice want (the controllers'
// replica view waits for two periods without events or heartbeats), or a
// slave_net_timeout above maxNetTimeout (the IO thread says Yes until it
// passes; MariaDB's default is 60 s). Zero want or maxNetTimeout skips
// that check.
func CheckDetectionSettings(period, netTimeout, want, maxNetTimeout time.Duration, mariadb bool) []string {
	var out []string
	secs := func(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) }
	if want > 0 && (period == 0 || period > 2*want) {
		kw, stop, start := "MASTER_HEARTBEAT_PERIOD", "STOP SLAVE", "START SLAVE"
		if !mariadb {
			kw, stop, start = "SOURCE_HEARTBEAT_PERIOD", "STOP REPLICA", "START REPLICA"
		}
		change := "CHANGE MASTER TO "
		if !mariadb {
			change = "CHANGE REPLICATION SOURCE TO "
		}
		have := "off"
		if period > 0 {
			have = period.String()
		}
		out = append(out, fmt.Sprintf("heartbeat period %s is above 2 x detector.replica_heartbeat (%s): "+
			"a vanished master is noticed by this replica only after %s; run: %s; %s%s = %s; %s",
			have, want, stallWait(period, netTimeout), stop, change, kw, secs(want), start))
	}
	if maxNetTimeout > 0 && netTimeout > maxNetTimeout {
		out = append(out, fmt.Sprintf("slave_net_timeout %s is above %s: the IO thread reports a vanished master "+
			"as connected that long (failover then relies on heartbeats and agents); run: SET GLOBAL slave_net_timeout = %s "+
			"(and in the server's config)", netTimeout, maxNetTimeout, secs(maxNetTimeout)))
	}
	return out
}

func stallWait(period, netTimeout time.Duration) string {
	if period > 0 {
		return (2 * period).String()
	}
	return "slave_net_timeout (" + netTimeout.String() + ")"
}

// ReadDetectionSettings reads what decides how fast a replica notices a
// vanished master: its heartbeat period (0 when off or unknown) and
// slave_net_timeout.
func (c *Conn) ReadDetectionSettings(ctx context.Context) (period, netTimeout time.Duration, err error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	v := c.Version()
	hb, _, err := ReadReplicaHeartbeat(ctx, c.db, v.IsMariaDB())
	if err != nil {
		return 0, 0, err
	}
	vars, err := queryNameValues(ctx, c.db, "SHOW GLOBAL VARIABLES", []string{"slave_net_timeout", "replica_net_timeout"})
	if err != nil {
		return 0, 0, fmt.Errorf("read slave_net_timeout: %w", err)
	}
	raw := vars["replica_net_timeout"]
	if raw == "" {
		raw = vars["slave_net_timeout"]
	}
	secs, err := strconv.ParseUint(strings.TrimSpace(raw), 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: slave_net_timeout=%q", ErrBadStatus, raw)
	}
	return hb.Period, time.Duration(secs) * time.Second, nil
}
