package topology

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"log/slog"
	"time"
)

// OpenSocket is Open over a unix socket: the host agent reaches its own
// server that way, so fencing does not depend on the network the server
// may be cut off from, and the account may use unix_socket authentication.
func OpenSocket(ctx context.Context, socket string, cred Credentials, to Timeouts, logger *slog.Logger) (*Conn, error) {
	return openNet(ctx, "unix", socket, cred, to, logger)
}

// WritesOff reports whether the server refuses writes from accounts
// without READ ONLY ADMIN: read_only, and super_read_only too on MySQL
// flavors that have it (ReadOnlySQL sets both).
func (c *Conn) WritesOff(ctx context.Context) (bool, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	q := "SELECT @@global.read_only, 1"
	if v := c.Version(); v.Flavor == MySQL && v.AtLeast(5, 7, 8) {
		q = "SELECT @@global.read_only, @@global.super_read_only"
	}
	var ro, sro int
	if err := c.db.QueryRowContext(ctx, q).Scan(&ro, &sro); err != nil {
		return false, fmt.Errorf("%s: read read_only: %w", c.addr, err)
	}
	return ro == 1 && sro == 1, nil
}

// GlobalReadLock is FLUSH TABLES WITH READ LOCK held on a dedicated
// session of the server. On MariaDB 10.11 read_only does not stop accounts
// with READ ONLY ADMIN (root, ALL PRIVILEGES); the global read lock stops
// every writer. It lasts as long as the session: closing it, or the
// server's restart, releases it.
type GlobalReadLock struct {
	addr string
	conn *sql.Conn
	id   uint64
}

// LockGlobalRead takes the global read lock on a new session of the pool,
// waiting at most wait for sessions holding table locks (lock_wait_timeout),
// and keeps that session until Release.
func (c *Conn) LockGlobalRead(ctx context.Context, wait time.Duration) (*GlobalReadLock, error) {
	secs := lockWaitSeconds(wait)
	// The statement's own bound plus the round trips: the context only
	// guards against a server that stopped answering.
	lctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+c.to.Read)
	defer cancel()
	l, err := c.prepareGlobalReadLock(lctx, lctx, secs)
	if err != nil {
		return nil, err
	}
	if err := l.Lock(lctx); err != nil {
		return nil, err
	}
	return l, nil
}

// PrepareGlobalReadLock opens the session the global read lock will be
// taken on, with lock_wait_timeout set to wait, without locking yet: a
// switchover learns the session's id (to spare it when it kills client
// sessions) before its write block, and calls Lock within the block.
// Discard the session if it is never locked.
func (c *Conn) PrepareGlobalReadLock(ctx context.Context, wait time.Duration) (*GlobalReadLock, error) {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return c.prepareGlobalReadLock(ctx, lctx, lockWaitSeconds(wait))
}

// lockWaitSeconds is wait as a whole lock_wait_timeout, at least 1.
func lockWaitSeconds(wait time.Duration) int {
	secs := int(wait / time.Second)
	if secs < 1 {
		secs = 1
	}
	return secs
}

// prepareGlobalReadLock opens the session within ctx and sets it up
// within lctx.
func (c *Conn) prepareGlobalReadLock(ctx, lctx context.Context, secs int) (*GlobalReadLock, error) {
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: global read lock: %w", c.addr, err)
	}
	l := &GlobalReadLock{addr: c.addr, conn: conn}
	if _, err := conn.ExecContext(lctx, fmt.Sprintf("SET SESSION lock_wait_timeout = %d", secs)); err != nil {
		return nil, l.fail(err)
	}
	if err := conn.QueryRowContext(lctx, "SELECT CONNECTION_ID()").Scan(&l.id); err != nil {
		return nil, l.fail(err)
	}
	return l, nil
}

// fail discards the session and wraps err: the session may hold or wait
// for the lock, so it never goes back to the pool.
func (l *GlobalReadLock) fail(err error) error {
	l.Discard()
	return fmt.Errorf("%s: global read lock: %w", l.addr, err)
}

// Lock takes the global read lock on the prepared session, within ctx
// (callers bound it: the lock waits up to lock_wait_timeout). On failure
// the session is discarded and l is spent.
func (l *GlobalReadLock) Lock(ctx context.Context) error {
	if _, err := l.conn.ExecContext(ctx, "FLUSH TABLES WITH READ LOCK"); err != nil {
		return l.fail(err)
	}
	return nil
}

// Discard closes the session without unlocking (closing releases
// whatever it holds) and keeps it out of the pool.
func (l *GlobalReadLock) Discard() {
	_ = l.conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = l.conn.Close()
}

// KillSession kills session id from the lock's session: a switchover
// releasing the lock first kills the writers that queued behind it.
func (l *GlobalReadLock) KillSession(ctx context.Context, id uint64) error {
	if _, err := l.conn.ExecContext(ctx, fmt.Sprintf("KILL %d", id)); err != nil {
		return fmt.Errorf("%s: kill %d: %w", l.addr, id, err)
	}
	return nil
}

// ID is the lock session's connection id, to spare it from
// KillClientSessions.
func (l *GlobalReadLock) ID() uint64 { return l.id }

// Alive checks the lock's session still exists (a restarted or crashed
// server took the lock with it). It also keeps the session from idling
// into the server's wait_timeout.
func (l *GlobalReadLock) Alive(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var id uint64
	if err := l.conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		return fmt.Errorf("%s: global read lock session: %w", l.addr, err)
	}
	if id != l.id {
		// The driver reconnected under us: that session holds nothing.
		return fmt.Errorf("%s: global read lock session %d replaced by %d", l.addr, l.id, id)
	}
	return nil
}

// Release unlocks and closes the session; closing alone releases the lock
// on the server, so an UNLOCK error only makes the close certain.
func (l *GlobalReadLock) Release(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := l.conn.ExecContext(ctx, "UNLOCK TABLES")
	// Never reuse the session: a half-released lock must not return to
	// the pool.
	_ = l.conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = l.conn.Close()
	if err != nil {
		return fmt.Errorf("%s: unlock tables: %w", l.addr, err)
	}
	return nil
}
