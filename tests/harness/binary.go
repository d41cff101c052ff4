// Package harness starts real `quorumha run` processes for end-to-end tests
// and benchmarks: a group of controllers on loopback, each with its own data
// directory, config file and log, that tests can kill -9, restart and query
// over HTTP exactly as an operator would.
package harness

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Binary returns the path of a quorumha binary: $QUORUMHA_BIN when set (the
// Makefile builds one), otherwise one built once per test process into dir.
// The build is guarded by once so parallel tests share it.
type Binary struct {
	once sync.Once
	path string
	err  error

	// hooksOnce guards the test-hooks binary (TestHooksPath).
	hooksOnce sync.Once
	hooksPath string
	hooksErr  error
}

// TestHooksTag is the build tag that compiles the test-only hooks
// (QUORUMHA_TEST_STEP_DELAY) into a binary; production builds lack them.
const TestHooksTag = "quorumha_testhooks"

// Path builds (at most once) and returns the binary path. Its own build
// carries the test hooks, so TestHooksPath can reuse it.
func (b *Binary) Path(t testing.TB) string {
	t.Helper()
	b.once.Do(func() {
		if p := os.Getenv("QUORUMHA_BIN"); p != "" {
			if _, err := os.Stat(p); err != nil {
				b.err = fmt.Errorf("QUORUMHA_BIN=%s: %w", p, err)
				return
			}
			b.path = p
			return
		}
		b.path, b.err = build("-tags", TestHooksTag)
	})
	if b.err != nil {
		t.Fatalf("quorumha binary: %v", b.err)
	}
	return b.path
}

// TestHooksPath returns a binary built with TestHooksTag, for tests that set
// a QUORUMHA_TEST_* variable: Path's binary when it has the hooks (its
// `version` says "test_hooks: on"), otherwise one built once into a
// temporary directory. A production binary would ignore the variable and
// the test would silently test something else.
func (b *Binary) TestHooksPath(t testing.TB) string {
	t.Helper()
	p := b.Path(t)
	b.hooksOnce.Do(func() {
		if out, err := exec.Command(p, "version").Output(); err == nil && strings.Contains(string(out), "test_hooks: on") {
			b.hooksPath = p
			return
		}
		b.hooksPath, b.hooksErr = build("-tags", TestHooksTag)
	})
	if b.hooksErr != nil {
		t.Fatalf("quorumha test-hooks binary: %v", b.hooksErr)
	}
	return b.hooksPath
}

// build compiles cmd/quorumha with the given extra flags into a new
// temporary directory.
func build(flags ...string) (string, error) {
	dir, err := os.MkdirTemp("", "quorumha-bin-")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "quorumha")
	args := append(append([]string{"build"}, flags...), "-o", out, "github.com/quorumha/quorumha/cmd/quorumha")
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %v quorumha: %w\n%s", flags, err, msg)
	}
	return out, nil
}

// FreePorts returns n distinct free TCP ports on 127.0.0.1, none of which
// it has returned before in this process. Another process may take one
// before it is used; callers that bind retry on failure.
//
// Parallel tests (tests/e2e parallel) each ask for ports, and a port handed
// to one test but not yet bound by the process it starts is free in the
// kernel's eyes: bind(:0) could hand it to the next test as well, or to a
// sandbox server, and an outgoing connection could take it as its source
// port. So the ports come from below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range), where neither bind(:0) nor connect()
// picks ports, at random (other test processes), and each at most once per
// process.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports, err := freePorts.take(n)
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	return ports
}

// portLow is the lowest port FreePorts hands out.
const portLow = 10000

// freePorts is process-wide because the kernel's port space is: it only
// remembers what FreePorts handed out, so two tests never get the same port.
var freePorts = &portPool{given: map[int]bool{}}

type portPool struct {
	mu    sync.Mutex
	given map[int]bool
}

func (p *portPool) take(n int) ([]int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	high := ephemeralLow()
	if high-portLow < 1000 {
		return kernelPorts(n) // no room below the ephemeral range
	}
	ports := make([]int, 0, n)
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			return nil, fmt.Errorf("no free port in %d-%d after %d tries", portLow, high-1, tries)
		}
		port := portLow + rand.IntN(high-portLow)
		if p.given[port] {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // in use
		}
		lns = append(lns, ln)
		p.given[port] = true
		ports = append(ports, port)
	}
	return ports, nil
}

// ephemeralLow is the low end of the kernel's ephemeral port range.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	low, err := strconv.Atoi(f[0])
	if err != nil {
		return 0
	}
	return low
}

// kernelPorts asks the kernel for n ports (bind :0).
func kernelPorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for len(ports) < n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
