package netabort

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// waitErr returns what ch delivers, failing the test when nothing comes
// within a minute (the dials and reads below would block for an hour or
// forever without Abort).
func waitErr(t *testing.T, what string, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		if err == nil {
			t.Fatalf("%s: no error after Abort", what)
		}
		return err
	case <-time.After(time.Minute):
		t.Fatalf("%s still blocked a minute after Abort", what)
		return nil
	}
}

// TestAbort_EndsDialsAndConns checks the two ways a goroutine hangs on a
// vanished peer: a dial in flight (one that would block for an hour) and
// a read on an established connection the peer never answers.
func TestAbort_EndsDialsAndConns(t *testing.T) {
	t.Parallel()
	d := New()
	dialed := make(chan error, 1)
	go func() {
		_, err := d.Dial("vanished:7000", time.Hour, func(ctx context.Context) (net.Conn, error) {
			<-ctx.Done() // a SYN nobody answers
			return nil, ctx.Err()
		})
		dialed <- err
	}()

	// A peer that accepts (the kernel completes the handshake from its
	// backlog) and never answers.
	frozen, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer frozen.Close()
	c, err := d.TCP(frozen.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	read := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1)) // no deadline: would block forever
		read <- err
	}()

	d.Abort()
	if err := waitErr(t, "dial in flight", dialed); !errors.Is(err, ErrAborted) {
		t.Errorf("dial in flight: %v, want ErrAborted", err)
	}
	waitErr(t, "read on a dialled connection", read)
	if _, err := d.TCP(frozen.Addr().String(), 10*time.Second); !errors.Is(err, ErrAborted) {
		t.Fatalf("dial after Abort: %v, want ErrAborted", err)
	}
	d.Abort() // twice is fine
}

// TestDial_ClosedConnLeavesTheSet checks that connections their owner
// closed are forgotten (a long-lived transport dials many).
func TestDial_ClosedConnLeavesTheSet(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := New()
	for range 5 {
		c, err := d.TCP(ln.Addr().String(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
	}
	d.mu.Lock()
	n := len(d.conns)
	d.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d closed connections still tracked", n)
	}
}
