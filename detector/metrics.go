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

// memberLister is implemented by *Gossip; the detector exports its members.
type memberLister interface{ Members() []Member }

func newMetrics(reg prometheus.Registerer, ex VerdictExchange, groupSize func() int) (*metrics, error) {
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
	if ml, ok := ex.(memberLister); ok {
		cs = append(cs, newMembersCollector(ml, groupSize))
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

// gossipStates are always exported by quorumha_gossip_members, so a
// dashboard sees 0 rather than a missing series.
var gossipStates = [...]string{"alive", "suspect", "dead"}

// membersCollector exports the gossip membership at scrape time.
// memberlist lists only live (alive or suspect) members, so "dead" counts
// the raft voters with no live gossip member: dead, left or never joined.
type membersCollector struct {
	ml        memberLister
	groupSize func() int // raft voters; nil when unknown

	members, zones *prometheus.Desc
}

func newMembersCollector(ml memberLister, groupSize func() int) *membersCollector {
	return &membersCollector{
		ml: ml, groupSize: groupSize,
		members: prometheus.NewDesc("quorumha_gossip_members",
			"Gossip members this controller hears, by state (alive, suspect; dead = raft voters without a live member).",
			[]string{"state"}, nil),
		zones: prometheus.NewDesc("quorumha_gossip_zone_members",
			"Alive gossip members (this controller included) by the zone they advertise.",
			[]string{"zone"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *membersCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.members
	ch <- c.zones
}

// Collect implements prometheus.Collector.
func (c *membersCollector) Collect(ch chan<- prometheus.Metric) {
	voters := 0
	if c.groupSize != nil {
		voters = c.groupSize()
	}
	counts, zones := countMembers(c.ml.Members(), voters)
	for _, s := range gossipStates {
		ch <- prometheus.MustNewConstMetric(c.members, prometheus.GaugeValue, float64(counts[s]), s)
	}
	for z, n := range zones {
		ch <- prometheus.MustNewConstMetric(c.zones, prometheus.GaugeValue, float64(n), z)
	}
}

// countMembers counts members by state and alive members by zone; voters
// with no live member count as dead.
func countMembers(ms []Member, voters int) (byState, byZone map[string]int) {
	byState, byZone = map[string]int{}, map[string]int{}
	for _, m := range ms {
		byState[m.State]++
		if m.State == "alive" {
			byZone[m.Zone]++
		}
	}
	byState["dead"] += max(0, voters-byState["alive"]-byState["suspect"])
	return byState, byZone
}
