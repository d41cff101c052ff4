package agent

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
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

// TestClient_ErrNotSentOnlyWithoutAConnection: a call whose connect fails
// wraps ErrNotSent (nothing was written); one that connected and then
// timed out may have been delivered and must not.
func TestClient_ErrNotSentOnlyWithoutAConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there any more: connects are refused
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-hang:
		}
	}))
	defer srv.Close()
	defer close(hang)
	for _, tt := range []struct {
		url     string
		notSent bool
	}{{refused, true}, {srv.URL, false}} {
		c, err := NewClient(tt.url, ClientOptions{Timeout: 200 * time.Millisecond, OneShot: true})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Lease(context.Background(), LeaseRequest{Controller: "c1", Term: 1, Voters: 3, TTLMillis: 2000, Master: "m:3306"})
		if err == nil {
			t.Fatalf("%s: no error", tt.url)
		}
		if got := errors.Is(err, ErrNotSent); got != tt.notSent {
			t.Errorf("%s: errors.Is(ErrNotSent) = %v, want %v: %v", tt.url, got, tt.notSent, err)
		}
	}
}
