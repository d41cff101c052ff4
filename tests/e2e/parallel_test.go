package e2e

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
	"github.com/quorumha/quorumha/tests/harness"
)

// How the package's tests share the machine. Two kinds run side by side:
//
//   - parallel(t) tests own all they use: their own sandbox (free ports,
//     data under t.TempDir), controller group (free ports) and network
//     zones (harness.NewNet picks a free subnet and unique namespace,
//     bridge and veth names under a lock). -parallel N (the Makefile's
//     TEST_PARALLEL) of them run at once.
//   - lane(t) tests are the ones whose assertions need their processes to
//     get the CPU when they ask for it: a fence within the lease TTL, lease
//     renewals that must not be starved on a short lease_ttl
//     (startIsolatedEnv), a blip that must stay under the failure
//     threshold, fixed fault schedules (TestChaos, network flaps), the
//     samplers' negative controls. One lane test runs at a time, beside the
//     parallel ones, and its servers, controllers and agents run at
//     laneNice, so the parallel tests' processes (nice 0) cannot starve
//     them: the kernel gives a nice -10 task about nine times the CPU
//     share of a nice 0 one. Before the lane, these tests ran alone, one
//     after another, before the parallel ones, which left the second core
//     idle for three minutes of `make test`.
//
// Tests that call neither (TestBench*, run only by `make bench*`) are
// serial: Go runs them first, alone.
//
// go test's own limit (-parallel) would count a lane test waiting for the
// lane as running, and would let the parallel tests take every slot
// before the lane test starts; so TestMain takes -parallel for the gate of
// the parallel tests and lifts go test's limit (every waiting test is
// only a goroutine blocked on a channel).
//
// QUORUMHA_E2E_SERIAL=1 runs every test one after another again (to tell
// a race between tests from a bug).

// laneNice is the niceness of a lane test's servers, controllers and
// agents relative to the test binary's (nice(1) adds it to the caller's;
// the tests run as root, which may lower it).
const laneNice = -10

// gate is the package's test scheduler. It is set once in TestMain,
// before any test runs, and only read after that.
var gate *testGate

type testGate struct {
	parallel chan struct{} // one token per running parallel test (the lane's under QUORUMHA_E2E_SERIAL)
	lane     chan struct{} // one token: the running lane test
	mu       sync.Mutex
	inLane   map[string]bool // top-level names of lane tests
}

// newTestGate lets n parallel tests run at once beside one lane test, or
// every test alone when serial.
func newTestGate(n int, serial bool) *testGate {
	if n < 1 {
		n = 1
	}
	g := &testGate{lane: make(chan struct{}, 1), inLane: map[string]bool{}}
	if serial {
		g.parallel = g.lane
	} else {
		g.parallel = make(chan struct{}, n)
	}
	return g
}

// take blocks until t may run in slots and frees the slot when t ends.
func (g *testGate) take(t *testing.T, slots chan struct{}) {
	slots <- struct{}{}
	t.Cleanup(func() { <-slots })
}

// parallel lets the test run beside the package's other parallel tests
// and the lane test (see the top of this file). Call it first thing, right
// after the -short skip.
func parallel(t *testing.T) {
	t.Helper()
	t.Parallel()
	gate.take(t, gate.parallel)
}

// lane runs the test in the lane: alone among the lane tests, beside the
// parallel ones, with its processes at laneNice (see the top of this
// file). Call it first thing, right after the -short skip.
func lane(t *testing.T) {
	t.Helper()
	t.Parallel()
	gate.take(t, gate.lane)
	name := topLevel(t)
	gate.mu.Lock()
	gate.inLane[name] = true
	gate.mu.Unlock()
	t.Cleanup(func() {
		gate.mu.Lock()
		delete(gate.inLane, name)
		gate.mu.Unlock()
	})
}

// niceOf is the nice(1) adjustment for the processes test t starts:
// laneNice in a lane test, 0 otherwise.
func niceOf(t testing.TB) int {
	gate.mu.Lock()
	defer gate.mu.Unlock()
	if gate.inLane[topLevel(t)] {
		return laneNice
	}
	return 0
}

func topLevel(t testing.TB) string {
	name, _, _ := strings.Cut(t.Name(), "/")
	return name
}

// niceArgv prefixes argv with nice(1) when t is a lane test.
func niceArgv(t testing.TB, argv []string) []string {
	return sandbox.NiceArgv(niceOf(t), argv)
}

// requireNice reports a thread of process pid whose niceness is not the
// test binary's own plus adj (what nice(1) -n adj gives it).
func requireNice(pid, adj int) error {
	own, err := threadNice(os.Getpid(), os.Getpid())
	if err != nil {
		return err
	}
	want := min(max(own+adj, -20), 19)
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return err
	}
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			continue
		}
		n, err := threadNice(pid, tid)
		if errors.Is(err, fs.ErrNotExist) {
			continue // the thread ended
		}
		if err != nil {
			return err
		}
		if n != want {
			return fmt.Errorf("thread %d of pid %d runs at nice %d, want %d", tid, pid, n, want)
		}
	}
	return nil
}

// threadNice reads the niceness of thread tid of process pid.
func threadNice(pid, tid int) (int, error) {
	path := fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid)
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// The fields after the command, which may hold spaces and
	// parentheses, start after its last ')': state is field 3 of the
	// line, nice field 19.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("%s: unexpected %q", path, b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 17 {
		return 0, fmt.Errorf("%s: unexpected %q", path, b)
	}
	n, err := strconv.Atoi(f[16])
	if err != nil {
		return 0, fmt.Errorf("%s: nice %q: %w", path, f[16], err)
	}
	return n, nil
}

func TestMain(m *testing.M) {
	flag.Parse()
	n := 1
	if f := flag.Lookup("test.parallel"); f != nil {
		if v, err := strconv.Atoi(f.Value.String()); err == nil {
			n = v
		}
		// Lift go test's own limit: the gate bounds the tests instead.
		if err := f.Value.Set("1000"); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: -test.parallel:", err)
			os.Exit(2)
		}
	}
	gate = newTestGate(n, os.Getenv("QUORUMHA_E2E_SERIAL") != "")
	os.Exit(m.Run())
}

// TestRequireNice checks the lane's check: a process started under
// nice(1) -n 3 passes requireNice at 3 and fails it at 0.
func TestRequireNice(t *testing.T) {
	cmd := exec.Command("nice", "-n", "3", "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	// nice sets the niceness, then execs sleep: wait for the exec.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := harness.Poll(ctx, 10*time.Millisecond, func() error {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid))
		if err != nil || strings.TrimSpace(string(b)) != "sleep" {
			return fmt.Errorf("not sleep yet: %q %v", b, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := requireNice(cmd.Process.Pid, 3); err != nil {
		t.Errorf("started at +3: %v", err)
	}
	if err := requireNice(cmd.Process.Pid, 0); err == nil {
		t.Error("a process at +3 passed the check for +0")
	}
}
