package detector

import "time"

// Clock is the detector's only source of time, injected so that failure
// thresholds, freshness windows and probe intervals are tested by advancing a
// fake clock instead of waiting.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After waits for d and then sends the time on the returned channel, like
	// time.After. Loops select on it together with ctx.Done().
	After(d time.Duration) <-chan time.Time
}

// RealClock is the wall clock used in production.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// After returns time.After(d); since Go 1.23 an unfired timer is collected
// when the channel is dropped, so callers need not stop it.
func (RealClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
