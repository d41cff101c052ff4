package main

import (
	"testing"
	"time"

	"github.com/quorumha/quorumha/detector"
	"github.com/quorumha/quorumha/lease"
)

func TestLeaseLine_GrantsAndAgentState(t *testing.T) {
	now := time.Date(2026, 12, 3, 18, 0, 10, 0, time.UTC)
	a := &detector.Assessment{Master: "db1:3306",
		Votes: []detector.Verdict{
			{Controller: "c1", Instance: "db1:3306", Lease: &detector.LeaseGrant{Bound: now.Add(-300 * time.Millisecond), Enforced: true, Armed: true}},
			{Controller: "c2", Instance: "db1:3306", Lease: &detector.LeaseGrant{Bound: now.Add(-3 * time.Second), StoppedFor: 42}},
			{Controller: "c3", Instance: "db1:3306"},
		},
		Stale: []detector.Verdict{{Controller: "c4", Instance: "db0:3306", Lease: &detector.LeaseGrant{Bound: now}}}}
	own := &lease.ClusterLease{Controller: "c1", TTL: "2s", Masters: []lease.MasterLease{{Instance: "db1:3306", State: "held"}}}
	want := "  lease: c1 renewing, last 300ms ago; c2 stopped for record 42, last 3s ago  (agent held, ttl 2s)"
	if got := leaseLine(a, own, now); got != want {
		t.Errorf("leaseLine:\n got %q\nwant %q", got, want)
	}
	if got := leaseLine(&detector.Assessment{Master: "db1:3306", Votes: []detector.Verdict{{Controller: "c1"}}}, nil, now); got != "" {
		t.Errorf("no grants: %q, want no line", got)
	}
}
