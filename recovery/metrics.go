package recovery

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics receives what the executor measures on the leader. It is declared
// here, where it is used; HookMetrics implements it with Prometheus, and a
// nil Metrics in ExecutorConfig measures nothing.
//
// Only hook runs are observed here: they happen on the leader alone and
// nowhere else can time them. Record counts and open-to-close durations are
// not: the api package derives them from the replicated records, so every
// controller exports the same values whoever led at the time.
type Metrics interface {
	// HookRan is called once per hook run with its outcome ("ok",
	// "failed" or "timeout") and how long it took.
	HookRan(kind HookKind, outcome string, d time.Duration)
}

// Hook outcomes as exported in quorumha_hook_duration_seconds.
const (
	HookOutcomeOK      = "ok"
	HookOutcomeFailed  = "failed"
	HookOutcomeTimeout = "timeout"
)

// HookOutcome classifies a hook run: timeout when it was killed at
// HookRunner.Timeout, ok when it exited 0 or 10 (MHA's "done, with a
// warning", which lets a failover go on), failed otherwise (including a
// cancelled run and a hook that could not start).
func HookOutcome(r HookResult) string {
	switch {
	case errors.Is(r.Err, ErrHookTimeout):
		return HookOutcomeTimeout
	case r.Err == nil && (r.ExitCode == 0 || r.ExitCode == 10):
		return HookOutcomeOK
	default:
		return HookOutcomeFailed
	}
}

// HookMetrics exports quorumha_hook_duration_seconds{hook,outcome}. Every
// hook and outcome starts at zero, so alerts on failures work before the
// first one. A nil *HookMetrics does nothing.
type HookMetrics struct {
	duration *prometheus.HistogramVec
}

// NewHookMetrics registers the hook histogram on reg. Build it once per
// process, not per leadership term: a registry accepts a collector once.
func NewHookMetrics(reg prometheus.Registerer) (*HookMetrics, error) {
	m := &HookMetrics{duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "quorumha_hook_duration_seconds",
		Help:    "Duration of operator hook runs on the leader, by hook and outcome (ok, failed, timeout).",
		Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"hook", "outcome"})}
	for _, k := range []HookKind{HookIPFailover, HookShutdown, HookReport, HookOnlineChange} {
		for _, o := range []string{HookOutcomeOK, HookOutcomeFailed, HookOutcomeTimeout} {
			m.duration.WithLabelValues(string(k), o)
		}
	}
	if err := reg.Register(m.duration); err != nil {
		return nil, fmt.Errorf("register hook metrics: %w", err)
	}
	return m, nil
}

// HookRan implements Metrics.
func (m *HookMetrics) HookRan(kind HookKind, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.duration.WithLabelValues(string(kind), outcome).Observe(d.Seconds())
}
