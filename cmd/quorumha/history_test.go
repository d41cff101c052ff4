package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/fsm"
)

var renderT0 = time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)

func TestRenderHistory_Table(t *testing.T) {
	tests := []struct {
		name    string
		records []fsm.Record
		want    string
	}{
		{"empty", nil, "no records\n"},
		{"closed and open", []fsm.Record{
			{ID: 42, Cluster: "app1", Kind: fsm.KindFailover, Trigger: "automatic", Opened: renderT0,
				Closed: renderT0.Add(12500 * time.Millisecond), Result: fsm.ResultSuccess, OldMaster: "db1:3306", NewMaster: "db2:3306"},
			{ID: 9, Cluster: "app3", Kind: fsm.KindFailover, Trigger: "automatic", Opened: renderT0.Add(-time.Hour), OldMaster: "m:3306",
				Fence: &fsm.FenceInfo{State: fsm.FenceAwaiting, Proof: fsm.ProofNone, Reason: "m:3306: sql: unreachable"}},
			{ID: 8, Cluster: "app3", Kind: fsm.KindFailover, Trigger: "manual", Opened: renderT0.Add(-time.Hour), OldMaster: "m:3306",
				Fence: &fsm.FenceInfo{State: fsm.FenceAccepted, Proof: fsm.ProofOperator, By: "alice"}},
			{ID: 7, Cluster: "app2", Kind: fsm.KindDetection, Trigger: "automatic", Opened: renderT0.Add(-time.Hour)},
		}, `ID  CLUSTER  KIND       TRIGGER    OPENED                DURATION  RESULT   MASTER               FENCE
42  app1     failover   automatic  2026-11-23 02:00:00Z  12.5s     success  db1:3306 → db2:3306  -
9   app3     failover   automatic  2026-11-23 01:00:00Z  running   open     m:3306 → -           awaiting_fence
8   app3     failover   manual     2026-11-23 01:00:00Z  running   open     m:3306 → -           operator(alice)
7   app2     detection  automatic  2026-11-23 01:00:00Z  running   open     -                    -
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sb strings.Builder
			if err := renderHistory(&sb, tt.records); err != nil {
				t.Fatal(err)
			}
			if got := sb.String(); got != tt.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestRenderRecord_Full(t *testing.T) {
	r := fsm.Record{
		ID: 42, Cluster: "app1", Kind: fsm.KindFailover, Trigger: "automatic", OpenedBy: "c1",
		Opened: renderT0, Closed: renderT0.Add(3 * time.Second), Result: fsm.ResultSuccess,
		OldMaster: "db1:3306", NewMaster: "db2:3306",
		Evidence: json.RawMessage(`{"down":["c1","c2"]}`),
		Candidates: []fsm.Candidate{
			{Address: "db2:3306", Chosen: true, Reason: "newest GTID, candidate_master"},
			{Address: "db3:3306", Reason: "no_master set"},
		},
		Steps: []fsm.Step{
			{Seq: 1, Name: "fence", Leader: "c1", Term: 7, Start: renderT0, End: renderT0.Add(time.Second), Outcome: fsm.OutcomeOK},
			{Seq: 2, Name: "promote", Leader: "c1", Term: 7, Start: renderT0.Add(time.Second), Outcome: fsm.OutcomeRunning, Detail: "waiting\nfor relay log"},
		},
	}
	want := `record:    42
cluster:   app1
kind:      failover
trigger:   automatic
opened:    2026-11-23 02:00:00Z by c1
closed:    2026-11-23 02:00:03Z
duration:  3s
result:    success
master:    db1:3306 → db2:3306

evidence:
  {
    "down": [
      "c1",
      "c2"
    ]
  }

candidates:
  ADDRESS   CHOSEN  REASON
  db2:3306  yes     newest GTID, candidate_master
  db3:3306  no      no_master set

steps:
  #  STEP     LEADER  TERM  START                 DURATION  OUTCOME  DETAIL
  1  fence    c1      7     2026-11-23 02:00:00Z  1s        ok       -
  2  promote  c1      7     2026-11-23 02:00:01Z  running   running  waiting for relay log
`
	var sb strings.Builder
	if err := renderRecord(&sb, r); err != nil {
		t.Fatal(err)
	}
	if got := sb.String(); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestRenderRecord_Salvage(t *testing.T) {
	r := fsm.Record{ID: 7, Cluster: "app1", Kind: fsm.KindFailover, Opened: renderT0, Result: fsm.ResultSuccess,
		Salvage: &fsm.Salvage{From: "db1:3306", Agent: "https://db1:7080", Target: "db2:3306", Outcome: fsm.SalvageApplied,
			Applied: 2, Bytes: 400, GTIDs: []string{"0-1-11", "0-1-12"}, Before: "0-1-10", Recovered: "0-1-12", MasterLast: "0-1-12",
			Skipped: []fsm.SkippedTrx{{File: "mysql-bin.000003", Start: 900, Bytes: 57, Reason: "incomplete"}}, Took: 42 * time.Millisecond}}
	var b strings.Builder
	if err := renderRecord(&b, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"salvage:", "outcome:", "applied", "2 transactions, 400 bytes, in 42ms", "0-1-11,0-1-12",
		"0-1-10 -> 0-1-12", "57 bytes at mysql-bin.000003:900: incomplete", "https://db1:7080"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

func TestRenderRecord_Fence(t *testing.T) {
	r := fsm.Record{ID: 9, Cluster: "app3", Kind: fsm.KindFailover, OldMaster: "m:3306",
		Fence: &fsm.FenceInfo{State: fsm.FenceProven, Proof: fsm.ProofAgent, Since: renderT0, Reason: "m:3306: sql: unreachable",
			Targets: []fsm.FenceTarget{{Address: "m:3306", Proof: fsm.ProofAgent, Detail: "agent says the server is not running"}}}}
	var sb strings.Builder
	if err := renderRecord(&sb, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"fence:          proven, proof agent", "fence awaited:  since 2026-11-23 02:00:00Z",
		"fence target:   m:3306: agent agent says the server is not running"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("record lacks %q:\n%s", want, sb.String())
		}
	}
}
