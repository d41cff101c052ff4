package detector

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the detector's Prometheus collectors. A nil *metrics (no
// registry configured) makes every method a no-op.
type metrics struct {
	probeSeconds   *prometheus.HistogramVec
	probeFailures  *prometheus.CounterVec
	assessState    *prometheus.GaugeVec
	updatesDropped prometheus.Counter
}

// droppedCounter is implemented by *Gossip; the detector exports its count.
type droppedCounter interface{ Dropped() uint64 }

func newMetrics(reg prometheus.Registerer, ex VerdictExchange) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		probeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "quorumha", Subsystem: "detector", Name: "probe_duration_seconds",
			Help:    "Latency of master probes by this controller.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"cluster", "instance"}),
		probeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "quorumha", Subsystem: "detector", Name: "probe_failures_total",
			Help: "Master probes that did not answer OK, by reason (auth_error and too_many_connections count as alive).",
		}, []string{"cluster", "instance", "reason"}),
		assessState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "quorumha", Subsystem: "detector", Name: "assessment_state",
			Help: "1 for the current assessment state of each cluster's master, 0 for the others.",
		}, []string{"cluster", "state"}),
		updatesDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "quorumha", Subsystem: "detector", Name: "updates_dropped_total",
			Help: "Assessments dropped from the Updates channel because its reader was slow (newest wins).",
		}),
	}
	cs := []prometheus.Collector{m.probeSeconds, m.probeFailures, m.assessState, m.updatesDropped}
	if dc, ok := ex.(droppedCounter); ok {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "quorumha", Subsystem: "gossip", Name: "messages_dropped_total",
			Help: "Gossip messages or verdicts dropped as malformed or forged.",
		}, func() float64 { return float64(dc.Dropped()) }))
	}
	var errs []error
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("register detector metrics: %w", err)
	}
	return m, nil
}

func (m *metrics) probe(cluster string, r ProbeResult) {
	if m == nil {
		return
	}
	m.probeSeconds.WithLabelValues(cluster, r.Instance).Observe(r.Latency.Seconds())
	if !r.OK {
		m.probeFailures.WithLabelValues(cluster, r.Instance, r.Reason.String()).Inc()
	}
}

func (m *metrics) assessed(a Assessment) {
	if m == nil {
		return
	}
	for _, s := range AssessStates() {
		v := 0.0
		if s == a.State {
			v = 1
		}
		m.assessState.WithLabelValues(a.Cluster, s.String()).Set(v)
	}
}

func (m *metrics) dropped() {
	if m != nil {
		m.updatesDropped.Inc()
	}
}
