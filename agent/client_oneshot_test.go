package agent

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestClient_OneShotNeverReusesAConnection: lease renewals must not ride a
// kept-alive connection, where one written during a cut would be delivered
// after it heals.
func TestClient_OneShotNeverReusesAConnection(t *testing.T) {
	for _, tt := range []struct {
		oneShot bool
		want    int64
	}{{false, 1}, {true, 3}} {
		var conns atomic.Int64
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_ = json.NewEncoder(w).Encode(LeaseResponse{Enforced: true, State: FenceHeld})
		}))
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
		srv.Start()
		c, err := NewClient(srv.URL, ClientOptions{OneShot: tt.oneShot})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if _, err := c.Lease(context.Background(), LeaseRequest{Controller: "c1", Voters: 3, TTLMillis: 2000}); err != nil {
				t.Fatal(err)
			}
		}
		srv.Close()
		if got := conns.Load(); got != tt.want {
			t.Errorf("OneShot=%v: %d connections for 3 renewals, want %d", tt.oneShot, got, tt.want)
		}
	}
}
