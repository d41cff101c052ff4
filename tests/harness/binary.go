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
}

// Path builds (at most once) and returns the binary path.
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
		dir, err := os.MkdirTemp("", "quorumha-bin-")
		if err != nil {
			b.err = err
			return
		}
		out := filepath.Join(dir, "quorumha")
		cmd := exec.Command("go", "build", "-o", out, "github.com/quorumha/quorumha/cmd/quorumha")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build quorumha: %w\n%s", err, msg)
			return
		}
		b.path = out
	})
	if b.err != nil {
		t.Fatalf("quorumha binary: %v", b.err)
	}
	return b.path
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
