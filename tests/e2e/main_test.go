// Package e2e runs real `quorumha run` processes on loopback (and, where a
// test needs them, real MariaDB sandboxes) and checks what an operator would
// see through the HTTP API and the CLI.
package e2e

import "github.com/quorumha/quorumha/tests/harness"

// bin is built once per test process (the first test that asks builds it);
// TestMain is in parallel_test.go.
var bin harness.Binary
