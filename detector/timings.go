package detector

import (
	"fmt"
	"time"
)

// Timings are the detector's tunables a config reload (SIGHUP) may change
// while the probe loops run. The loops read them through an atomic pointer
// at each use, so a change takes effect from the next probe; a wait already
// started finishes with the old interval.
type Timings struct {
	// ProbeInterval is detector.probe_interval.
	ProbeInterval time.Duration
	// ProbeTimeout is detector.probe_timeout.
	ProbeTimeout time.Duration
	// FailureThreshold is detector.failure_threshold.
	FailureThreshold int
	// Freshness is detector.freshness_window: how old a peer's verdict may
	// be and still count.
	Freshness time.Duration
}

// validate refuses timings the loops cannot run with.
func (t Timings) validate() error {
	switch {
	case t.ProbeInterval <= 0:
		return fmt.Errorf("%w: probe interval %s", ErrBadConfig, t.ProbeInterval)
	case t.ProbeTimeout <= 0:
		return fmt.Errorf("%w: probe timeout %s", ErrBadConfig, t.ProbeTimeout)
	case t.FailureThreshold < 1:
		return fmt.Errorf("%w: failure threshold %d", ErrBadConfig, t.FailureThreshold)
	case t.Freshness == 0:
		return fmt.Errorf("%w: freshness 0", ErrBadConfig)
	}
	return nil
}

// SetTimings replaces the timings the probe loops use; invalid timings are
// refused and change nothing. The prober's own timeout is the caller's
// (Prober.SetTimeout), as the prober is built separately.
func (d *Detector) SetTimings(t Timings) error {
	if err := t.validate(); err != nil {
		return err
	}
	d.timings.Store(&t)
	return nil
}

// Timings returns the timings in use.
func (d *Detector) Timings() Timings { return *d.timings.Load() }

// SetTimeout replaces the prober's timeout (detector.probe_timeout); kept
// connections made with the old one are replaced when next idle. A
// non-positive timeout is ignored.
func (p *Prober) SetTimeout(t time.Duration) {
	if t > 0 {
		p.timeoutNs.Store(int64(t))
	}
}

// timeout is the prober's current timeout.
func (p *Prober) timeout() time.Duration { return time.Duration(p.timeoutNs.Load()) }
