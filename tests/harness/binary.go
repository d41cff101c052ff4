// Package harness starts real `quorumha run` processes for end-to-end tests
// and benchmarks: a group of controllers on loopback, each with its own data
// directory, config file and log, that tests can kill -9, restart and query
// over HTTP exactly as an operator would.
package harness

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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

// FreePorts returns n distinct free TCP ports on 127.0.0.1. Another process
// may take one before it is used; callers that bind retry on failure.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	var lns []net.Listener
	for len(ports) < n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}
