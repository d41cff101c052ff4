package api

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumha/quorumha/fsm"
)

// RecordSummarizer is the optional part of State that the recovery metrics
// read; *fsm.FSM implements it. Without it the API exports no recovery
// metrics.
type RecordSummarizer interface {
	RecordSummaries() []fsm.RecordSummary
}

// recoveryDurationBuckets span a switchover (tens of ms) to a failover stuck
// on apply_timeout or a hook timeout (minutes).
var recoveryDurationBuckets = []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// Record kinds and results exported with a zero value for every configured
// cluster, so rate() and alerts work before the first failover. Other
// combinations (detection records, refused switchovers) appear when they
// first happen.
var (
	zeroKinds   = []fsm.RecordKind{fsm.KindFailover, fsm.KindSwitchover}
	zeroResults = []fsm.Result{fsm.ResultSuccess, fsm.ResultFailed, fsm.ResultAborted, fsm.ResultRolledBack, fsm.ResultRefused}
)

// recordsCollector derives the recovery metrics from the replicated records
// at scrape time.
//
// Why from the FSM and not from counters the leader increments when it
// closes a record: leadership moves, and a counter kept in the leader's
// memory would show a failover on whichever controller happened to lead,
// restart from zero with the process, and miss records closed by a previous
// leader. The FSM holds every record on every controller, so deriving the
// counts (and the open-to-close durations, as a constant histogram) from it
// at scrape time gives the same answer on every controller, survives
// restarts, has no side effect and needs no package-level state. Summaries
// carry no evidence or steps, so a scrape over thousands of records stays
// cheap.
type recordsCollector struct {
	src      RecordSummarizer
	clusters func() []string // configured clusters, for zero values; may be nil

	total, open, duration, awaiting *prometheus.Desc
}

func newRecordsCollector(src RecordSummarizer, clusters func() []string) *recordsCollector {
	return &recordsCollector{
		src:      src,
		clusters: clusters,
		total: prometheus.NewDesc("quorumha_recovery_records_total",
			"Closed failover, switchover and detection records in the replicated history, by cluster, kind and result (the same on every controller).",
			[]string{"cluster", "kind", "result"}, nil),
		open: prometheus.NewDesc("quorumha_recovery_records_open",
			"Records currently open (a failover or switchover in progress), by cluster and kind.",
			[]string{"cluster", "kind"}, nil),
		awaiting: prometheus.NewDesc("quorumha_recovery_records_awaiting_fence",
			"Failover records waiting for a fence proof of the old master before promoting (recovery.fence: required), by cluster.",
			[]string{"cluster"}, nil),
		duration: prometheus.NewDesc("quorumha_recovery_duration_seconds",
			"Time from opening to closing a record, by kind and result, over the replicated history.",
			[]string{"kind", "result"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *recordsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.total
	ch <- c.open
	ch <- c.duration
	ch <- c.awaiting
}

type recordKey struct {
	cluster string
	kind    fsm.RecordKind
	result  fsm.Result
}

type durationKey struct {
	kind   fsm.RecordKind
	result fsm.Result
}

type durationHist struct {
	count   uint64
	sum     float64
	buckets map[float64]uint64 // cumulative, every bucket present
}

func newDurationHist() *durationHist {
	h := &durationHist{buckets: make(map[float64]uint64, len(recoveryDurationBuckets))}
	for _, b := range recoveryDurationBuckets {
		h.buckets[b] = 0
	}
	return h
}

// Collect implements prometheus.Collector.
func (c *recordsCollector) Collect(ch chan<- prometheus.Metric) {
	recs := c.src.RecordSummaries()
	totals, opens, hists := summarize(recs)
	var clusters []string
	if c.clusters != nil {
		clusters = c.clusters()
	}
	awaiting := awaitingFence(recs, clusters)
	for _, name := range clusters {
		for _, k := range zeroKinds {
			for _, r := range zeroResults {
				key := recordKey{name, k, r}
				if _, ok := totals[key]; !ok {
					totals[key] = 0
				}
			}
			if _, ok := opens[recordKey{cluster: name, kind: k}]; !ok {
				opens[recordKey{cluster: name, kind: k}] = 0
			}
		}
	}
	for _, k := range zeroKinds {
		for _, r := range zeroResults {
			if _, ok := hists[durationKey{k, r}]; !ok {
				hists[durationKey{k, r}] = newDurationHist()
			}
		}
	}
	for _, key := range sortedKeys(totals) {
		ch <- prometheus.MustNewConstMetric(c.total, prometheus.CounterValue, float64(totals[key]), key.cluster, string(key.kind), string(key.result))
	}
	for _, key := range sortedKeys(opens) {
		ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(opens[key]), key.cluster, string(key.kind))
	}
	for key, h := range hists {
		ch <- prometheus.MustNewConstHistogram(c.duration, h.count, h.sum, h.buckets, string(key.kind), string(key.result))
	}
	for _, name := range slices.Sorted(maps.Keys(awaiting)) {
		ch <- prometheus.MustNewConstMetric(c.awaiting, prometheus.GaugeValue, float64(awaiting[name]), name)
	}
}

// awaitingFence counts the records awaiting a fence per cluster, with a
// zero for every configured cluster so an alert on it has a series.
func awaitingFence(recs []fsm.RecordSummary, clusters []string) map[string]uint64 {
	out := map[string]uint64{}
	for _, name := range clusters {
		out[name] = 0
	}
	for _, r := range recs {
		if r.AwaitingFence {
			out[r.Cluster]++
		}
	}
	return out
}

// summarize counts closed records by (cluster, kind, result), open ones by
// (cluster, kind), and builds cumulative duration histograms of the closed
// ones by (kind, result). It is a pure function of the records.
func summarize(recs []fsm.RecordSummary) (totals, opens map[recordKey]uint64, hists map[durationKey]*durationHist) {
	totals, opens, hists = map[recordKey]uint64{}, map[recordKey]uint64{}, map[durationKey]*durationHist{}
	for _, r := range recs {
		if r.Result == fsm.ResultOpen {
			opens[recordKey{cluster: r.Cluster, kind: r.Kind}]++
			continue
		}
		totals[recordKey{r.Cluster, r.Kind, r.Result}]++
		if r.Opened.IsZero() || r.Closed.IsZero() || r.Closed.Before(r.Opened) {
			continue
		}
		dk := durationKey{r.Kind, r.Result}
		h := hists[dk]
		if h == nil {
			h = newDurationHist()
			hists[dk] = h
		}
		d := r.Closed.Sub(r.Opened).Seconds()
		h.count++
		h.sum += d
		for _, b := range recoveryDurationBuckets {
			if d <= b {
				h.buckets[b]++
			}
		}
	}
	return totals, opens, hists
}

// sortedKeys orders record keys so the exposition is stable.
func sortedKeys(m map[recordKey]uint64) []recordKey {
	out := make([]recordKey, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b recordKey) int {
		return cmp.Or(strings.Compare(a.cluster, b.cluster), strings.Compare(string(a.kind), string(b.kind)),
			strings.Compare(string(a.result), string(b.result)))
	})
	return out
}
