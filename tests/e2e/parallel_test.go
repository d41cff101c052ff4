package e2e

import (
	"os"
	"testing"
)

// parallel lets the test run beside the package's other parallel tests:
// `go test -parallel N` (the Makefile sets N) bounds how many run at once.
// Call it first thing, right after the -short skip, in every test that
// owns all it uses: its own sandbox (free ports, data under t.TempDir),
// controller group (free ports) and network zones (harness.NewNet picks a
// free subnet and unique namespace, bridge and veth names under a lock).
// Do not call it in tests whose assertions need an unloaded machine: timed
// assertions (TestBench*, a fence within the lease TTL), fixed fault
// schedules (TestChaos, network flaps), a blip that must stay under the
// failure threshold, or agents fencing on a short lease_ttl whose renewals
// must not be starved (startIsolatedEnv). Go runs the serial tests first,
// one after another, and the parallel ones after them, so serial tests
// never share the package's process with a parallel one.
//
// QUORUMHA_E2E_SERIAL=1 runs every test one after another again (to tell
// a race between tests from a bug).
func parallel(t *testing.T) {
	t.Helper()
	if os.Getenv("QUORUMHA_E2E_SERIAL") != "" {
		return
	}
	t.Parallel()
}
