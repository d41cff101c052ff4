package topology

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// BinlogEvent is one row of SHOW BINLOG EVENTS.
type BinlogEvent struct {
	File   string `json:"file"`
	Pos    uint64 `json:"pos"`
	Type   string `json:"type"`
	EndPos uint64 `json:"end_pos"`
	Info   string `json:"info,omitempty"`
}

// Coord is where the event starts.
func (e BinlogEvent) Coord() BinlogCoord { return BinlogCoord{File: e.File, Pos: e.Pos} }

// nonTransactionEvents are the event types a server writes on its own, at
// start, at rotation and at shutdown: they carry no data, so a binlog that
// has only these after a coordinate has written no transaction since.
var nonTransactionEvents = map[string]bool{
	"Format_desc": true, "Rotate": true, "Stop": true, "Start_encryption": true,
	"Gtid_list": true, "Binlog_checkpoint": true, // MariaDB
	"Previous_gtids": true, // MySQL
}

// Transactional reports whether the event belongs to a transaction (or a
// statement) rather than to the binlog's own bookkeeping.
func (e BinlogEvent) Transactional() bool { return !nonTransactionEvents[e.Type] }

// BinaryLogs lists the server's binlog files, oldest first (SHOW BINARY
// LOGS).
func (c *Conn) BinaryLogs(ctx context.Context) ([]string, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	rows, err := c.db.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return nil, fmt.Errorf("%s: show binary logs: %w", c.addr, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("%s: show binary logs: %w", c.addr, err)
	}
	var out []string
	for rows.Next() {
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("%s: show binary logs: %w", c.addr, err)
		}
		out = append(out, string(vals[0]))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: show binary logs: %w", c.addr, err)
	}
	return out, nil
}

// BinlogEventsAfter returns the events of the server's binlog from coordinate
// from (an event boundary) to the end of its last binlog file, at most limit
// of them (more means "at least limit"). from's file must still exist.
func (c *Conn) BinlogEventsAfter(ctx context.Context, from BinlogCoord, limit int) ([]BinlogEvent, error) {
	files, err := c.BinaryLogs(ctx)
	if err != nil {
		return nil, err
	}
	start := -1
	for i, f := range files {
		if f == from.File {
			start = i
		}
	}
	if start < 0 {
		return nil, fmt.Errorf("%s: binlog %s is not among the server's binlogs (%s): purged or never written", c.addr, from.File, strings.Join(files, ", "))
	}
	var out []BinlogEvent
	for i, f := range files[start:] {
		pos := uint64(4) // the first event of every binlog file
		if i == 0 {
			pos = from.Pos
		}
		evs, err := c.binlogEvents(ctx, f, pos, limit-len(out))
		if err != nil {
			return nil, err
		}
		out = append(out, evs...)
		if len(out) >= limit {
			break
		}
	}
	return out, nil
}

func (c *Conn) binlogEvents(ctx context.Context, file string, pos uint64, limit int) ([]BinlogEvent, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	// SHOW BINLOG EVENTS takes no placeholders: the file name is quoted
	// as a string literal, after checking it has nothing to escape.
	if strings.ContainsAny(file, "'\\\x00") {
		return nil, fmt.Errorf("%s: %w: binlog file name %q", c.addr, ErrBadOptions, file)
	}
	q := fmt.Sprintf("SHOW BINLOG EVENTS IN '%s' FROM %d LIMIT %d", file, pos, max(limit, 1))
	rows, err := c.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", c.addr, q, err)
	}
	defer rows.Close()
	var out []BinlogEvent
	for rows.Next() {
		var e BinlogEvent
		var server sql.NullInt64
		var info sql.NullString
		if err := rows.Scan(&e.File, &e.Pos, &e.Type, &server, &e.EndPos, &info); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", c.addr, q, err)
		}
		e.Info = info.String
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", c.addr, q, err)
	}
	return out, nil
}
