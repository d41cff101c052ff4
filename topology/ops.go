package topology

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// opContext gives an operation the Conn's read timeout when the caller set no
// deadline, so nothing in this package can block forever.
func (c *Conn) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.to.Read)
}

// exec runs statements in order on one connection. what names the operation
// in errors; statements are never included, since some carry passwords.
func (c *Conn) exec(ctx context.Context, what string, stmts ...string) error {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", c.addr, what, err)
	}
	defer func() { _ = conn.Close() }()
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %s: %w", c.addr, what, err)
		}
	}
	return nil
}

// SetReadOnly turns writes off (on=true) or on. It is idempotent. On MySQL it
// sets super_read_only too; on MariaDB 10.11 users with READ_ONLY ADMIN (and
// so SUPER) can still write, so fencing must also KillClientSessions.
func (c *Conn) SetReadOnly(ctx context.Context, on bool) error {
	c.log.InfoContext(ctx, "set read_only", "on", on)
	return c.exec(ctx, fmt.Sprintf("set read_only=%v", on), c.Version().ReadOnlySQL(on)...)
}

// SetSemiSyncMaster switches the master side of semi-sync replication, so a
// promoted replica keeps waiting for a replica's acknowledgement as the old
// master did.
func (c *Conn) SetSemiSyncMaster(ctx context.Context, on bool) error {
	c.log.InfoContext(ctx, "set semi-sync master", "on", on)
	return c.exec(ctx, fmt.Sprintf("set semi-sync master=%v", on), c.Version().SemiSyncMasterSQL(on))
}

// StopReplica stops the chosen replication threads. Stopping a stopped thread
// is only a warning on both flavors, so this is idempotent.
func (c *Conn) StopReplica(ctx context.Context, threads ReplicaThreads) error {
	c.log.InfoContext(ctx, "stop replica", "threads", threads.String())
	return c.exec(ctx, "stop replica "+threads.String(), c.Version().StopReplicaSQL(threads))
}

// StartReplica starts the chosen replication threads; idempotent as StopReplica.
func (c *Conn) StartReplica(ctx context.Context, threads ReplicaThreads) error {
	c.log.InfoContext(ctx, "start replica", "threads", threads.String())
	return c.exec(ctx, "start replica "+threads.String(), c.Version().StartReplicaSQL(threads))
}

// ChangeMaster points the instance at a new master. It stops both replication
// threads first (the servers refuse to change the host of a running replica)
// and does not start them: the caller decides when, after checking positions.
// The statement carries the password and is never logged.
func (c *Conn) ChangeMaster(ctx context.Context, opts ChangeMasterOptions) error {
	v := c.Version()
	stmt, err := v.ChangeMasterSQL(opts)
	if err != nil {
		return fmt.Errorf("%s: %w", c.addr, err)
	}
	c.log.InfoContext(ctx, "change master", "to", opts.String())
	err = c.exec(ctx, "change master to "+opts.String(), v.StopReplicaSQL(BothThreads), stmt)
	return redactSecret(err, opts.Password)
}

// redactSecret keeps a password out of an error: a server syntax error
// quotes the statement ("near '...'"), which would carry it. The server's
// error number and state survive, so errors.As still finds a *mysql.MySQLError.
func redactSecret(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		red := *me
		red.Message = strings.ReplaceAll(me.Message, secret, "<redacted>")
		if !strings.Contains(red.Message, secret) {
			prefix, _, _ := strings.Cut(err.Error(), me.Error())
			return fmt.Errorf("%s%w", strings.ReplaceAll(prefix, secret, "<redacted>"), &red)
		}
	}
	return fmt.Errorf("%w: error text withheld because it contained a secret", ErrBadOptions)
}

// ResetReplicaAll stops replication and forgets its configuration, as done on
// a promoted master so it no longer claims to replicate from the dead one.
// Idempotent: resetting a non-replica succeeds.
func (c *Conn) ResetReplicaAll(ctx context.Context) error {
	v := c.Version()
	c.log.InfoContext(ctx, "reset replica all")
	return c.exec(ctx, "reset replica all", v.StopReplicaSQL(BothThreads), v.ResetReplicaAllSQL())
}

// ReplicaStatus reads only the replica status (nil, nil for a non-replica):
// cheaper than Read for polling loops.
func (c *Conn) ReplicaStatus(ctx context.Context) (*ReplicaStatus, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	var rs *ReplicaStatus
	err := readAgainIfBroken(ctx, func() error {
		var err error
		rs, err = readReplicaStatus(ctx, c.db, c.Version())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.addr, err)
	}
	return rs, nil
}

// MasterStatus reads the instance's own binlog coordinate (nil if log_bin is off).
func (c *Conn) MasterStatus(ctx context.Context) (*BinlogCoord, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	var mc *BinlogCoord
	err := readAgainIfBroken(ctx, func() error {
		var err error
		mc, err = readMasterStatus(ctx, c.db, c.Version())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.addr, err)
	}
	return mc, nil
}

// waitChunk is the longest single server-side wait: below the read timeout,
// so the driver does not cut a healthy wait, and short enough to notice a
// stopped SQL thread.
func (c *Conn) waitChunk() time.Duration {
	return max(time.Second, min(5*time.Second, c.to.Read-time.Second))
}

// WaitForPosition blocks until the instance has applied target, ctx ends
// (ErrWaitTimeout), or its SQL thread is found stopped (ErrReplicationStopped).
// MariaDB uses MASTER_GTID_WAIT on gtid_slave_pos, MySQL
// WAIT_FOR_EXECUTED_GTID_SET, file/pos MASTER_POS_WAIT (SOURCE_POS_WAIT on
// 8.0.26+). Without a ctx deadline it waits until ctx is cancelled.
func (c *Conn) WaitForPosition(ctx context.Context, target Position) error {
	v := c.Version()
	for {
		chunk := c.waitChunk()
		if dl, ok := ctx.Deadline(); ok {
			chunk = min(chunk, time.Until(dl))
		}
		if chunk <= 0 || ctx.Err() != nil {
			return fmt.Errorf("%s: wait for %s: %w", c.addr, target, errors.Join(ErrWaitTimeout, ctx.Err()))
		}
		done, err := c.waitOnce(ctx, v, target, chunk)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%s: wait for %s: %w", c.addr, target, errors.Join(ErrWaitTimeout, err))
			}
			return fmt.Errorf("%s: wait for %s: %w", c.addr, target, err)
		}
		if done {
			return nil
		}
		if ctx.Err() != nil || !hasTimeLeft(ctx) {
			return fmt.Errorf("%s: wait for %s: %w", c.addr, target, errors.Join(ErrWaitTimeout, ctx.Err()))
		}
		rs, err := c.ReplicaStatus(ctx)
		if err != nil {
			return fmt.Errorf("%s: wait for %s: %w", c.addr, target, err)
		}
		if rs == nil {
			return fmt.Errorf("%s: wait for %s: %w", c.addr, target, ErrNotReplica)
		}
		if !rs.SQLRunning {
			// Say why when the server does: an operator levelling the
			// replica by hand starts from that error.
			if rs.LastSQLError != "" {
				return fmt.Errorf("%s: wait for %s: %w: %d %s", c.addr, target, ErrReplicationStopped, rs.LastSQLErrno, rs.LastSQLError)
			}
			return fmt.Errorf("%s: wait for %s: %w", c.addr, target, ErrReplicationStopped)
		}
	}
}

// hasTimeLeft reports whether ctx has no deadline or one not yet reached.
func hasTimeLeft(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return !ok || time.Until(dl) > 0
}

// waitOnce runs one server-side wait of at most chunk; done reports success.
func (c *Conn) waitOnce(ctx context.Context, v Version, target Position, chunk time.Duration) (bool, error) {
	secs := chunk.Seconds()
	var res sql.NullInt64
	var err error
	switch target.Kind {
	case PosMariaDBGTID:
		if v.Flavor != MariaDB {
			return false, fmt.Errorf("%w: MariaDB position on %s", ErrIncomparable, v.Flavor)
		}
		err = c.db.QueryRowContext(ctx, "SELECT MASTER_GTID_WAIT(?, ?)", target.MariaDB.String(), secs).Scan(&res)
		// 0: reached; -1: timed out.
		return err == nil && res.Valid && res.Int64 == 0, err
	case PosMySQLGTID:
		if v.Flavor != MySQL {
			return false, fmt.Errorf("%w: MySQL GTID set on %s", ErrIncomparable, v.Flavor)
		}
		s := max(1, int(secs))
		err = c.db.QueryRowContext(ctx, "SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?)", target.GTIDSet.String(), s).Scan(&res)
		// 0: reached; 1: timed out.
		return err == nil && res.Valid && res.Int64 == 0, err
	default:
		s := max(1, int(secs))
		q := "SELECT " + v.sourcePosWaitFunc() + "(?, ?, ?)"
		err = c.db.QueryRowContext(ctx, q, target.Coord.File, target.Coord.Pos, s).Scan(&res)
		if err != nil {
			return false, err
		}
		if !res.Valid {
			// NULL: SQL thread not running or replication not configured.
			return false, ErrReplicationStopped
		}
		return res.Int64 >= 0, nil
	}
}

// WaitRelayLogApplied polls until the SQL thread has executed everything the
// IO thread fetched (the step before promoting a replica whose master is
// dead). It compares Exec and Read coordinates, and on MySQL with
// auto-position also the GTID sets. A stopped SQL thread with work left is
// ErrReplicationStopped; ctx ending is ErrWaitTimeout.
func (c *Conn) WaitRelayLogApplied(ctx context.Context) error {
	t := time.NewTicker(relayPollInterval)
	defer t.Stop()
	for {
		rs, err := c.ReplicaStatus(ctx)
		if err != nil {
			return fmt.Errorf("wait relay log applied: %w", err)
		}
		if rs == nil {
			return fmt.Errorf("%s: wait relay log applied: %w", c.addr, ErrNotReplica)
		}
		if relayApplied(rs) {
			return nil
		}
		if !rs.SQLRunning {
			return fmt.Errorf("%s: wait relay log applied: %w: %s", c.addr, ErrReplicationStopped, rs.LastSQLError)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: wait relay log applied (exec %s, read %s): %w", c.addr,
				rs.ExecCoord(), rs.ReadCoord(), errors.Join(ErrWaitTimeout, ctx.Err()))
		case <-t.C:
		}
	}
}

// relayPollInterval is how often WaitRelayLogApplied re-reads the status.
const relayPollInterval = 100 * time.Millisecond

// relayApplied decides from one status row whether the relay log is applied.
func relayApplied(rs *ReplicaStatus) bool {
	if rs.RelayLogApplied() {
		return true
	}
	if rs.AutoPosition && rs.RetrievedGTIDSet != "" {
		got, err1 := ParseGTIDSet(rs.RetrievedGTIDSet)
		done, err2 := ParseGTIDSet(rs.ExecutedGTIDSet)
		return err1 == nil && err2 == nil && done.Contains(got)
	}
	return false
}
