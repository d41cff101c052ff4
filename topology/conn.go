package topology

import (
	"context"
	"crypto/tls"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Credentials are the account quorumha uses on an instance. String() redacts
// the password so a Credentials value can be logged by accident safely.
type Credentials struct {
	User     string
	Password string
	// TLS, when set, is the verified TLS the connection must use
	// (clusters[].tls); nil is plain TCP.
	TLS *tls.Config
}

// String shows the user only.
func (c Credentials) String() string { return c.User + ":<redacted>" }

// LogValue keeps the password out of slog output.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Timeouts bound every network operation on an instance, so a hung server
// (packets dropped, no RST) costs a probe at most these durations.
type Timeouts struct {
	// Connect bounds the TCP connect and handshake.
	Connect time.Duration
	// Read and Write bound each network read and write. Long server-side waits
	// (WaitForPosition) are split into chunks shorter than Read.
	Read  time.Duration
	Write time.Duration
}

// DefaultTimeouts suits a probe loop with a one second interval.
func DefaultTimeouts() Timeouts {
	return Timeouts{Connect: 2 * time.Second, Read: 10 * time.Second, Write: 5 * time.Second}
}

func (t Timeouts) withDefaults() Timeouts {
	d := DefaultTimeouts()
	if t.Connect <= 0 {
		t.Connect = d.Connect
	}
	if t.Read <= 0 {
		t.Read = d.Read
	}
	if t.Write <= 0 {
		t.Write = d.Write
	}
	return t
}

// maxOpenConns bounds the pool per instance: a probe, an operation and a
// long wait may run at once, and a controller must never exhaust a
// struggling server's max_connections.
const maxOpenConns = 3

// sessionSQLMode is pinned on every connection quorumha opens so that string
// literals built by quoteString mean what they say (no NO_BACKSLASH_ESCAPES,
// whatever the server's global sql_mode is).
const sessionSQLMode = "'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"

// Conn is quorumha's handle on one instance: a small bounded pool plus the
// server's version, which selects the SQL dialect. It is safe for concurrent use.
type Conn struct {
	addr string
	user string
	db   *sql.DB
	to   Timeouts
	log  *slog.Logger

	mu      sync.Mutex
	version Version
}

// Open connects to addr ("host:port") and reads the server version, so a Conn
// that exists always knows its dialect. A nil logger discards.
func Open(ctx context.Context, addr string, cred Credentials, to Timeouts, logger *slog.Logger) (*Conn, error) {
	return openNet(ctx, "tcp", addr, cred, to, logger)
}

// openNet is Open over network "tcp" or "unix" (addr is then a socket path).
func openNet(ctx context.Context, network, addr string, cred Credentials, to Timeouts, logger *slog.Logger) (*Conn, error) {
	to = to.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg := driverConfig(addr, cred, to)
	cfg.Net = network
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: open: %w", addr, err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(maxOpenConns)
	db.SetMaxIdleConns(2)
	db.SetConnMaxIdleTime(time.Minute)
	c := &Conn{addr: addr, user: cred.User, db: db, to: to, log: logger.With("instance", addr)}
	if err := c.refreshVersion(ctx); err != nil {
		_ = db.Close() // the connect error is the one worth returning
		return nil, err
	}
	return c, nil
}

// driverConfig is the driver configuration of every connection quorumha
// opens with an instance's admin account: no LOAD DATA LOCAL of any file,
// no cleartext password without TLS, no server public key configured by
// name. The driver (v1.10) still asks the server for its RSA key during a
// caching_sha2_password/sha256_password full authentication over plain
// TCP, and has no switch to refuse it; a man in the middle could then read
// the password. clusters[].tls closes that: the password then travels in
// verified TLS and no key is fetched.
func driverConfig(addr string, cred Credentials, to Timeouts) *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = addr
	cfg.User = cred.User
	cfg.Passwd = cred.Password
	cfg.Timeout = to.Connect
	cfg.ReadTimeout = to.Read
	cfg.WriteTimeout = to.Write
	cfg.InterpolateParams = true
	cfg.Params = map[string]string{"sql_mode": sessionSQLMode}
	cfg.AllowAllFiles = false
	cfg.AllowCleartextPasswords = false
	cfg.TLS = cred.TLS
	return cfg
}

// Addr is the address the Conn dials.
func (c *Conn) Addr() string { return c.addr }

// Version is the server version read at Open or at the last Read.
func (c *Conn) Version() Version {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version
}

// DB exposes the pool for callers with needs beyond this package (health
// probes' SELECT 1, tests); it stays bounded by maxOpenConns.
func (c *Conn) DB() *sql.DB { return c.db }

// Close releases the pool.
func (c *Conn) Close() error {
	if err := c.db.Close(); err != nil {
		return fmt.Errorf("%s: close: %w", c.addr, err)
	}
	return nil
}

// Ping checks the instance answers a trivial query within ctx.
func (c *Conn) Ping(ctx context.Context) error {
	if err := c.db.PingContext(ctx); err != nil {
		return fmt.Errorf("%s: ping: %w", c.addr, err)
	}
	return nil
}

func (c *Conn) refreshVersion(ctx context.Context) error {
	var raw, comment string
	err := readAgainIfBroken(ctx, func() error {
		return c.db.QueryRowContext(ctx, "SELECT @@version, @@version_comment").Scan(&raw, &comment)
	})
	if err != nil {
		return fmt.Errorf("%s: read version: %w", c.addr, err)
	}
	v, err := ParseVersion(raw, comment)
	if err != nil {
		return fmt.Errorf("%s: %w", c.addr, err)
	}
	c.mu.Lock()
	c.version = v
	c.mu.Unlock()
	return nil
}

// Read reads the instance's whole replication state on one connection, in
// four round trips: variables, status counters, replica status and (when
// binary logging is on) master status.
//
// A read that finds its pooled connection broken is read once more on a
// new one: a fence kills every client session of the old master, the
// controller's own idle ones included, and the driver's liveness check
// cannot see a kill whose FIN has not arrived yet (seen: a rejoin right
// after a failover refused with "read variables: invalid connection").
// Reads change nothing, so reading again is safe. Only a break found at
// once is read again: a killed session answers EOF at once, while a host
// that vanished breaks the connection only at the read timeout, and a
// second try there would double the wait of every failover step that
// reads it. Open's version read, ReplicaStatus and MasterStatus do the
// same (a test tool's fresh connection to an old master being fenced was
// cut the same way).
func (c *Conn) Read(ctx context.Context) (*Instance, error) {
	var in *Instance
	err := readAgainIfBroken(ctx, func() error {
		var err error
		in, err = c.readOnce(ctx)
		return err
	})
	return in, err
}

// readAgainIfBroken runs read, and once more when it failed at once on a
// broken connection (see Read). Only for statements that change nothing.
func readAgainIfBroken(ctx context.Context, read func() error) error {
	start := time.Now()
	err := read()
	if err != nil && isBrokenConn(err) && ctx.Err() == nil && time.Since(start) < brokenConnFast {
		err = read()
	}
	return err
}

// brokenConnFast bounds how long a read may have taken for its broken
// connection to be read again (see Read).
const brokenConnFast = 500 * time.Millisecond

// isBrokenConn reports the driver's errors for a connection that died
// under a statement (the server killed it, or the network dropped it).
func isBrokenConn(err error) bool {
	return errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, driver.ErrBadConn)
}

func (c *Conn) readOnce(ctx context.Context) (*Instance, error) {
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: read: %w", c.addr, err)
	}
	defer func() { _ = conn.Close() }() // returning a pooled conn cannot fail usefully
	vars, err := queryNameValues(ctx, conn, "SHOW GLOBAL VARIABLES", instanceVariables())
	if err != nil {
		return nil, fmt.Errorf("%s: read variables: %w", c.addr, err)
	}
	status, err := queryNameValues(ctx, conn, "SHOW GLOBAL STATUS", instanceStatus())
	if err != nil {
		return nil, fmt.Errorf("%s: read status: %w", c.addr, err)
	}
	lv := lowerKeys(vars)
	ver, err := ParseVersion(lv["version"], lv["version_comment"])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.addr, err)
	}
	c.mu.Lock()
	c.version = ver
	c.mu.Unlock()
	replica, err := readReplicaStatus(ctx, conn, ver)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.addr, err)
	}
	var master *BinlogCoord
	if parseBool(lv["log_bin"]) {
		if master, err = readMasterStatus(ctx, conn, ver); err != nil {
			return nil, fmt.Errorf("%s: %w", c.addr, err)
		}
	}
	return buildInstance(c.addr, vars, status, replica, master, time.Now())
}

// queryer is what *sql.Conn, *sql.DB and *sql.Tx share.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// queryNameValues runs a SHOW GLOBAL VARIABLES/STATUS restricted to names
// (WHERE Variable_name IN ...), returning name -> value.
func queryNameValues(ctx context.Context, q queryer, show string, names []string) (map[string]string, error) {
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = n
	}
	query := show + " WHERE Variable_name IN (" + placeholders(len(names)) + ")"
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	out := map[string]string{}
	for rows.Next() {
		var name string
		var val sql.NullString
		if err := rows.Scan(&name, &val); err != nil {
			return nil, err
		}
		out[name] = val.String
	}
	return out, rows.Err()
}

// scanRows reads every row of a result as column names and nullable strings.
func scanRows(rows *sql.Rows) ([]string, [][]sql.NullString, error) {
	cols, err := rows.Columns()
	if err != nil {
		return nil, nil, err
	}
	var out [][]sql.NullString
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		out = append(out, vals)
	}
	return cols, out, rows.Err()
}

func queryTable(ctx context.Context, q queryer, query string, args ...any) ([]string, [][]sql.NullString, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = rows.Close() }()
	return scanRows(rows)
}

// readReplicaStatus returns nil when the instance is not a replica (empty
// result, or an empty Master_Host after RESET SLAVE without ALL).
func readReplicaStatus(ctx context.Context, q queryer, v Version) (*ReplicaStatus, error) {
	cols, rows, err := queryTable(ctx, q, v.ShowReplicaStatusSQL())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", v.ShowReplicaStatusSQL(), err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	rs, err := ParseReplicaStatus(cols, rows[0])
	if err != nil {
		return nil, err
	}
	if rs.MasterHost == "" {
		return nil, nil
	}
	return rs, nil
}

func readMasterStatus(ctx context.Context, q queryer, v Version) (*BinlogCoord, error) {
	cols, rows, err := queryTable(ctx, q, v.ShowMasterStatusSQL())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", v.ShowMasterStatusSQL(), err)
	}
	return parseMasterStatus(cols, rows)
}

// parseMasterStatus decodes SHOW MASTER STATUS / SHOW BINARY LOG STATUS.
func parseMasterStatus(cols []string, rows [][]sql.NullString) (*BinlogCoord, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	row, err := newStatusRow(cols, rows[0])
	if err != nil {
		return nil, err
	}
	var bad []string
	c := &BinlogCoord{File: row.str("file"), Pos: row.uint("position", &bad)}
	if len(bad) > 0 || c.File == "" {
		return nil, fmt.Errorf("%w: master status %v", ErrBadStatus, bad)
	}
	return c, nil
}

// isNoSuchThread reports the error KILL gives for a thread that already
// ended (ER_NO_SUCH_THREAD), which a kill loop must tolerate.
func isNoSuchThread(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1094
}

// retryServerError runs op up to attempts times while it fails with an error
// the server sent (*mysql.MySQLError: the statement failed, the connection
// is fine), pausing between tries. Network and context errors return at
// once: retrying them would only spend the caller's deadline.
func retryServerError(ctx context.Context, attempts int, pause time.Duration, op func() error) error {
	var err error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return err
			case <-t.C:
			}
		}
		if err = op(); err == nil {
			return nil
		}
		var me *mysql.MySQLError
		if !errors.As(err, &me) {
			return err
		}
	}
	return err
}
