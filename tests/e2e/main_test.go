// Package e2e runs real `quorumha run` processes on loopback (and, where a
// test needs them, real MariaDB sandboxes) and checks what an operator would
// see through the HTTP API and the CLI.
package e2e

import (
	"os"
	"testing"

	"github.com/quorumha/quorumha/tests/harness"
)

// bin is built once per test process; it is written only in TestMain.
var bin harness.Binary

func TestMain(m *testing.M) {
	os.Exit(m.Run())
}
