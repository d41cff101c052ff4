package lease

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// keeperMetrics are the keeper's Prometheus collectors. A nil
// *keeperMetrics (no registry configured) makes every method a no-op.
type keeperMetrics struct {
	renewals *prometheus.CounterVec
}

func newKeeperMetrics(reg prometheus.Registerer, k *Keeper) (*keeperMetrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &keeperMetrics{renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "quorumha", Subsystem: "lease", Name: "renewals_total",
		Help: "Renewals of masters' quorum leases by this controller, by outcome (ok: the agent answered; error: it did not, or refused).",
	}, []string{"cluster", "instance", "outcome"})}
	var errs []error
	age := ageCollector{k: k, desc: prometheus.NewDesc("quorumha_lease_renewal_age_seconds",
		"Seconds since this controller's last answered lease renewal of each cluster's current master (since it began renewing it, when none was answered); absent for masters it does not renew.",
		[]string{"cluster", "instance"}, nil)}
	for _, c := range []prometheus.Collector{m.renewals, age} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("register lease metrics: %w", err)
	}
	return m, nil
}

func (m *keeperMetrics) renewal(cluster, instance, outcome string) {
	if m == nil {
		return
	}
	m.renewals.WithLabelValues(cluster, instance, outcome).Inc()
}

// ageCollector exports the age of the last answered renewal of each master
// this controller renews now, computed at scrape time so it grows while an
// agent does not answer.
type ageCollector struct {
	k    *Keeper
	desc *prometheus.Desc
}

func (c ageCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c ageCollector) Collect(ch chan<- prometheus.Metric) {
	for _, a := range c.k.renewalAges() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, a.age.Seconds(), a.cluster, a.instance)
	}
}
