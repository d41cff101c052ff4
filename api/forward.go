package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/quorumha/quorumha/consensus"
)

// retryHeader marks an answer after which a forwarding follower may retry
// elsewhere, because nothing was applied.
const retryHeader = "X-Quorumha-Retry"

// ForwardedToHeader names the leader a forwarded write was answered by.
const ForwardedToHeader = "X-Quorumha-Forwarded-To"

// maxForwardedResponse bounds the leader's answer relayed to the client.
const maxForwardedResponse = 4 << 20

// forward sends a write to the leader's HTTP address and relays its answer.
// While no leader (or no address for it) is known, or the leader cannot be
// dialled, it retries with jittered backoff for ForwardHoldTimeout, then
// fails with consensus.ErrNoLeader (503). If this node becomes the leader
// meanwhile, local (when not nil) handles the write here.
func (s *Server) forward(r *http.Request, body []byte, local func() (any, error)) (any, error) {
	ctx := r.Context()
	hold, cancel := context.WithTimeout(ctx, s.cfg.ForwardHoldTimeout)
	defer cancel()
	var last error
	for attempt := 0; ; attempt++ {
		if local != nil && s.raft.IsLeader() {
			return local()
		}
		id, base, err := s.leaderHTTP()
		if errors.Is(err, ErrForward) {
			return nil, err // a refusal, not a wait for a leader
		}
		if err == nil {
			var resp *rawResponse
			resp, err = s.forwardOnce(ctx, id, base, r, body)
			if err == nil {
				return resp, nil
			}
			if !errors.Is(err, errRetryable) {
				return nil, err
			}
		}
		last = err
		if err := sleepJitter(hold, attempt); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("forward write: %w", ctx.Err())
			}
			return nil, fmt.Errorf("forward write: gave up after %s: %w", s.cfg.ForwardHoldTimeout, last)
		}
	}
}

// errRetryable marks a forwarding failure after which nothing was applied.
var errRetryable = errors.New("retryable")

// leaderHTTP returns the leader's ID and the base URL of its API.
func (s *Server) leaderHTTP() (id, base string, err error) {
	id, _ = s.raft.Leader()
	switch {
	case id == "":
		return "", "", consensus.ErrNoLeader
	case id == s.cfg.NodeID:
		// Raft names us but we are not (yet) serving as leader.
		return "", "", fmt.Errorf("%w: this node is becoming the leader", consensus.ErrNoLeader)
	}
	meta, ok := s.state.Node(id)
	if !ok || meta.HTTPAddr == "" {
		return "", "", fmt.Errorf("%w: leader %s has not recorded its HTTP address yet", consensus.ErrNoLeader, id)
	}
	base = baseURL(meta.HTTPAddr)
	if s.cfg.TLS != nil && !strings.HasPrefix(base, "https://") {
		// A follower that serves HTTPS was given its client's token over
		// TLS; sending it on in clear (to an address anyone could have
		// recorded) would undo that.
		return "", "", fmt.Errorf("%w: leader %s records a plain HTTP address %s and this controller serves HTTPS: refusing to forward the token in clear",
			ErrForward, id, meta.HTTPAddr)
	}
	return id, base, nil
}

// baseURL adds http:// to a bare host:port.
func baseURL(addr string) string {
	if strings.Contains(addr, "://") {
		return strings.TrimSuffix(addr, "/")
	}
	return "http://" + addr
}

// forwardOnce makes one attempt. Errors that guarantee nothing was applied
// (dial failures, a leader that lost leadership) wrap errRetryable.
func (s *Server) forwardOnce(ctx context.Context, id, base string, r *http.Request, body []byte) (*rawResponse, error) {
	req, err := http.NewRequestWithContext(ctx, r.Method, base+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: build request for %s: %w", ErrForward, id, err)
	}
	for _, h := range []string{"Authorization", "Content-Type", "Accept", "User-Agent"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	req.Header.Set(ForwardedHeader, s.cfg.NodeID)
	resp, err := s.client.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, fmt.Errorf("%w: leader %s at %s unreachable: %w: %w", consensus.ErrNoLeader, id, base, errRetryable, err)
		}
		return nil, fmt.Errorf("%w: leader %s at %s: %w", ErrForward, id, base, err)
	}
	defer func() { _ = resp.Body.Close() }() // read fully below; close error is moot
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxForwardedResponse))
	if err != nil {
		return nil, fmt.Errorf("%w: read answer of leader %s: %w", ErrForward, id, err)
	}
	if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get(retryHeader) != "" {
		return nil, fmt.Errorf("%w: %s is no longer the leader: %w", consensus.ErrNoLeader, id, errRetryable)
	}
	h := http.Header{}
	for _, k := range []string{"Content-Type", "Www-Authenticate"} {
		if v := resp.Header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	h.Set(ForwardedToHeader, id)
	return &rawResponse{status: resp.StatusCode, header: h, body: out}, nil
}

// sleepJitter waits a jittered, growing delay (25ms doubling to 400ms) or
// until ctx ends.
func sleepJitter(ctx context.Context, attempt int) error {
	d := min(25*time.Millisecond<<min(attempt, 4), 400*time.Millisecond)
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
