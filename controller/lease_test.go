package controller

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumha/quorumha/agent"
	"github.com/quorumha/quorumha/config"
)

// TestLeaseDialer_RenewsOnFreshConnections: the keeper's renewals never
// share a connection, so one queued during a cut cannot be delivered, and
// granted, after it heals (make chaos found that re-arming a former master).
func TestLeaseDialer_RenewsOnFreshConnections(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(agent.LeaseResponse{Enforced: true, State: agent.FenceHeld})
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	dial := leaseDialer(&config.Config{Clusters: []config.Cluster{{Name: "app1"}}})
	ag, err := dial("app1", srv.URL, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := ag.Lease(context.Background(), agent.LeaseRequest{Controller: "c1", Voters: 3, TTLMillis: 2000}); err != nil {
			t.Fatal(err)
		}
	}
	if got := conns.Load(); got != 3 {
		t.Fatalf("%d connections for 3 renewals, want 3 (one each)", got)
	}
}
