// Package sandbox starts real MariaDB servers (mariadbd) as plain processes on
// loopback ports with temporary data directories and wires them into a
// replication topology: instance 0 is the master, the others are its replicas.
//
// It is used by the integration tests of many packages, by the benchmarks and
// by `quorumha sandbox up|status|down`. Data directories are copied from a
// template made once per mariadbd version (cached under os.TempDir), so a
// master with two replicas starts in about a second.
package sandbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// BinlogIndex is the binlog index file in every instance's datadir (which
// also holds relay-bin.index on replicas).
const BinlogIndex = "mysql-bin.index"

// Accounts and the test schema created on every instance. They live in the
// template data directory, so they exist on every server before binary
// logging starts and the GTID sets of all instances begin empty and equal.
const (
	// AdminUser is the controller's account: ALL PRIVILEGES WITH GRANT OPTION on '%'.
	AdminUser = "quorumha"
	// AdminPassword is AdminUser's password.
	AdminPassword = "quorumha-pass"
	// ReplUser is the replication account: REPLICATION SLAVE, REPLICATION CLIENT, SLAVE MONITOR.
	ReplUser = "repl"
	// ReplPassword is ReplUser's password.
	ReplPassword = "repl-pass"
	// AppUser is an application account for write loads: SELECT, INSERT,
	// UPDATE, DELETE, CREATE, DROP, ALTER and INDEX on TestDB only (no SUPER,
	// so it is refused by read_only servers).
	AppUser = "app"
	// AppPassword is AppUser's password.
	AppPassword = "app-pass"
	// TestDB is the schema AppUser may write to.
	TestDB = "qha_test"
)

// Host is the address a sandbox server binds to unless Options.Placement
// puts it elsewhere.
const Host = "127.0.0.1"

// Timeouts used while starting and stopping servers.
const (
	readyTimeout    = 30 * time.Second
	stopTimeout     = 20 * time.Second
	killWaitTimeout = 10 * time.Second
)

// Options configures Start.
type Options struct {
	// Replicas is the number of replicas of instance 0; 0 means the default, 2.
	// Use a negative value for a lone master.
	Replicas int
	// GTID selects MASTER_USE_GTID=slave_pos; false uses binlog file and position.
	GTID bool
	// SemiSync enables rpl_semi_sync_master_enabled on the master and
	// rpl_semi_sync_slave_enabled on every server, so a former master can
	// rejoin as a semi-sync replica; every server gets the master side's
	// timeout (5000 ms) and wait point (AFTER_SYNC), so a promoted replica
	// waits for ACKs as the old master did.
	SemiSync bool
	// BaseDir is the parent directory of the data directories; "" makes one
	// with os.MkdirTemp. Stop removes what Start created.
	BaseDir string
	// ExtraConfig holds extra my.cnf lines ("key=value") for every server;
	// they come last, so they override the sandbox's settings.
	ExtraConfig []string
	// Detach lets the servers outlive this Go process (`quorumha sandbox up`).
	Detach bool
	// Placement, when it has an entry for instance i, runs that instance
	// inside a network namespace and/or on another address than Host (a
	// zone of a test network, or the root namespace's bridge address), so
	// tests can cut a server's host off. The instance is then addressed as
	// IP:port everywhere: report_host, its replicas' CHANGE MASTER, Addr.
	// Instances without an entry run as before, on Host in the root
	// namespace. The sandbox itself connects to every instance from the
	// root namespace, so a placed instance must be routable from there.
	Placement []Placement
	// Nice, when not 0, starts every server under nice(1) at that
	// niceness (negative needs root): tests that run beside others give
	// the servers whose timing they assert first call on the CPU.
	Nice int
	// HeartbeatPeriod, when set, is the replicas' MASTER_HEARTBEAT_PERIOD;
	// zero leaves MariaDB's default (half of slave_net_timeout).
	HeartbeatPeriod time.Duration
	// Logger receives progress messages; nil discards them.
	Logger *slog.Logger
}

// Placement is where one instance runs: NetNS is the network namespace
// (`ip netns` name, "" for the root namespace) and IP the address it binds
// and is known by ("" means Host; inside a namespace it must be one of that
// namespace's addresses).
type Placement struct {
	NetNS string
	IP    string
}

// Instance describes one server of a sandbox.
type Instance struct {
	Name     string `json:"name"`            // "node0", "node1", ...
	Host     string `json:"host"`            // the address it binds: Host unless placed
	NetNS    string `json:"netns,omitempty"` // network namespace, "" for the root one
	Port     int    `json:"port"`            // TCP port
	ServerID int    `json:"server_id"`       // 1, 2, 3, ...
	DataDir  string `json:"data_dir"`
	Socket   string `json:"socket"`
	PID      int    `json:"pid"` // of the last mariadbd started for this instance
}

// Addr returns "host:port".
func (i Instance) Addr() string {
	return net.JoinHostPort(i.host(), strconv.Itoa(i.Port))
}

// host is the instance's address; state files written before placements
// existed may lack it.
func (i Instance) host() string {
	if i.Host == "" {
		return Host
	}
	return i.Host
}

// PIDFile is the server's pid file, for an agent's pid_file: it tells
// whether the server runs (a kill -9 leaves it naming a dead process).
func (i Instance) PIDFile() string { return filepath.Join(i.DataDir, "mariadbd.pid") }

// defaultsFile is the my.cnf of the instance.
func (i Instance) defaultsFile() string { return filepath.Join(i.DataDir, "my.cnf") }

// errorLog is the server's error log.
func (i Instance) errorLog() string { return filepath.Join(i.DataDir, "error.log") }

// TmpDir is the server's own tmpdir, next to its data directory (not in it:
// a directory there shows as a database). In a shared /tmp every server's
// on-disk temporary tables sit among whatever else uses or cleans /tmp; one
// vanished under a switchover's process-list query in CI (cause not found).
func (i Instance) TmpDir() string { return i.DataDir + ".tmp" }

// Sandbox is a set of running MariaDB servers. Its methods are safe for
// concurrent use.
type Sandbox struct {
	log        *slog.Logger
	dir        string
	createdDir bool
	opts       Options

	mu        sync.Mutex
	instances []Instance
	procs     []*process // nil entries when detached, loaded or not running
	wg        sync.WaitGroup
	stopped   bool
}

// Available reports whether the MariaDB binaries the sandbox needs are installed.
func Available() error {
	var missing []string
	for _, bin := range []string{"mariadbd", "mariadb-install-db"} {
		if _, err := findBinary(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("sandbox: %v not found in PATH or /usr/sbin: install MariaDB (apt-get install mariadb-server)", missing)
	}
	return nil
}

// findBinary looks name up in PATH, then in /usr/sbin and /usr/local/sbin,
// where Debian installs mariadbd (not in a normal user's PATH).
func findBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/local/mysql/bin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("sandbox: %s not found: %w", name, exec.ErrNotFound)
}

// New starts a sandbox for a test and stops it in t.Cleanup. When MariaDB is
// not installed the test is skipped, or fails if the environment variable CI
// is "true".
func New(t testing.TB, opts Options) *Sandbox {
	t.Helper()
	// make test-short promises no MariaDB: a test that gets here under
	// -short lacks its testing.Short() guard.
	if testing.Short() {
		t.Fatalf("sandbox.New under -short: guard this test with testing.Short()")
	}
	if err := Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v", err)
		}
		t.Skipf("%v", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("sandbox: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("sandbox stop: %v", err)
		}
	})
	return s
}

// testWriter sends log output to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(trimNewline(p)))
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	if n := len(p); n > 0 && p[n-1] == '\n' {
		return p[:n-1]
	}
	return p
}

// Start creates the data directories, starts the servers and sets up
// replication, returning once every replica is replicating. On error
// everything started is stopped again.
func Start(ctx context.Context, opts Options) (*Sandbox, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if opts.Replicas == 0 {
		opts.Replicas = 2
	}
	if opts.Replicas < 0 {
		opts.Replicas = 0
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Sandbox{log: opts.Logger.With("component", "sandbox"), opts: opts}
	begin := time.Now()
	if err := s.makeDir(); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			if err := s.Stop(); err != nil {
				s.log.Warn("cleanup after failed start", "err", err)
			}
		}
	}()
	tmpl, err := ensureTemplate(ctx, s.log)
	if err != nil {
		return nil, err
	}
	n := 1 + opts.Replicas
	s.instances = make([]Instance, n)
	s.procs = make([]*process, n)
	for i := range n {
		inst, err := s.prepareInstance(ctx, i, tmpl)
		if err != nil {
			return nil, err
		}
		s.instances[i] = inst
	}
	if err := s.startAll(ctx); err != nil {
		return nil, err
	}
	if err := s.saveState(); err != nil {
		return nil, err
	}
	if err := s.setupReplication(ctx); err != nil {
		return nil, err
	}
	if err := s.WaitReplicating(ctx); err != nil {
		return nil, err
	}
	ok = true
	s.log.Info("sandbox started", "dir", s.dir, "instances", n, "gtid", opts.GTID,
		"semi_sync", opts.SemiSync, "took", time.Since(begin).Round(time.Millisecond))
	return s, nil
}

// makeDir creates the base directory and records whether Start owns it.
func (s *Sandbox) makeDir() error {
	if s.opts.BaseDir == "" {
		d, err := os.MkdirTemp("", "qha-sandbox-")
		if err != nil {
			return fmt.Errorf("sandbox: temp dir: %w", err)
		}
		s.dir, s.createdDir = d, true
		return nil
	}
	d, err := filepath.Abs(s.opts.BaseDir)
	if err != nil {
		return fmt.Errorf("sandbox: base dir: %w", err)
	}
	if _, err := os.Stat(d); errors.Is(err, os.ErrNotExist) {
		s.createdDir = true
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		return fmt.Errorf("sandbox: base dir: %w", err)
	}
	s.dir = d
	return nil
}

// startAll starts every instance in parallel.
func (s *Sandbox) startAll(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(s.instances))
	for i := range s.instances {
		wg.Go(func() { errs[i] = s.startWithPortRetry(ctx, i) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Dir returns the sandbox's base directory (it holds sandbox.json).
func (s *Sandbox) Dir() string { return s.dir }

// Instances returns a copy of the instances, master first.
func (s *Sandbox) Instances() []Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Instance(nil), s.instances...)
}

// Instance returns instance i; it panics when i is out of range.
func (s *Sandbox) Instance(i int) Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.instances[i]
}

// DSN returns a go-sql-driver DSN for instance i over TCP with short
// timeouts and interpolateParams=true.
func (s *Sandbox) DSN(i int, user, password string) string {
	return s.DSNVia(i, "tcp", user, password)
}

// DSNVia is DSN over the named go-sql-driver network: "tcp", or a dialer
// registered with mysql.RegisterDialContext (such as one that connects from
// inside a network namespace).
func (s *Sandbox) DSNVia(i int, network, user, password string) string {
	c := mysql.NewConfig()
	c.User = user
	c.Passwd = password
	c.Net = network
	c.Addr = s.Instance(i).Addr()
	c.Timeout, c.ReadTimeout, c.WriteTimeout = adminTimeouts.Connect, adminTimeouts.Read, adminTimeouts.Write
	c.InterpolateParams = true
	return c.FormatDSN()
}

// AdminDB opens a connection pool to instance i as AdminUser; the caller closes it.
func (s *Sandbox) AdminDB(i int) (*sql.DB, error) {
	db, err := sql.Open("mysql", s.DSN(i, AdminUser, AdminPassword))
	if err != nil {
		return nil, fmt.Errorf("sandbox: open %s: %w", s.Instance(i).Name, err)
	}
	return db, nil
}

// Stop stops every server (cleanly, then SIGKILL after a bound), waits for
// the processes and removes what Start created: the base directory when it
// made it, otherwise the instances' directories and the state file.
func (s *Sandbox) Stop() error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	n := len(s.instances)
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = s.StopInstance(ctx, i) })
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			continue
		}
		s.log.Warn("clean stop failed, killing", "instance", i, "err", err)
		errs[i] = s.Kill(i)
	}
	s.wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return s.removeFiles()
}

// removeFiles deletes the directories Start made.
func (s *Sandbox) removeFiles() error {
	if s.dir == "" {
		return nil
	}
	for _, inst := range s.Instances() {
		// A socket moved out of a deep data directory outlives a killed server.
		if filepath.Dir(inst.Socket) != inst.DataDir {
			if err := os.Remove(inst.Socket); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.log.Warn("remove socket", "path", inst.Socket, "err", err)
			}
		}
	}
	if s.createdDir {
		if err := os.RemoveAll(s.dir); err != nil {
			return fmt.Errorf("sandbox: remove %s: %w", s.dir, err)
		}
		return nil
	}
	var errs []error
	for _, inst := range s.Instances() {
		errs = append(errs, os.RemoveAll(inst.DataDir), os.RemoveAll(inst.TmpDir()))
	}
	if err := os.Remove(filepath.Join(s.dir, stateFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sandbox: remove files: %w", err)
	}
	return nil
}
