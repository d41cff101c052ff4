package api

import (
	"maps"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/quorumha/quorumha/fsm"
)

type fixedSummaries []fsm.RecordSummary

func (s fixedSummaries) RecordSummaries() []fsm.RecordSummary { return s }

func TestRecordsCollector_CountsDurationsAndZeros(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
	recs := fixedSummaries{
		{ID: 1, Cluster: "app1", Kind: fsm.KindFailover, Result: fsm.ResultSuccess, Opened: t0, Closed: t0.Add(1500 * time.Millisecond)},
		{ID: 2, Cluster: "app1", Kind: fsm.KindFailover, Result: fsm.ResultSuccess, Opened: t0, Closed: t0.Add(20 * time.Second)},
		{ID: 3, Cluster: "app1", Kind: fsm.KindSwitchover, Result: fsm.ResultRolledBack, Opened: t0, Closed: t0.Add(80 * time.Millisecond)},
		{ID: 4, Cluster: "app2", Kind: fsm.KindDetection, Result: fsm.ResultDetected, Opened: t0, Closed: t0},
		{ID: 5, Cluster: "app2", Kind: fsm.KindSwitchover, Result: fsm.ResultOpen, Opened: t0},
		{ID: 6, Cluster: "app4", Kind: fsm.KindFailover, Result: fsm.ResultOpen, Opened: t0, AwaitingFence: true},
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newRecordsCollector(recs, func() []string { return []string{"app1", "app3"} }))
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`quorumha_recovery_records_total{cluster="app1",kind="failover",result="success"} 2`,
		`quorumha_recovery_records_total{cluster="app1",kind="switchover",result="rolled_back"} 1`,
		`quorumha_recovery_records_total{cluster="app1",kind="failover",result="failed"} 0`,
		`quorumha_recovery_records_total{cluster="app2",kind="detection",result="detected"} 1`,
		// A configured cluster without any record still has its zeros.
		`quorumha_recovery_records_total{cluster="app3",kind="switchover",result="success"} 0`,
		`quorumha_recovery_records_open{cluster="app2",kind="switchover"} 1`,
		`quorumha_recovery_records_open{cluster="app1",kind="failover"} 0`,
		`quorumha_recovery_duration_seconds_bucket{kind="failover",result="success",le="1"} 0`,
		`quorumha_recovery_duration_seconds_bucket{kind="failover",result="success",le="2.5"} 1`,
		`quorumha_recovery_duration_seconds_bucket{kind="failover",result="success",le="30"} 2`,
		`quorumha_recovery_duration_seconds_sum{kind="failover",result="success"} 21.5`,
		`quorumha_recovery_duration_seconds_count{kind="failover",result="success"} 2`,
		`quorumha_recovery_duration_seconds_count{kind="switchover",result="rolled_back"} 1`,
		`quorumha_recovery_duration_seconds_count{kind="failover",result="aborted"} 0`,
		`quorumha_recovery_records_awaiting_fence{cluster="app4"} 1`,
		`quorumha_recovery_records_awaiting_fence{cluster="app1"} 0`,
		`quorumha_recovery_records_awaiting_fence{cluster="app3"} 0`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(body, `kind="switchover",result=""`) {
		t.Errorf("an open record was counted as closed:\n%s", body)
	}
}

func TestSummarize_Table(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		in        []fsm.RecordSummary
		wantTotal map[recordKey]uint64
		wantOpen  map[recordKey]uint64
		wantHists int
	}{
		{"empty", nil, map[recordKey]uint64{}, map[recordKey]uint64{}, 0},
		{"open only", []fsm.RecordSummary{{Cluster: "a", Kind: fsm.KindFailover, Opened: t0}},
			map[recordKey]uint64{}, map[recordKey]uint64{{cluster: "a", kind: fsm.KindFailover}: 1}, 0},
		{"closed without times counts but has no duration", []fsm.RecordSummary{{Cluster: "a", Kind: fsm.KindFailover, Result: fsm.ResultFailed}},
			map[recordKey]uint64{{"a", fsm.KindFailover, fsm.ResultFailed}: 1}, map[recordKey]uint64{}, 0},
		{"closed before opened (clock skew between leaders) has no duration", []fsm.RecordSummary{{Cluster: "a", Kind: fsm.KindFailover, Result: fsm.ResultSuccess, Opened: t0, Closed: t0.Add(-time.Second)}},
			map[recordKey]uint64{{"a", fsm.KindFailover, fsm.ResultSuccess}: 1}, map[recordKey]uint64{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			total, open, hists := summarize(tt.in)
			if !maps.Equal(total, tt.wantTotal) || !maps.Equal(open, tt.wantOpen) || len(hists) != tt.wantHists {
				t.Errorf("summarize = %v, %v, %d hists; want %v, %v, %d", total, open, len(hists), tt.wantTotal, tt.wantOpen, tt.wantHists)
			}
		})
	}
}
