package e2e

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
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
// agents (nice(1); the tests run as root, which may lower it).
const laneNice = -10

// gate is the package's test scheduler. It is set once in TestMain,
// before any test runs, and only read after that.
var gate *testGate

type testGate struct {
	parallel chan struct{} // one token per running parallel test
	lane     chan struct{} // one token: the running lane test
	serial   bool          // QUORUMHA_E2E_SERIAL: both share one token
	mu       sync.Mutex
	inLane   map[string]bool // top-level names of lane tests
}

// newTestGate lets n parallel tests run at once beside one lane test, or
// every test alone when serial.
func newTestGate(n int, serial bool) *testGate {
	if n < 1 {
		n = 1
	}
	g := &testGate{lane: make(chan struct{}, 1), serial: serial, inLane: map[string]bool{}}
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

// niceOf is the niceness for the processes test t starts: laneNice in a
// lane test, 0 otherwise.
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

// niceArgv prefixes argv with nice(1) when t is a lane test: the process
// starts at that priority with every thread it will ever have (nice is per
// thread on Linux, inherited when a thread is made), which renicing a
// running process cannot promise. nice execs argv in place, so the pid is
// the program's.
func niceArgv(t testing.TB, argv []string) []string {
	n := niceOf(t)
	if n == 0 {
		return argv
	}
	return append([]string{"nice", "-n", strconv.Itoa(n)}, argv...)
}

// requireNice reports a thread of process pid whose niceness is not want.
func requireNice(pid, want int) error {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return err
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			continue // the thread ended
		}
		// Fields after the command (which may hold spaces) are split
		// from its closing parenthesis: state is field 3, nice field 19.
		_, rest, ok := strings.Cut(string(b), ") ")
		f := strings.Fields(rest)
		if !ok || len(f) < 17 {
			return fmt.Errorf("/proc/%d/task/%s/stat: unexpected %q", pid, task.Name(), b)
		}
		if n, err := strconv.Atoi(f[16]); err != nil || n != want {
			return fmt.Errorf("thread %s of pid %d runs at nice %s, want %d", task.Name(), pid, f[16], want)
		}
	}
	return nil
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
