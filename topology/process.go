package topology

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Process is one server thread from the processlist, joined with its open
// InnoDB transaction if it has one: what a switchover reports as "long
// running updates" (MHA's running_updates_limit) and what fencing kills.
type Process struct {
	ID      uint64
	User    string
	Host    string
	DB      string
	Command string
	Time    time.Duration
	State   string
	Info    string
	// InTransaction is true when information_schema.INNODB_TRX has a row
	// for this thread; TrxAge is then the transaction's age.
	InTransaction   bool
	TrxID           string
	TrxAge          time.Duration
	TrxRowsModified uint64
}

// StoppingReplica reports whether p is a STOP SLAVE (STOP REPLICA on
// MySQL 8.0.22+ and MariaDB 10.5+) in its killing stage ("Killing slave",
// "Killing replica"): the server has set the IO thread's abort flag, so an
// IO thread not connected by then receives nothing more.
func (p Process) StoppingReplica() bool {
	info, state := strings.ToUpper(strings.TrimSpace(p.Info)), strings.ToLower(p.State)
	return (strings.HasPrefix(info, "STOP SLAVE") || strings.HasPrefix(info, "STOP REPLICA")) &&
		(strings.Contains(state, "killing slave") || strings.Contains(state, "killing replica"))
}

// processListSQL and innodbTrxSQL work on MariaDB and MySQL alike (MySQL 8
// deprecates information_schema.PROCESSLIST in favour of performance_schema
// but still serves it). They are two queries joined in Go, not one JOIN:
// MariaDB 10.11 crashed (SIGSEGV) on PROCESSLIST LEFT JOIN INNODB_TRX run
// against a server that had just started, which a controller's discovery
// does every few seconds.
const (
	processListSQL = `SELECT ID, USER, HOST, DB, COMMAND, TIME, STATE, INFO
FROM information_schema.PROCESSLIST ORDER BY ID`
	innodbTrxSQL = `SELECT trx_mysql_thread_id, trx_id, TIMESTAMPDIFF(SECOND, trx_started, NOW()), trx_rows_modified
FROM information_schema.INNODB_TRX`
)

// processListAttempts bounds retryServerError for the process list:
// information_schema.PROCESSLIST is materialised into an on-disk temporary
// table (its INFO column is LONGTEXT), and a switchover in CI failed once on
// "Error 6 (HY000): Error on delete of '/tmp/#sql-temptable-…MAD' (Errcode:
// 2)". The list decides which sessions a switchover reports and kills and
// which writes waiting on the global read lock die, so one failed read must
// not skip that.
const (
	processListAttempts = 3
	processListPause    = 10 * time.Millisecond
)

// queryTableRetry is queryTable tried again, within processListAttempts,
// when the server fails the statement.
func queryTableRetry(ctx context.Context, q queryer, query string) (cols []string, rows [][]sql.NullString, err error) {
	err = retryServerError(ctx, processListAttempts, processListPause, func() error {
		cols, rows, err = queryTable(ctx, q, query)
		return err
	})
	return cols, rows, err
}

// queryProcessList reads the process list, with each thread's open InnoDB
// transaction when withTrx, as the 11 columns parseProcessList decodes.
func queryProcessList(ctx context.Context, q queryer, withTrx bool) ([]string, [][]sql.NullString, error) {
	cols, rows, err := queryTableRetry(ctx, q, processListSQL)
	if err != nil {
		return nil, nil, err
	}
	if len(cols) != 8 {
		return nil, nil, fmt.Errorf("%w: process list has %d columns", ErrBadStatus, len(cols))
	}
	trx := map[string][]sql.NullString{}
	if withTrx {
		tcols, trows, err := queryTableRetry(ctx, q, innodbTrxSQL)
		if err != nil {
			return nil, nil, err
		}
		if len(tcols) != 4 {
			return nil, nil, fmt.Errorf("%w: innodb_trx has %d columns", ErrBadStatus, len(tcols))
		}
		for _, r := range trows {
			trx[r[0].String] = r[1:]
		}
	}
	cols = append(cols, "trx_id", "trx_age", "trx_rows_modified")
	for i, r := range rows {
		t, ok := trx[r[0].String]
		if !ok {
			t = make([]sql.NullString, 3)
		}
		rows[i] = append(r[:8:8], t...)
	}
	return cols, rows, nil
}

// ProcessList returns every thread with its open transaction, if any.
func (c *Conn) ProcessList(ctx context.Context) ([]Process, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	cols, rows, err := queryProcessList(ctx, c.db, true)
	if err != nil {
		return nil, fmt.Errorf("%s: process list: %w", c.addr, err)
	}
	ps, err := parseProcessList(cols, rows)
	if err != nil {
		return nil, fmt.Errorf("%s: process list: %w", c.addr, err)
	}
	return ps, nil
}

// parseProcessList decodes queryProcessList's result by position.
func parseProcessList(cols []string, rows [][]sql.NullString) ([]Process, error) {
	if len(cols) != 11 {
		return nil, fmt.Errorf("%w: process list has %d columns", ErrBadStatus, len(cols))
	}
	out := make([]Process, 0, len(rows))
	for _, r := range rows {
		id, err := strconv.ParseUint(r[0].String, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: process id %q", ErrBadStatus, r[0].String)
		}
		secs, _ := strconv.ParseInt(r[5].String, 10, 64) // NULL/odd TIME counts as 0
		p := Process{ID: id, User: r[1].String, Host: r[2].String, DB: r[3].String, Command: r[4].String,
			Time: time.Duration(secs) * time.Second, State: r[6].String, Info: r[7].String}
		if r[8].Valid {
			p.InTransaction = true
			p.TrxID = r[8].String
			age, _ := strconv.ParseInt(r[9].String, 10, 64)
			p.TrxAge = time.Duration(age) * time.Second
			p.TrxRowsModified, _ = strconv.ParseUint(r[10].String, 10, 64)
		}
		out = append(out, p)
	}
	return out, nil
}

// isSystemUser reports users of server-internal threads; killing them is
// refused or harmful.
func isSystemUser(user string) bool {
	switch strings.ToLower(user) {
	case "system user", "event_scheduler", "":
		return true
	}
	return false
}

// isReplicationCommand reports threads that carry replication: a master's
// binlog dump threads serving replicas (killing them breaks the very replicas
// a switchover needs), a replica's own IO/SQL/worker threads, and daemons.
func isReplicationCommand(cmd string) bool {
	switch strings.ToLower(cmd) {
	case "binlog dump", "binlog dump gtid", "daemon", "slave_io", "slave_sql", "slave_worker", "register slave":
		return true
	}
	return false
}

// killable decides whether fencing kills p: every client session, whatever
// its account (applications often use the same admin account as the
// controllers; MHA's default is root), except self, system and replication
// threads and the sessions listed in spare (a switchover's lock holder).
func killable(p Process, self uint64, spare map[uint64]bool) bool {
	return p.ID != self &&
		!spare[p.ID] &&
		!isSystemUser(p.User) &&
		!isReplicationCommand(p.Command) &&
		!strings.EqualFold(p.Command, "Killed")
}

// KillClientSessions kills every client session except this one, system
// threads, replication threads and the sessions whose ids are in spareIDs.
// It is the second half of fencing a master: read_only does not stop
// accounts with READ ONLY ADMIN (or SUPER on older servers), and a session
// waiting for a semi-sync acknowledgement must get an error, not an OK, once
// the master is fenced. Sessions of the controllers' own account are killed
// too; their probes reconnect. It returns the processes it killed; a thread
// that ended on its own meanwhile is not an error.
func (c *Conn) KillClientSessions(ctx context.Context, spareIDs ...uint64) ([]Process, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: kill sessions: %w", c.addr, err)
	}
	defer func() { _ = conn.Close() }()
	var self uint64
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&self); err != nil {
		return nil, fmt.Errorf("%s: kill sessions: %w", c.addr, err)
	}
	return killSessions(ctx, conn, c.addr, self, spareIDs, c.log)
}

// sqlConn is the part of *sql.Conn that killSessions needs.
type sqlConn interface {
	queryer
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// killSessions kills, over conn (whose id is self), every killable session.
func killSessions(ctx context.Context, conn sqlConn, addr string, self uint64, spareIDs []uint64, log *slog.Logger) ([]Process, error) {
	cols, rows, err := queryProcessList(ctx, conn, false)
	if err != nil {
		return nil, fmt.Errorf("%s: kill sessions: process list: %w", addr, err)
	}
	procs, err := parseProcessList(cols, rows)
	if err != nil {
		return nil, fmt.Errorf("%s: kill sessions: %w", addr, err)
	}
	spare := map[uint64]bool{}
	for _, id := range spareIDs {
		spare[id] = true
	}
	var killed []Process
	for _, p := range procs {
		if !killable(p, self, spare) {
			continue
		}
		if _, err := conn.ExecContext(ctx, "KILL CONNECTION "+strconv.FormatUint(p.ID, 10)); err != nil {
			if isNoSuchThread(err) {
				continue
			}
			return killed, fmt.Errorf("%s: kill connection %d (%s@%s): %w", addr, p.ID, p.User, p.Host, err)
		}
		killed = append(killed, p)
	}
	if len(killed) > 0 && log != nil {
		log.InfoContext(ctx, "killed client sessions", "count", len(killed))
	}
	return killed, nil
}

// ReplicaHost is a replica a master knows about, from SHOW SLAVE HOSTS /
// SHOW REPLICAS (replicas that set report_host) or from a binlog dump
// thread's client address.
type ReplicaHost struct {
	Host     string
	Port     int
	ServerID uint32
	// Guessed is true when the address came from the processlist: the host
	// is the client IP and the port is the master's, which may be wrong.
	Guessed bool
}

// Addr joins host and port.
func (r ReplicaHost) Addr() string { return joinHostPort(r.Host, r.Port) }

// ReplicaHosts lists the replicas connected to this master. Replicas that
// registered a report_host come from SHOW SLAVE HOSTS; binlog dump threads
// from clients not registered add guessed addresses.
func (c *Conn) ReplicaHosts(ctx context.Context) ([]ReplicaHost, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	v := c.Version()
	cols, rows, err := queryTable(ctx, c.db, v.ShowReplicasSQL())
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", c.addr, v.ShowReplicasSQL(), err)
	}
	pcols, prows, err := queryProcessList(ctx, c.db, false)
	if err != nil {
		return nil, fmt.Errorf("%s: process list: %w", c.addr, err)
	}
	procs, err := parseProcessList(pcols, prows)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.addr, err)
	}
	_, port, _ := splitHostPort(c.addr)
	return parseReplicaHosts(cols, rows, procs, port)
}

// parseReplicaHosts merges SHOW SLAVE HOSTS rows with dump threads of
// clients that did not register; masterPort is used for the guesses.
func parseReplicaHosts(cols []string, rows [][]sql.NullString, procs []Process, masterPort int) ([]ReplicaHost, error) {
	var out []ReplicaHost
	registeredHosts := map[string]int{}
	for _, r := range rows {
		row, err := newStatusRow(cols, r)
		if err != nil {
			return nil, err
		}
		var bad []string
		h := ReplicaHost{Host: row.str("host"), Port: int(row.uint("port", &bad)),
			ServerID: uint32(row.uint("server_id", &bad))}
		if len(bad) > 0 {
			return nil, fmt.Errorf("%w: replica hosts %v", ErrBadStatus, bad)
		}
		if h.Host == "" {
			continue
		}
		out = append(out, h)
		registeredHosts[h.Host]++
	}
	dumps := map[string]int{}
	for _, p := range procs {
		if cmd := strings.ToLower(p.Command); cmd == "binlog dump" || cmd == "binlog dump gtid" {
			host, _, err := splitHostPort(p.Host)
			if err != nil {
				host = p.Host
			}
			dumps[host]++
		}
	}
	for host, n := range dumps {
		if n > registeredHosts[host] && masterPort > 0 {
			out = append(out, ReplicaHost{Host: host, Port: masterPort, Guessed: true})
		}
	}
	return out, nil
}

// splitHostPort splits "host:port" and "[v6]:port".
func splitHostPort(addr string) (string, int, error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", 0, fmt.Errorf("%w: address %q has no port", ErrBadOptions, addr)
	}
	port, err := strconv.Atoi(addr[i+1:])
	if err != nil {
		return "", 0, fmt.Errorf("%w: address %q: bad port", ErrBadOptions, addr)
	}
	return strings.Trim(addr[:i], "[]"), port, nil
}

// KillThread kills one server thread by id (KILL CONNECTION). Stop_io uses
// it on a replica's IO thread: MariaDB's STOP SLAVE leaves a thread blocked
// waiting for a silent master's events for about 2 s, KILL ends it in
// milliseconds. A thread that ended meanwhile (unknown thread id) is not an
// error.
func (c *Conn) KillThread(ctx context.Context, id uint64) error {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	if _, err := c.db.ExecContext(ctx, "KILL CONNECTION "+strconv.FormatUint(id, 10)); err != nil {
		if isNoSuchThread(err) {
			return nil
		}
		return fmt.Errorf("%s: kill thread %d: %w", c.addr, id, err)
	}
	return nil
}
