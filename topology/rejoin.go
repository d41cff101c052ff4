package topology

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
)

// variableName is what GlobalVariable accepts: a plain system variable name,
// so it can be spliced into the statement safely.
var variableName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// GlobalVariable reads one global system variable as text ("" for NULL).
func (c *Conn) GlobalVariable(ctx context.Context, name string) (string, error) {
	if !variableName.MatchString(name) {
		return "", fmt.Errorf("%s: %w: variable name %q", c.addr, ErrBadOptions, name)
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	var v sql.NullString
	if err := c.db.QueryRowContext(ctx, "SELECT @@GLOBAL."+name).Scan(&v); err != nil {
		return "", fmt.Errorf("%s: read @@GLOBAL.%s: %w", c.addr, name, err)
	}
	return v.String, nil
}

// SetGTIDSlavePos sets MariaDB's gtid_slave_pos, where a replica using
// MASTER_USE_GTID=slave_pos asks its master to start. Replication must be
// stopped (the server refuses otherwise).
func (c *Conn) SetGTIDSlavePos(ctx context.Context, pos string) error {
	if _, err := ParseMariaDBGTIDList(pos); err != nil {
		return fmt.Errorf("%s: %w: gtid_slave_pos %q: %w", c.addr, ErrBadOptions, pos, err)
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	if _, err := c.db.ExecContext(ctx, "SET GLOBAL gtid_slave_pos = ?", pos); err != nil {
		return fmt.Errorf("%s: set gtid_slave_pos to %q: %w", c.addr, pos, err)
	}
	return nil
}

// ResetGTIDState empties a MariaDB server's binlog (RESET MASTER) and sets
// its gtid_binlog_state and gtid_slave_pos to pos: the server then counts
// exactly pos as done, whatever its binlog said before. MariaDB accepts a
// new gtid_binlog_state only on an empty binlog, hence the reset. The
// caller keeps what the old binlog held that it still needs.
func (c *Conn) ResetGTIDState(ctx context.Context, pos string) error {
	if _, err := ParseMariaDBGTIDList(pos); err != nil {
		return fmt.Errorf("%s: %w: gtid state %q: %w", c.addr, ErrBadOptions, pos, err)
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", c.addr, err)
	}
	defer conn.Close()
	for _, st := range []struct {
		q    string
		args []any
	}{
		{"RESET MASTER", nil},
		{"SET GLOBAL gtid_binlog_state = ?", []any{pos}},
		{"SET GLOBAL gtid_slave_pos = ?", []any{pos}},
	} {
		if _, err := conn.ExecContext(ctx, st.q, st.args...); err != nil {
			return fmt.Errorf("%s: %s (%q): %w", c.addr, st.q, pos, err)
		}
	}
	return nil
}
