package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/quorumha/quorumha/topology"
)

// FenceConfig is the agent.fence section: how the agent reaches its own
// server to fence it, and where it keeps the lease's state. A nil
// *FenceConfig disables fencing (leases are answered, never enforced).
type FenceConfig struct {
	// Socket is the server's unix socket; Address (host:port) is used
	// when Socket is empty.
	Socket, Address string
	// User and Password are the fencing account (Password may be empty
	// with unix_socket authentication).
	User, Password string
	// StateFile keeps {armed, fenced, reason, since, voters, ttl} across
	// agent restarts.
	StateFile string
	// CheckInterval is how often, while fenced, the agent checks the
	// server is still read-only and locked (default 250ms).
	CheckInterval time.Duration
	// LockWait bounds the global read lock's (FTWRL) wait for sessions
	// holding table locks (lock_wait_timeout; default 3s).
	LockWait time.Duration
}

const (
	defaultFenceCheckInterval = 250 * time.Millisecond
	defaultFenceLockWait      = 3 * time.Second
	// maxFenceActions bounds the actions kept in the status.
	maxFenceActions = 32
)

// fencer is what the enforcement needs from the server: apply the fence,
// check it still stands, release the lock. The SQL one is sqlFencer;
// tests use fakes.
type fencer interface {
	// apply sets read_only, kills client sessions and takes the global
	// read lock (what is not in place already), and says what it did and
	// what failed.
	apply(ctx context.Context) (actions, errs []string)
	// check returns an error when the fence no longer stands (read_only
	// off, lock session gone, server unreachable).
	check(ctx context.Context) error
	// release drops the global read lock; read_only stays as it is.
	release(ctx context.Context) error
	close()
}

// fenceState is the Server's lease and fence: the pure core plus the
// enforcement's record. mu guards everything but f, which op serializes
// (an apply and a clear never interleave).
type fenceState struct {
	cfg   FenceConfig
	log   *slog.Logger
	clock func() time.Duration
	wall  func() time.Time
	pid   string // the server's pid file, "" when unknown
	kick  chan struct{}

	op sync.Mutex
	f  fencer
	// lastProblem and lastApplyErr (guarded by op) keep a server that
	// stays down from flooding the log and the actions.
	lastProblem, lastApplyErr string

	mu      sync.Mutex
	core    *leaseCore
	applied bool // an apply finished since the core fenced
	actions []string
	errs    []string
}

func newFenceState(cfg FenceConfig, pidFile string, f fencer, log *slog.Logger) (*fenceState, error) {
	if cfg.StateFile == "" {
		return nil, errors.New("fence: state_file is required")
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = defaultFenceCheckInterval
	}
	st, err := loadLeaseState(cfg.StateFile)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	fs := &fenceState{cfg: cfg, log: log, pid: pidFile, f: f, kick: make(chan struct{}, 1),
		clock: func() time.Duration { return time.Since(start) }, wall: time.Now}
	fs.core = newLeaseCore(st, fs.clock())
	switch {
	case st.Fenced:
		log.Warn("agent restarted while fenced: re-applying the fence", "reason", st.Reason, "since", st.Since)
	case st.Armed:
		log.Warn("agent restarted while armed: the start counts as the last renewal; without a majority renewing it fences",
			"ttl_ms", st.TTLMillis, "voters", st.Voters)
	}
	return fs, nil
}

func (fs *fenceState) poke() {
	select {
	case fs.kick <- struct{}{}:
	default:
	}
}

// persistLocked saves the core's state; fs.mu is held, so saves happen in
// the order of the changes.
func (fs *fenceState) persistLocked() error {
	if err := saveLeaseState(fs.cfg.StateFile, fs.core.st); err != nil {
		fs.log.Error("cannot persist the lease state", "err", err)
		return err
	}
	return nil
}

// renew handles one validated renewal.
func (fs *fenceState) renew(req LeaseRequest) (LeaseResponse, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	now := fs.clock()
	wasArmed := fs.core.st.Armed
	ev := fs.core.renew(req, now, fs.wall())
	var err error
	switch ev {
	case evFence:
		fs.log.Warn("fencing: "+fs.core.st.Reason, "late_renewal_from", req.Controller)
		fs.onFencedLocked()
	case evPersist:
		if !wasArmed {
			fs.log.Info("lease armed", "reason", fs.core.st.Reason, "voters", fs.core.st.Voters)
		}
		if perr := fs.persistLocked(); perr != nil && !wasArmed {
			// Armed in memory (the safe side), but a restart would forget
			// it: say so to the controller.
			err = fmt.Errorf("lease armed but not persisted: %w", perr)
		}
	}
	if ev == evFence || !fs.core.st.Fenced {
		// The expiry moved (or the fence is new): re-arm the loop's
		// timer. A fenced agent's loop runs on its check interval.
		fs.poke()
	}
	resp := fs.core.response(now)
	resp.State = fs.stateLocked(now)
	return resp, err
}

// onFencedLocked records a fresh fence and persists it; the loop applies.
func (fs *fenceState) onFencedLocked() {
	fs.applied = false
	fs.actions, fs.errs = nil, nil
	if err := fs.persistLocked(); err != nil {
		fs.errs = append(fs.errs, "persist fence: "+err.Error())
	}
}

func (fs *fenceState) stateLocked(now time.Duration) string {
	s := fs.core.state(now)
	if s == FenceFenced && !fs.applied {
		return FenceFencing
	}
	return s
}

// status is GET /v1/fence's answer.
func (fs *fenceState) status() FenceStatus {
	fs.mu.Lock()
	now := fs.clock()
	if fs.core.tick(now, fs.wall()) == evFence {
		fs.onFencedLocked()
		fs.poke()
	}
	st := fs.core.status(now)
	st.State = fs.stateLocked(now)
	if st.Fenced {
		st.Actions = append([]string(nil), fs.actions...)
		st.Errors = append([]string(nil), fs.errs...)
	}
	fs.mu.Unlock()
	if fs.pid != "" {
		if running, err := serverRunning(fs.pid); err == nil {
			st.ServerRunning = &running
		} else if st.Fenced {
			st.Errors = append(st.Errors, err.Error())
		}
	}
	return st
}

// enforce applies the fence once the core is fenced, and re-checks it
// every check interval. Callers do not hold fs.mu.
func (fs *fenceState) enforce(ctx context.Context) {
	fs.op.Lock()
	defer fs.op.Unlock()
	fs.mu.Lock()
	fenced, applied := fs.core.st.Fenced, fs.applied
	fs.mu.Unlock()
	if !fenced {
		return
	}
	if applied {
		err := fs.f.check(ctx)
		if err == nil {
			fs.lastProblem = ""
			return
		}
		// A server that stays down fails every check the same way: say
		// it once, not every check interval.
		if err.Error() != fs.lastProblem {
			fs.log.Warn("fence no longer stands: re-applying", "err", err)
			fs.record([]string{"re-applying: " + err.Error()}, nil, false)
		}
		fs.lastProblem = err.Error()
	}
	actions, errs := fs.f.apply(ctx)
	if problem := strings.Join(errs, "; "); len(errs) == 0 || problem != fs.lastApplyErr {
		fs.log.Warn("fence applied", "actions", strings.Join(actions, "; "), "errors", problem)
		fs.lastApplyErr = problem
	}
	fs.record(actions, errs, true)
}

// record appends actions (keeping the last maxFenceActions) and, for an
// apply attempt, replaces the errors with its own: the errors say whether
// the latest attempt was complete.
func (fs *fenceState) record(actions, errs []string, attempt bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if !fs.core.st.Fenced {
		return // cleared meanwhile
	}
	fs.actions = append(fs.actions, actions...)
	if n := len(fs.actions); n > maxFenceActions {
		fs.actions = append([]string(nil), fs.actions[n-maxFenceActions:]...)
	}
	if attempt {
		fs.errs = append([]string(nil), errs...)
		fs.applied = true
	}
}

// fenceNow is POST /v1/fence: fence at a controller's request (armed or
// not), apply or re-check at once, and answer the state after it.
func (fs *fenceState) fenceNow(ctx context.Context, req FenceRequest) FenceStatus {
	fs.mu.Lock()
	if fs.core.requestFence(req, fs.wall()) {
		fs.log.Warn("fencing: " + fs.core.st.Reason)
		fs.onFencedLocked()
	}
	fs.mu.Unlock()
	fs.enforce(ctx)
	fs.poke()
	return fs.status()
}

// clear is POST /v1/fence/clear: release the lock, disarm, forget.
func (fs *fenceState) clear(ctx context.Context, req FenceRequest) (FenceStatus, error) {
	fs.op.Lock()
	rerr := fs.f.release(ctx)
	fs.mu.Lock()
	fs.core.clear(req, fs.wall())
	fs.applied, fs.actions, fs.errs = false, nil, nil
	perr := fs.persistLocked()
	fs.mu.Unlock()
	fs.op.Unlock()
	fs.poke()
	fs.log.Info("fence cleared", "by", req.Controller, "reason", req.Reason)
	st := fs.status()
	if rerr != nil {
		st.Errors = append(st.Errors, rerr.Error())
	}
	if perr != nil {
		return st, fmt.Errorf("fence cleared but not persisted (a restart would re-apply the old state): %w", perr)
	}
	return st, nil
}

// run is the enforcement loop: it wakes at the lease's expiry (a timer on
// the monotonic clock, reset whenever a renewal moves it) and, while
// fenced, every check interval.
func (fs *fenceState) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		fs.mu.Lock()
		now := fs.clock()
		if fs.core.tick(now, fs.wall()) == evFence {
			fs.log.Warn("fencing: " + fs.core.st.Reason)
			fs.onFencedLocked()
		}
		fenced := fs.core.st.Fenced
		wake, ok := fs.core.nextWake(now)
		fs.mu.Unlock()
		wait := time.Duration(-1)
		switch {
		case fenced:
			fs.enforce(ctx)
			wait = fs.cfg.CheckInterval
		case ok:
			wait = max(wake-now, 0)
		}
		timer.Stop()
		var tc <-chan time.Time
		if wait >= 0 {
			timer.Reset(wait)
			tc = timer.C
		}
		select {
		case <-ctx.Done():
			fs.op.Lock()
			fs.f.close()
			fs.op.Unlock()
			return
		case <-tc:
		case <-fs.kick:
		}
	}
}

// sqlFencer fences the server over SQL through topology, on a connection
// it opens when first needed and keeps (the pool reconnects after a
// server restart).
type sqlFencer struct {
	cfg  FenceConfig
	log  *slog.Logger
	conn *topology.Conn
	lock *topology.GlobalReadLock
}

func (f *sqlFencer) connect(ctx context.Context) (*topology.Conn, error) {
	if f.conn != nil {
		return f.conn, nil
	}
	cred := topology.Credentials{User: f.cfg.User, Password: f.cfg.Password}
	to := topology.Timeouts{Connect: 2 * time.Second, Read: 5 * time.Second, Write: 5 * time.Second}
	var (
		c   *topology.Conn
		err error
	)
	if f.cfg.Socket != "" {
		c, err = topology.OpenSocket(ctx, f.cfg.Socket, cred, to, f.log)
	} else {
		c, err = topology.Open(ctx, f.cfg.Address, cred, to, f.log)
	}
	if err != nil {
		return nil, err
	}
	f.conn = c
	return c, nil
}

func (f *sqlFencer) apply(ctx context.Context) (actions, errs []string) {
	c, err := f.connect(ctx)
	if err == nil {
		err = c.Ping(ctx)
	}
	if err != nil {
		// Down or unreachable: nothing below could work. A server that
		// is not running says so in ServerRunning.
		return nil, []string{"server unreachable: " + err.Error()}
	}
	if f.lock != nil {
		if err := f.lock.Alive(ctx); err != nil {
			_ = f.lock.Release(ctx) // the session is gone with its lock
			f.lock = nil
			actions = append(actions, "global read lock lost: "+err.Error())
		}
	}
	var spare []uint64
	if f.lock != nil {
		spare = append(spare, f.lock.ID())
	}
	// read_only and the kills run together: a commit waiting for a
	// semi-sync ACK holds read_only back until it is killed (see
	// topology's FenceWrites), and the lease's drift leaves no time for
	// the semi-sync timeout.
	killed, err := c.FenceWrites(ctx, spare...)
	if err == nil {
		actions = append(actions, strings.Join(c.Version().ReadOnlySQL(true), ", "))
	}
	if len(killed) > 0 || err == nil {
		actions = append(actions, fmt.Sprintf("killed %d client sessions", len(killed)))
	}
	if err != nil {
		errs = append(errs, err.Error())
	}
	if f.lock == nil {
		wait := f.cfg.LockWait
		if wait <= 0 {
			wait = defaultFenceLockWait
		}
		lock, err := c.LockGlobalRead(ctx, wait)
		if err != nil {
			errs = append(errs, err.Error())
		} else {
			f.lock = lock
			actions = append(actions, fmt.Sprintf("global read lock held (session %d)", lock.ID()))
			// Sessions that connected meanwhile now wait on the lock:
			// kill them, so their clients get an error rather than a
			// write once the lock goes.
			again, err := c.KillClientSessions(ctx, lock.ID())
			if len(again) > 0 {
				actions = append(actions, fmt.Sprintf("killed %d client sessions that came meanwhile", len(again)))
			}
			if err != nil {
				errs = append(errs, err.Error())
			}
		}
	}
	return actions, errs
}

func (f *sqlFencer) check(ctx context.Context) error {
	c, err := f.connect(ctx)
	if err != nil {
		return err
	}
	off, err := c.WritesOff(ctx)
	if err != nil {
		return err
	}
	if !off {
		return errors.New("read_only is off")
	}
	if f.lock == nil {
		return errors.New("no global read lock held")
	}
	return f.lock.Alive(ctx)
}

func (f *sqlFencer) release(ctx context.Context) error {
	if f.lock == nil {
		return nil
	}
	// Sessions waiting on the lock are writes sent to a fenced master:
	// released, an account with READ ONLY ADMIN would write through
	// read_only. Kill them first, so their clients get an error.
	var errs []error
	if c, err := f.connect(ctx); err != nil {
		errs = append(errs, err)
	} else if _, err := c.KillClientSessions(ctx, f.lock.ID()); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, f.lock.Release(ctx))
	f.lock = nil
	return errors.Join(errs...)
}

func (f *sqlFencer) close() {
	if f.lock != nil {
		// The agent stops: the lock would go with its session anyway.
		// read_only stays on, and a restarted agent re-applies the fence
		// from its state file.
		_ = f.lock.Release(context.Background())
		f.lock = nil
	}
	if f.conn != nil {
		_ = f.conn.Close()
		f.conn = nil
	}
}
