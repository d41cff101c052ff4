package detector

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/quorumha/quorumha/topology"
)

// Target names an instance to probe and the account to probe it with. Each
// cluster has its own monitor account, so credentials travel with the address.
type Target struct {
	// Addr is host:port.
	Addr string
	// User is the monitor account.
	User string
	// Password is User's password.
	Password string
	// TLS, when set, is the verified TLS the connection must use
	// (clusters[].tls); nil is plain TCP.
	TLS *tls.Config
}

// ProberConfig configures a Prober.
type ProberConfig struct {
	// Timeout is probe_timeout: dial, read and write timeouts and the deadline
	// of one probe. Default 1s.
	Timeout time.Duration
	// ConnMaxLifetime recycles kept connections so a probe does not ride one
	// TCP connection for ever. Default 5m.
	ConnMaxLifetime time.Duration
	// Clock stamps ProbeResult.At and measures latency; default RealClock.
	Clock Clock
	// Logger receives the driver's messages at debug level; nil discards.
	Logger *slog.Logger
}

// Prober probes MySQL/MariaDB instances. It keeps one small *sql.DB per
// instance and account (so a probe normally costs one round trip on a kept
// connection), and never piles probes up behind a hung server: while a probe
// of an instance is still in flight, the next one reports a timeout at once
// instead of opening another connection.
type Prober struct {
	cfg    ProberConfig
	log    *slog.Logger
	ctx    context.Context // parent of every probe goroutine; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	pools  map[string]*pool
	closed bool
	// timeoutNs is cfg.Timeout, which SetTimeout may replace while probes
	// run; read it through timeout(), never from cfg.
	timeoutNs atomic.Int64
}

type pool struct {
	db       *sql.DB
	password string
	// timeout is the prober timeout db's connector was built with.
	timeout  time.Duration
	inflight bool
	// replicaSQL is the replica status statement that worked last time
	// (topology.ProbeReplicaStatus picks the old or the new name).
	replicaSQL string
	// positionVar is the variable holding the server's GTID position,
	// gtid_binlog_pos (MariaDB) or gtid_executed (MySQL), learnt from
	// @@version by the first probe that answers. Like replicaSQL it is only
	// touched by the one probe in flight.
	positionVar string
}

// graceAfterTimeout is how long a probe may overrun its deadline before the
// caller stops waiting for the driver to notice.
const graceAfterTimeout = 100 * time.Millisecond

// NewProber returns a Prober; call Close to stop in-flight probes and close
// the kept connections.
func NewProber(cfg ProberConfig) *Prober {
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	if cfg.ConnMaxLifetime <= 0 {
		cfg.ConnMaxLifetime = 5 * time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = RealClock{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Prober{cfg: cfg, log: log.With("component", "prober"), ctx: ctx, cancel: cancel, pools: map[string]*pool{}}
	p.timeoutNs.Store(int64(cfg.Timeout))
	return p
}

// Close cancels in-flight probes, waits for their goroutines and closes every
// kept connection.
func (p *Prober) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for k, pl := range p.pools {
		if err := pl.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close pool for %s: %w", k, err))
		}
		delete(p.pools, k)
	}
	return errors.Join(errs...)
}

// Probe checks that a master answers: SELECT @@global.read_only (and
// server_id, which tells the replicas following it by another name) on a kept
// connection, within Timeout. Errors are classified with ClassifyError; a
// failure that took the whole timeout is reported as ReasonTimeout.
func (p *Prober) Probe(ctx context.Context, t Target) ProbeResult {
	res := ProbeResult{Instance: t.Addr, At: p.cfg.Clock.Now()}
	var readOnly int
	var serverID uint32
	var position string
	err := p.run(ctx, t, func(ctx context.Context, pl *pool) error {
		if pl.positionVar == "" {
			var version string
			var err error
			readOnly, serverID, version, err = topology.ProbeMasterVersion(ctx, pl.db)
			if err == nil {
				pl.positionVar = topology.PositionVariable(version)
			}
			return err
		}
		var err error
		readOnly, serverID, position, err = topology.ProbeMasterPosition(ctx, pl.db, pl.positionVar)
		return err
	})
	res.Latency = p.cfg.Clock.Now().Sub(res.At)
	res.Reason = p.classify(err, res.Latency)
	res.OK = res.Reason == ReasonOK
	if err != nil {
		res.Detail = err.Error()
	} else {
		res.ReadOnly = readOnly != 0
		res.ServerID = serverID
		res.Position = strings.Join(strings.Fields(position), "")
		res.Detail = fmt.Sprintf("read_only=%d", readOnly)
	}
	return res
}

// classify turns a probe error into a Reason; the driver reports a read
// timeout as ErrInvalidConn, so a failure that used up the timeout is a
// timeout whatever the error says.
func (p *Prober) classify(err error, elapsed time.Duration) Reason {
	r := ClassifyError(err)
	if err != nil && r != ReasonTimeout && !r.Alive() && elapsed >= p.timeout()*9/10 {
		return ReasonTimeout
	}
	return r
}

// run executes fn against t's pool in a goroutine owned by the Prober, and
// waits at most Timeout plus a grace period. If fn overruns, run returns a
// timeout and the pool stays marked in flight until fn really returns.
func (p *Prober) run(ctx context.Context, t Target, fn func(context.Context, *pool) error) error {
	pl, err := p.acquire(t)
	if err != nil {
		return err
	}
	timeout := p.timeout()
	pctx, cancel := context.WithTimeout(p.ctx, timeout)
	stop := context.AfterFunc(ctx, cancel)
	done := make(chan error, 1)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer cancel()
		defer stop()
		err := fn(pctx, pl)
		p.mu.Lock()
		pl.inflight = false
		p.mu.Unlock()
		done <- err
	}()
	timer := time.NewTimer(timeout + graceAfterTimeout)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil && ctx.Err() != nil {
			return fmt.Errorf("probe %s: %w", t.Addr, ctx.Err())
		}
		if err != nil {
			return fmt.Errorf("probe %s: %w", t.Addr, err)
		}
		return nil
	case <-timer.C:
		return fmt.Errorf("probe %s: no answer within %s: %w", t.Addr, timeout, context.DeadlineExceeded)
	case <-ctx.Done():
		return fmt.Errorf("probe %s: %w", t.Addr, ctx.Err())
	}
}

// acquire returns t's pool marked in flight, creating it on first use.
func (p *Prober) acquire(t Target) (*pool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrProberClosed
	}
	key := t.Addr + "\x00" + t.User
	pl, ok := p.pools[key]
	timeout := p.timeout()
	if ok && (pl.password != t.Password || pl.timeout != timeout) && !pl.inflight {
		// Credentials or probe_timeout changed: a fresh pool (its
		// connector carries both); the old one has nothing in flight.
		_ = pl.db.Close()
		delete(p.pools, key)
		ok = false
	}
	if !ok {
		db, err := p.open(t)
		if err != nil {
			return nil, err
		}
		pl = &pool{db: db, password: t.Password, timeout: timeout}
		p.pools[key] = pl
	}
	if pl.inflight {
		return nil, errInFlight
	}
	pl.inflight = true
	return pl, nil
}

func (p *Prober) open(t Target) (*sql.DB, error) {
	c := mysql.NewConfig()
	c.User = t.User
	c.Passwd = t.Password
	c.Net = "tcp"
	c.Addr = t.Addr
	timeout := p.timeout()
	c.Timeout = timeout
	c.ReadTimeout = timeout
	c.WriteTimeout = timeout
	c.Logger = driverLogger{p.log.With("instance", t.Addr)}
	// Never send a file or the password to a server that asks for one:
	// the monitor account goes to every instance.
	c.AllowAllFiles = false
	c.AllowCleartextPasswords = false
	c.TLS = t.TLS
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, fmt.Errorf("%w: connector for %s: %w", ErrBadConfig, t.Addr, err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(p.cfg.ConnMaxLifetime)
	db.SetConnMaxIdleTime(p.cfg.ConnMaxLifetime)
	return db, nil
}

// driverLogger sends go-sql-driver/mysql's messages ("unexpected EOF",
// "closing bad idle connection") to slog at debug level instead of stderr.
type driverLogger struct{ l *slog.Logger }

// Print implements mysql.Logger.
func (d driverLogger) Print(v ...any) { d.l.Debug(fmt.Sprint(v...)) }
