//go:build quorumha_testhooks

package controller

import (
	"log/slog"
	"os"
	"time"
)

// TestHooks reports whether this binary carries the test-only hooks (built
// with -tags quorumha_testhooks, as tests/harness builds the end-to-end
// binary). `quorumha version` prints it so a test can check its binary.
const TestHooks = true

// stepDelayEnv names a TEST-ONLY variable: a pause before every failover
// step (a Go duration such as "2s"), so end-to-end tests can kill the leader
// in the middle of a failover. Only a quorumha_testhooks binary reads it.
const stepDelayEnv = "QUORUMHA_TEST_STEP_DELAY"

// testStepDelay reads stepDelayEnv once at start-up.
func testStepDelay(logger *slog.Logger) time.Duration {
	v := os.Getenv(stepDelayEnv)
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		logger.Warn("ignoring invalid "+stepDelayEnv, "value", v, "err", err)
		return 0
	}
	logger.Warn(stepDelayEnv+" is set: failover steps are delayed (test only)", "delay", d)
	return d
}
