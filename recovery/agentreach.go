package recovery

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"
)

// agentReachRetry is the pause between two failed connects to the agent.
const agentReachRetry = 200 * time.Millisecond

// reachAttempt is one TCP connect to the agent.
type reachAttempt struct {
	Start, End time.Time
	Err        error
}

// reachVerdict is the pure rule salvage uses: the agent is reachable once
// any connect succeeded; it is unreachable once connects have failed, with
// none succeeding, for at least connectTimeout (from the first one's start
// to the last one's end: one connect that timed out, or several refused);
// otherwise it is not known yet.
func reachVerdict(attempts []reachAttempt, connectTimeout time.Duration) (decided, reachable bool, why string) {
	if len(attempts) == 0 {
		return false, false, ""
	}
	for _, a := range attempts {
		if a.Err == nil {
			return true, true, ""
		}
	}
	first, last := attempts[0], attempts[len(attempts)-1]
	span := last.End.Sub(first.Start)
	if span < connectTimeout {
		return false, false, ""
	}
	return true, false, fmt.Sprintf("no TCP connection in %d attempts over %s (last: %v)",
		len(attempts), span.Round(time.Millisecond), last.Err)
}

// agentReach connects to one agent until a connect succeeds or it is
// stopped, and keeps the attempts for reachVerdict.
type agentReach struct {
	addr    string
	timeout time.Duration
	mu      sync.Mutex
	tries   []reachAttempt
	changed chan struct{} // closed and replaced on every attempt
}

// NetDialAgentTCP is ExecutorConfig.DialAgentTCP for production: a plain
// TCP connect from this controller.
func NetDialAgentTCP(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// agentHostPort is the host:port of an agent base URL.
func agentHostPort(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	if u.Port() != "" {
		return u.Host, nil
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

// startAgentReach starts probing the old master's agent, if it has one
// and salvage is wired, and returns the function that stops the probe and
// waits for it (the run's owner calls it when Execute returns).
func (r *failoverRun) startAgentReach(ctx context.Context) func() {
	rec, ok := r.e.state.Record(r.id)
	if !ok || r.e.cfg.Agents == nil || r.e.cfg.DialAgentTCP == nil {
		return func() {}
	}
	base := r.cc.agentOf(rec.OldMaster)
	if base == "" {
		return func() {}
	}
	addr, err := agentHostPort(base)
	if err != nil {
		return func() {}
	}
	p := &agentReach{addr: addr, timeout: r.e.cfg.SalvageConnectTimeout, changed: make(chan struct{})}
	r.reach = p
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { // owned by the returned stop function
		defer close(done)
		p.run(pctx, r.e.cfg.DialAgentTCP)
	}()
	return func() {
		cancel()
		<-done
	}
}

func (p *agentReach) run(ctx context.Context, dial func(context.Context, string) (net.Conn, error)) {
	for ctx.Err() == nil {
		start := time.Now()
		dctx, cancel := context.WithTimeout(ctx, p.timeout)
		c, err := dial(dctx, p.addr)
		cancel()
		if ctx.Err() != nil {
			return // stopped: an attempt cut short proves nothing
		}
		if c != nil {
			_ = c.Close()
		}
		p.mu.Lock()
		p.tries = append(p.tries, reachAttempt{Start: start, End: time.Now(), Err: err})
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
		if err == nil {
			return
		}
		if err := sleepCtx(ctx, agentReachRetry); err != nil {
			return
		}
	}
}

// wait returns the verdict once it is decided, or undecided when ctx ends
// (or the probe stopped without one).
func (p *agentReach) wait(ctx context.Context) (decided, reachable bool, why string) {
	for {
		p.mu.Lock()
		decided, reachable, why = reachVerdict(p.tries, p.timeout)
		ch := p.changed
		p.mu.Unlock()
		if decided {
			return decided, reachable, why
		}
		select {
		case <-ctx.Done():
			return false, false, ""
		case <-ch:
		}
	}
}
