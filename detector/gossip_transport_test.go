package detector

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestGossipShutdown_JoinToFrozenPeerDoesNotHoldIt joins a peer whose host
// accepts connections and never answers (frozen, or cut off after the
// handshake), with an hour's TCP timeout: the join blocks reading the
// push/pull reply, and Shutdown waits for the rejoin loop. Shutdown must
// still return, and NewGossip must not have waited for the join either.
func TestGossipShutdown_JoinToFrozenPeerDoesNotHoldIt(t *testing.T) {
	t.Parallel()
	frozen, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer frozen.Close()
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := frozen.Accept()
			if err != nil {
				return
			}
			accepted <- c // held open, never answered
		}
	}()

	g, err := NewGossip(GossipConfig{NodeName: "c1", Zone: "a", BindAddr: "127.0.0.1:0", Profile: "local",
		Join: []string{frozen.Addr().String()}, Logger: testLogger(t), tcpTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-accepted:
		defer c.Close()
	case <-time.After(time.Minute):
		_ = g.Shutdown(context.Background())
		t.Fatal("no join attempt reached the peer within a minute")
	}

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- g.Shutdown(ctx)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Shutdown still blocked a minute later: the join to the frozen peer holds it")
	}
}

// TestGossipShutdown_WholeGroupAtOnce stops three members at the same
// moment with an hour to spare, as `docker compose down` or a fleet-wide
// restart does. Each announces its leave and memberlist waits until the
// announcement went out to live peers; when the peers leave at the same
// moment nobody is left to send it to, and an unbounded wait lasted the
// caller's whole budget (measured: 15 s per controller). Every Shutdown
// must return. Repeated, since which member leaves first is a race.
func TestGossipShutdown_WholeGroupAtOnce(t *testing.T) {
	t.Parallel()
	for round := range 5 {
		gs := threeGossips(t, "", [3][]byte{})
		errs := make(chan error, len(gs))
		for _, g := range gs {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
				defer cancel()
				errs <- g.Shutdown(ctx)
			}()
		}
		for range gs {
			select {
			case <-errs: // a leave that timed out is logged, not fatal
			case <-time.After(time.Minute):
				t.Fatalf("round %d: a Shutdown still blocked a minute after the whole group was stopped", round)
			}
		}
	}
}

// TestLeaveTimeout: Leave's wait is its limit, or less when ctx ends
// sooner, and never zero or negative: memberlist waits without a limit
// for those, and ctx may be spent already.
func TestLeaveTimeout(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		deadline time.Time // zero: none
		want     time.Duration
	}{
		{"no deadline", time.Time{}, 2 * time.Second},
		{"deadline beyond the limit", now.Add(15 * time.Second), 2 * time.Second},
		{"deadline sooner", now.Add(500 * time.Millisecond), 500 * time.Millisecond},
		{"deadline now", now, time.Millisecond},
		{"deadline passed", now.Add(-time.Second), time.Millisecond},
	} {
		if got := leaveTimeout(tc.deadline, 2*time.Second, now); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
