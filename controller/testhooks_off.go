//go:build !quorumha_testhooks

package controller

import (
	"log/slog"
	"time"
)

// TestHooks reports whether this binary carries the test-only hooks; a
// production build does not, so no environment variable can slow its
// failovers down.
const TestHooks = false

// testStepDelay is 0 in a production build: the pause between failover
// steps exists only in a quorumha_testhooks binary (see testhooks_on.go).
func testStepDelay(*slog.Logger) time.Duration { return 0 }

// testSalvagePause is 0 in a production build (see testhooks_on.go).
func testSalvagePause(*slog.Logger) time.Duration { return 0 }

// testPromotePause is 0 in a production build (see testhooks_on.go).
func testPromotePause(*slog.Logger) time.Duration { return 0 }
