package sandbox

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// maxSocketPath keeps the unix socket path below the kernel's sun_path limit (108).
const maxSocketPath = 100

// portAttempts bounds how often an instance is restarted on a new port when
// the one picked was taken by someone else in the meantime.
const portAttempts = 5

// portBusyWait bounds how long StartInstance waits for its port to be free.
const portBusyWait = 10 * time.Second

// errPortInUse marks a start that failed because the port was taken.
var errPortInUse = errors.New("port already in use")

// process is a mariadbd started (and not detached) by this Sandbox. A
// goroutine owned by the Sandbox waits for it and closes done.
type process struct {
	pid  int
	done chan struct{}
	err  error // Wait's result, set before done is closed
	// signalled is set before this package signals the process, so its exit
	// is expected; any other exit is logged with the error log's tail, to
	// explain a server that vanished under a test.
	signalled atomic.Bool
}

// startAndWait starts cmd and waits for it in a goroutine of s.wg that
// stays locked to its OS thread for the server's whole life. Pdeathsig is
// delivered when the *thread* that forked the child exits, not the process
// (golang/go#27505), and Go may end a thread whenever a goroutine returns
// while locked to it: a thread kept busy waiting can never be that thread.
// It returns Start's error.
func (s *Sandbox) startAndWait(cmd *exec.Cmd, p *process, inst Instance, logOffset int64) error {
	started := make(chan error, 1)
	s.wg.Go(func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			close(p.done)
			return
		}
		p.pid = cmd.Process.Pid
		started <- nil
		p.err = cmd.Wait()
		if !p.signalled.Load() {
			s.log.Warn("mariadbd exited unexpectedly", "instance", inst.Name, "pid", p.pid, "status", p.err,
				"error_log_tail", newLogTail(inst.errorLog(), logOffset))
		}
		close(p.done)
	})
	return <-started
}

// prepareInstance copies the template into the instance's data directory.
func (s *Sandbox) prepareInstance(ctx context.Context, i int, tmpl string) (Instance, error) {
	name := fmt.Sprintf("node%d", i)
	inst := Instance{
		Name:     name,
		Host:     Host,
		ServerID: i + 1,
		DataDir:  filepath.Join(s.dir, name),
	}
	if i < len(s.opts.Placement) {
		p := s.opts.Placement[i]
		inst.NetNS = p.NetNS
		if p.IP != "" {
			if net.ParseIP(p.IP) == nil {
				return Instance{}, fmt.Errorf("sandbox: %s: placement IP %q is not an IP address", name, p.IP)
			}
			inst.Host = p.IP
		}
	}
	inst.Socket = filepath.Join(inst.DataDir, "mariadbd.sock")
	if len(inst.Socket) > maxSocketPath {
		// Deep BaseDirs (t.TempDir) would overflow sun_path; the socket is
		// optional for us, so put it next to the data in a short path.
		inst.Socket = filepath.Join(os.TempDir(), fmt.Sprintf("qha-%d-%s.sock", os.Getpid(), randomSuffix()))
	}
	if err := copyDir(ctx, tmpl, inst.DataDir); err != nil {
		return Instance{}, err
	}
	return inst, nil
}

// randomSuffix returns a short string unique enough for socket names.
func randomSuffix() string {
	return fmt.Sprintf("%x", time.Now().UnixNano()&0xffffffffff)
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before mariadbd binds it; startWithPortRetry handles that.
func freePort() (int, error) {
	l, err := net.Listen("tcp", Host+":0")
	if err != nil {
		return 0, fmt.Errorf("sandbox: free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("sandbox: free port: %w", err)
	}
	return port, nil
}

// startWithPortRetry picks a port, writes my.cnf and starts instance i,
// trying another port when the chosen one turns out to be taken.
func (s *Sandbox) startWithPortRetry(ctx context.Context, i int) error {
	var err error
	for range portAttempts {
		var port int
		port, err = freePort()
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.instances[i].Port = port
		inst := s.instances[i]
		s.mu.Unlock()
		cnf := myCnf(inst, i == 0, s.opts)
		if err = os.WriteFile(inst.defaultsFile(), []byte(cnf), 0o644); err != nil {
			return fmt.Errorf("sandbox: %s: write my.cnf: %w", inst.Name, err)
		}
		err = s.startProcess(ctx, i)
		if !errors.Is(err, errPortInUse) {
			return err
		}
		s.log.Info("port taken, retrying", "instance", inst.Name, "port", port)
	}
	return err
}

// startProcess launches mariadbd for instance i and waits until it accepts
// connections. The error carries the tail of the error log.
func (s *Sandbox) startProcess(ctx context.Context, i int) error {
	s.mu.Lock()
	inst := s.instances[i]
	s.mu.Unlock()
	mariadbd, err := findBinary("mariadbd")
	if err != nil {
		return err
	}
	logOffset := int64(0)
	if st, err := os.Stat(inst.errorLog()); err == nil {
		logOffset = st.Size()
	}
	if err := os.MkdirAll(inst.TmpDir(), 0o700); err != nil {
		return fmt.Errorf("sandbox: %s: tmpdir: %w", inst.Name, err)
	}
	out, err := os.OpenFile(filepath.Join(inst.DataDir, "mariadbd.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("sandbox: %s: %w", inst.Name, err)
	}
	args := []string{"--defaults-file=" + inst.defaultsFile()}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root") // mariadbd refuses to run as root otherwise
	}
	argv := append([]string{mariadbd}, args...)
	if inst.NetNS != "" {
		// ip netns exec enters the namespace and execs mariadbd in place:
		// the pid is mariadbd's, so signals and pidAlive work unchanged.
		argv = append([]string{"ip", "netns", "exec", inst.NetNS}, argv...)
	}
	argv = NiceArgv(s.opts.Nice, argv)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	var p *process
	pid := 0
	if s.opts.Detach {
		// A session of its own: no controlling terminal, no SIGINT/SIGHUP
		// from the shell that ran `quorumha sandbox up`.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		err = cmd.Start()
		if err == nil {
			pid = cmd.Process.Pid // Release forgets it
			err = cmd.Process.Release()
		}
	} else {
		// Own process group (a test's Ctrl-C does not hit it mid-cleanup),
		// and do not leak servers when a test binary dies without cleanup.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		p = &process{done: make(chan struct{})}
		err = s.startAndWait(cmd, p, inst, logOffset)
		pid = p.pid
	}
	if cerr := out.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sandbox: %s: start mariadbd: %w", inst.Name, err)
	}
	s.mu.Lock()
	s.instances[i].PID = pid
	s.procs[i] = p
	inst = s.instances[i]
	s.mu.Unlock()
	s.log.Debug("mariadbd started", "instance", inst.Name, "pid", inst.PID, "port", inst.Port)

	if err := s.waitReady(ctx, i); err != nil {
		logTail := newLogTail(inst.errorLog(), logOffset)
		if kerr := s.Kill(i); kerr != nil {
			s.log.Warn("kill after failed start", "instance", inst.Name, "err", kerr)
		}
		if strings.Contains(logTail, "Address already in use") {
			return fmt.Errorf("sandbox: %s port %d: %w", inst.Name, inst.Port, errPortInUse)
		}
		return fmt.Errorf("sandbox: %s (%s, pid %d): %w\n--- %s ---\n%s",
			inst.Name, inst.Addr(), inst.PID, err, inst.errorLog(), logTail)
	}
	return nil
}

// newLogTail returns the last lines written to the log after offset.
func newLogTail(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return tailFile(path, 30)
	}
	if offset <= int64(len(b)) {
		b = b[offset:]
	}
	return tail(string(b), 30)
}

// waitReady polls instance i over TCP until it accepts the admin user, the
// process exits, or readyTimeout passes.
func (s *Sandbox) waitReady(ctx context.Context, i int) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	db, err := s.AdminDB(i)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	db.SetMaxOpenConns(1)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if !s.alive(i) {
			return errors.New("mariadbd exited during startup")
		}
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		err = s.answersAsSelf(pctx, db, i)
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not accepting connections: %w (last error: %w)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// answersAsSelf checks that the server answering on instance i's port is
// instance i (its datadir), not another sandbox's server that took the port
// while this one was down: both accept the same credentials.
func (s *Sandbox) answersAsSelf(ctx context.Context, db *sql.DB, i int) error {
	var dir string
	if err := db.QueryRowContext(ctx, "SELECT @@datadir").Scan(&dir); err != nil {
		return err
	}
	want := filepath.Clean(s.Instance(i).DataDir)
	if got := filepath.Clean(dir); got != want {
		return fmt.Errorf("port %d is answered by another server (datadir %s, want %s)", s.Instance(i).Port, got, want)
	}
	return nil
}

// alive reports whether instance i's mariadbd is running.
func (s *Sandbox) alive(i int) bool {
	s.mu.Lock()
	p, inst := s.procs[i], s.instances[i]
	s.mu.Unlock()
	if p != nil {
		select {
		case <-p.done:
			return false
		default:
			return true
		}
	}
	return pidAlive(inst)
}

// Alive reports whether the mariadbd of instance i is running.
func (s *Sandbox) Alive(i int) bool { return s.alive(i) }

// pidAlive reports whether inst.PID is a live (not zombie) mariadbd using
// inst's defaults file; checking the command line guards against PID reuse.
func pidAlive(inst Instance) bool {
	if inst.PID <= 0 {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", inst.PID))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name: "pid (comm) S ...".
	if j := bytes.LastIndexByte(stat, ')'); j >= 0 && j+2 < len(stat) && stat[j+2] == 'Z' {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", inst.PID))
	if err != nil {
		return false
	}
	if len(cmdline) == 0 {
		// exec(2) is still under way: the new image is in place (so
		// cmd.Start has returned) but its arguments are not yet set up, and
		// cmdline reads empty for that moment. The pid is the one we just
		// started, so it is alive. (A detached start once failed CI here
		// with "mariadbd exited during startup" and no error log.)
		return true
	}
	return bytes.Contains(cmdline, []byte("--defaults-file="+inst.defaultsFile()))
}

// signal sends sig to instance i's mariadbd if it is running; it reports
// whether it did.
func (s *Sandbox) signal(i int, sig syscall.Signal) (bool, error) {
	if !s.alive(i) {
		return false, nil
	}
	inst := s.Instance(i)
	s.mu.Lock()
	if p := s.procs[i]; p != nil {
		p.signalled.Store(true)
	}
	s.mu.Unlock()
	if err := syscall.Kill(inst.PID, sig); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return false, nil
		}
		return false, fmt.Errorf("sandbox: %s: signal %v to pid %d: %w", inst.Name, sig, inst.PID, err)
	}
	return true, nil
}

// waitGone waits until instance i's process has exited or ctx is done.
func (s *Sandbox) waitGone(ctx context.Context, i int) error {
	s.mu.Lock()
	p := s.procs[i]
	s.mu.Unlock()
	if p != nil {
		select {
		case <-p.done:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("sandbox: %s: still running: %w", s.Instance(i).Name, ctx.Err())
		}
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if !s.alive(i) {
			reapDetached(s.Instance(i).PID)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sandbox: %s: still running: %w", s.Instance(i).Name, ctx.Err())
		case <-tick.C:
		}
	}
}

// reapDetached collects the exit status of a detached server that is still
// a child of this process (started here with Detach), so it does not stay
// a zombie until this process exits. Other PIDs give ECHILD, ignored.
func reapDetached(pid int) {
	var ws syscall.WaitStatus
	_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
}

// Kill sends SIGKILL to instance i's mariadbd and waits until the process
// is gone. Killing a stopped instance is a no-op.
func (s *Sandbox) Kill(i int) error {
	sent, err := s.signal(i, syscall.SIGKILL)
	if err != nil || !sent {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), killWaitTimeout)
	defer cancel()
	if err := s.waitGone(ctx, i); err != nil {
		return err
	}
	s.log.Info("killed", "instance", s.Instance(i).Name)
	return nil
}

// StopInstance shuts instance i down cleanly (SIGTERM) and waits for the
// process to exit or ctx to end. Stopping a stopped instance is a no-op.
func (s *Sandbox) StopInstance(ctx context.Context, i int) error {
	sent, err := s.signal(i, syscall.SIGTERM)
	if err != nil || !sent {
		return err
	}
	if err := s.waitGone(ctx, i); err != nil {
		return err
	}
	s.log.Info("stopped", "instance", s.Instance(i).Name)
	return nil
}

// StartInstance starts instance i again with its data directory, port and
// configuration, and waits until it accepts connections. Its replication
// settings are left as they were (replicas restart their threads).
func (s *Sandbox) StartInstance(ctx context.Context, i int) error {
	s.mu.Lock()
	stopped := s.stopped
	s.mu.Unlock()
	if stopped {
		return errors.New("sandbox: StartInstance after Stop")
	}
	if s.alive(i) {
		return fmt.Errorf("sandbox: %s is already running", s.Instance(i).Name)
	}
	// The port is fixed now (replicas point at it). Should an outgoing
	// connection have taken it as its ephemeral port, wait for it to go.
	deadline := time.Now().Add(portBusyWait)
	for {
		err := s.startProcess(ctx, i)
		if err == nil {
			break
		}
		if !errors.Is(err, errPortInUse) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%w)", err, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	s.log.Info("restarted", "instance", s.Instance(i).Name)
	return s.saveState()
}

// NiceArgv prefixes argv with nice(1) -n adj when adj is not 0. nice sets
// the niceness before it execs argv in place, so the pid is the program's
// and every thread the program will make inherits it, which renicing a
// running process (nice is per thread on Linux) cannot promise.
func NiceArgv(adj int, argv []string) []string {
	if adj == 0 {
		return argv
	}
	return append([]string{"nice", "-n", strconv.Itoa(adj)}, argv...)
}
