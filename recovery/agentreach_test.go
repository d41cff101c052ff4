package recovery

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

func TestReachVerdict(t *testing.T) {
	t0 := time.Unix(1000, 0)
	refused := errors.New("connection refused")
	at := func(start, end time.Duration, err error) reachAttempt {
		return reachAttempt{Start: t0.Add(start), End: t0.Add(end), Err: err}
	}
	ms := time.Millisecond
	for _, tc := range []struct {
		name               string
		tries              []reachAttempt
		decided, reachable bool
	}{
		{"nothing tried yet", nil, false, false},
		{"one connect succeeded", []reachAttempt{at(0, ms, nil)}, true, true},
		{"a success after failures", []reachAttempt{at(0, 1000*ms, refused), at(1200*ms, 1201*ms, nil)}, true, true},
		{"a connect that timed out after the whole connect timeout", []reachAttempt{at(0, 1000*ms, context.DeadlineExceeded)}, true, false},
		{"refusals spanning the connect timeout", []reachAttempt{at(0, ms, refused), at(400*ms, 401*ms, refused), at(1000*ms, 1001*ms, refused)}, true, false},
		{"refusals for less than the connect timeout: a restart may be under way", []reachAttempt{at(0, ms, refused), at(400*ms, 401*ms, refused)}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, r, why := reachVerdict(tc.tries, time.Second)
			if d != tc.decided || r != tc.reachable {
				t.Fatalf("reachVerdict = decided %v reachable %v (%q), want %v %v", d, r, why, tc.decided, tc.reachable)
			}
			if d && !r && why == "" {
				t.Fatal("unreachable without a reason for the loss window")
			}
		})
	}
}

func TestAgentHostPort(t *testing.T) {
	for in, want := range map[string]string{
		"http://10.0.0.1:7080":   "10.0.0.1:7080",
		"https://db1.example":    "db1.example:443",
		"http://db1.example":     "db1.example:80",
		"https://[fd00::1]:7080": "[fd00::1]:7080",
	} {
		got, err := agentHostPort(in)
		if err != nil || got != want {
			t.Errorf("agentHostPort(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// An agent whose dial never answers is decided unreachable after the
// connect timeout; one that accepts is decided reachable at once.
func TestAgentReach_Wait(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run := func(dial func(context.Context, string) (net.Conn, error)) (bool, bool) {
		p := &agentReach{addr: "agent:1", timeout: 100 * time.Millisecond, changed: make(chan struct{})}
		pctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); p.run(pctx, dial) }()
		d, r, _ := p.wait(ctx)
		stop()
		<-done
		return d, r
	}
	silent := func(ctx context.Context, _ string) (net.Conn, error) { <-ctx.Done(); return nil, ctx.Err() }
	if d, r := run(silent); !d || r {
		t.Fatalf("silent host: decided %v reachable %v, want unreachable", d, r)
	}
	accepts := func(context.Context, string) (net.Conn, error) { a, b := net.Pipe(); _ = b.Close(); return a, nil }
	if d, r := run(accepts); !d || !r {
		t.Fatalf("accepting agent: decided %v reachable %v, want reachable", d, r)
	}
}
