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

// salvagePauseEnv names a TEST-ONLY variable: a pause after a file/
// position salvage applied the dead master's binlog onto a replica other
// than the new master, before the salvage is journalled, so end-to-end
// tests can kill the leader in that window.
const salvagePauseEnv = "QUORUMHA_TEST_SALVAGE_PAUSE"

// promotePauseEnv names a TEST-ONLY variable: a pause at the start of a
// switchover's promote step, after its begin is journalled, so end-to-end
// tests can kill the leader inside the promote.
const promotePauseEnv = "QUORUMHA_TEST_PROMOTE_PAUSE"

// testStepDelay reads stepDelayEnv once at start-up.
func testStepDelay(logger *slog.Logger) time.Duration {
	return testDuration(logger, stepDelayEnv, "failover steps are delayed")
}

// testSalvagePause reads salvagePauseEnv once at start-up.
func testSalvagePause(logger *slog.Logger) time.Duration {
	return testDuration(logger, salvagePauseEnv, "file/position salvages pause after each other replica")
}

// testPromotePause reads promotePauseEnv once at start-up.
func testPromotePause(logger *slog.Logger) time.Duration {
	return testDuration(logger, promotePauseEnv, "switchover promote steps pause at their start")
}

// testDuration reads a test-only duration variable; unset or invalid is 0.
func testDuration(logger *slog.Logger, name, what string) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		logger.Warn("ignoring invalid "+name, "value", v, "err", err)
		return 0
	}
	logger.Warn(name+" is set: "+what+" (test only)", "delay", d)
	return d
}
