package detector

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// blackhole accepts TCP connections and never answers, like a hung server.
func blackhole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

func TestProber_HungServerTimesOut(t *testing.T) {
	p := newTestProber(t, 200*time.Millisecond)
	start := time.Now()
	r := p.Probe(context.Background(), Target{Addr: blackhole(t), User: "u", Password: "p"})
	elapsed := time.Since(start)
	if r.OK || r.Reason != ReasonTimeout {
		t.Fatalf("hung server: %+v", r)
	}
	if elapsed > 200*time.Millisecond+graceAfterTimeout+200*time.Millisecond {
		t.Fatalf("probe took %s", elapsed)
	}
}

func TestProber_RefusedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	p := newTestProber(t, time.Second)
	if r := p.Probe(context.Background(), Target{Addr: addr, User: "u"}); r.Reason != ReasonRefused {
		t.Fatalf("closed port: %+v", r)
	}
}

func TestProber_NoPileUpWhileInFlight(t *testing.T) {
	p := newTestProber(t, 100*time.Millisecond)
	tg := Target{Addr: "127.0.0.1:1", User: "u"}
	release := make(chan struct{})
	err := p.run(context.Background(), tg, func(ctx context.Context, _ *pool) error {
		<-release // a driver call that ignores its deadline
		return nil
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("overrunning probe: %v", err)
	}
	start := time.Now()
	r := p.Probe(context.Background(), tg)
	if r.Reason != ReasonTimeout || !strings.Contains(r.Detail, "in flight") || time.Since(start) > 50*time.Millisecond {
		t.Fatalf("second probe should report a timeout at once: %+v after %s", r, time.Since(start))
	}
	o := p.ProbeReplica(context.Background(), tg, ReplicaObservation{Replica: tg.Addr, ReadPos: "f:1"})
	if o.Reachable || !strings.Contains(o.Error, "in flight") || o.ReadPos != "f:1" {
		t.Fatalf("replica probe while in flight: %+v", o)
	}
	close(release)
	waitFor(t, 5*time.Second, "in-flight probe to finish", func() (bool, string) {
		r := p.Probe(context.Background(), tg)
		return !strings.Contains(r.Detail, "in flight"), r.Detail
	})
}

func TestProber_CancelledContext(t *testing.T) {
	p := newTestProber(t, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := p.Probe(ctx, Target{Addr: blackhole(t), User: "u"})
	if r.OK || r.Reason == ReasonTimeout {
		t.Fatalf("cancelled probe must not look like a timeout: %+v", r)
	}
}

func TestProber_ClosedRefusesProbes(t *testing.T) {
	p := NewProber(ProberConfig{})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if r := p.Probe(context.Background(), Target{Addr: "127.0.0.1:1"}); r.OK {
		t.Fatalf("probe after Close: %+v", r)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
