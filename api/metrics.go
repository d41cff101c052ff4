package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// raftStates are the states always exported by quorumha_raft_state, so a
// dashboard sees a 0 rather than a missing series.
var raftStates = [...]string{"Leader", "Follower", "Candidate", "Shutdown"}

// metrics holds the API's own instruments; the raft and FSM gauges are read
// at scrape time by stateCollector, so no goroutine polls them.
type metrics struct {
	requests *prometheus.HistogramVec
	apply    *prometheus.HistogramVec
}

// newMetrics registers the API's instruments and the collectors that read
// raft, the FSM and (when state can summarise its records) the recovery
// history; clusters names the configured clusters for zero values (nil: none).
func newMetrics(reg *prometheus.Registry, raft Raft, state State, clusters func() []string) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "quorumha_http_request_duration_seconds",
			Help:    "Duration of API requests by route pattern and status code.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "code"}),
		apply: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "quorumha_api_apply_duration_seconds",
			Help:    "Latency of raft applies issued through the API, by command and result.",
			Buckets: prometheus.DefBuckets,
		}, []string{"command", "result"}),
	}
	cs := []prometheus.Collector{m.requests, m.apply, newStateCollector(raft, state)}
	if rs, ok := state.(RecordSummarizer); ok {
		cs = append(cs, newRecordsCollector(rs, clusters))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("api: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observeRequest(route string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Observe(d.Seconds())
}

func (m *metrics) observeApply(command string, err error, d time.Duration) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.apply.WithLabelValues(command, result).Observe(d.Seconds())
}

func (m *metrics) handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// stateCollector exports the raft node's status and the FSM's size.
type stateCollector struct {
	raft  Raft
	state State

	raftState, term, commit, applied, lastContact, leaderChanges, fsmApplied, records *prometheus.Desc
}

func newStateCollector(raft Raft, state State) *stateCollector {
	return &stateCollector{
		raft:          raft,
		state:         state,
		raftState:     prometheus.NewDesc("quorumha_raft_state", "1 for the raft state this controller is in, 0 for the others.", []string{"state"}, nil),
		term:          prometheus.NewDesc("quorumha_raft_term", "Current raft term.", nil, nil),
		commit:        prometheus.NewDesc("quorumha_raft_commit_index", "Raft commit index.", nil, nil),
		applied:       prometheus.NewDesc("quorumha_raft_applied_index", "Raft applied index.", nil, nil),
		lastContact:   prometheus.NewDesc("quorumha_raft_last_contact_seconds", "Seconds since this follower last heard from the leader (0 on the leader; absent before any contact).", nil, nil),
		leaderChanges: prometheus.NewDesc("quorumha_raft_leader_changes_total", "Leadership transitions observed by this controller.", nil, nil),
		fsmApplied:    prometheus.NewDesc("quorumha_fsm_applied_index", "Raft index of the last command applied to the FSM.", nil, nil),
		records:       prometheus.NewDesc("quorumha_fsm_records", "Failover, switchover and detection records held by the FSM.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.raftState, c.term, c.commit, c.applied, c.lastContact, c.leaderChanges, c.fsmApplied, c.records} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.raft.Status()
	known := false
	for _, s := range raftStates {
		v := 0.0
		if s == st.State {
			v, known = 1, true
		}
		ch <- prometheus.MustNewConstMetric(c.raftState, prometheus.GaugeValue, v, s)
	}
	if !known && st.State != "" {
		ch <- prometheus.MustNewConstMetric(c.raftState, prometheus.GaugeValue, 1, st.State)
	}
	ch <- prometheus.MustNewConstMetric(c.term, prometheus.GaugeValue, float64(st.Term))
	ch <- prometheus.MustNewConstMetric(c.commit, prometheus.GaugeValue, float64(st.CommitIndex))
	ch <- prometheus.MustNewConstMetric(c.applied, prometheus.GaugeValue, float64(st.AppliedIndex))
	switch {
	case st.State == "Leader":
		ch <- prometheus.MustNewConstMetric(c.lastContact, prometheus.GaugeValue, 0)
	case !st.LastContact.IsZero():
		ch <- prometheus.MustNewConstMetric(c.lastContact, prometheus.GaugeValue, time.Since(st.LastContact).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(c.leaderChanges, prometheus.CounterValue, float64(st.LeaderChanges))
	ch <- prometheus.MustNewConstMetric(c.fsmApplied, prometheus.GaugeValue, float64(c.state.AppliedIndex()))
	ch <- prometheus.MustNewConstMetric(c.records, prometheus.GaugeValue, float64(c.state.RecordCount()))
}
