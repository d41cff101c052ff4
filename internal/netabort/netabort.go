// Package netabort dials peers under a context one call cancels, and
// closes at that call every connection it dialled.
//
// raft's Shutdown waits for its replication, heartbeat and vote
// goroutines, and the gossip layer's shutdown for its join loop; each may
// be inside a dial or a read to a peer whose host has gone away. No RST
// comes back from such a host, so the goroutine waits out the transport's
// timeout (10 s in both libraries, several in a row). A controller stopped
// after its peers' hosts went away took 10-22 s to exit. Abort makes those
// goroutines fail at once. Connections peers dialled to us are not
// tracked: the libraries do not wait for them.
package netabort

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// ErrAborted is what a dial returns once Abort was called.
var ErrAborted = errors.New("dial aborted: shutting down")

// Dialer tracks the connections it dialled until they are closed.
type Dialer struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	aborted bool
	conns   map[*conn]struct{}
}

// New returns a Dialer that dials until Abort.
func New() *Dialer {
	ctx, cancel := context.WithCancel(context.Background())
	return &Dialer{ctx: ctx, cancel: cancel, conns: map[*conn]struct{}{}}
}

// Dial calls dial with a context that ends after timeout or at Abort,
// whichever comes first, and returns its connection, tracked.
func (d *Dialer) Dial(address string, timeout time.Duration, dial func(ctx context.Context) (net.Conn, error)) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(d.ctx, timeout)
	defer cancel()
	c, err := dial(ctx)
	if err != nil {
		if d.ctx.Err() != nil {
			return nil, fmt.Errorf("dial %s: %w", address, ErrAborted)
		}
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.aborted {
		_ = c.Close()
		return nil, fmt.Errorf("dial %s: %w", address, ErrAborted)
	}
	tc := &conn{Conn: c, d: d}
	d.conns[tc] = struct{}{}
	return tc, nil
}

// TCP dials address over TCP (see Dial).
func (d *Dialer) TCP(address string, timeout time.Duration) (net.Conn, error) {
	return d.Dial(address, timeout, func(ctx context.Context) (net.Conn, error) {
		var nd net.Dialer
		return nd.DialContext(ctx, "tcp", address)
	})
}

// Abort fails dials in flight and every later one, and closes the
// connections dialled so far. It is safe to call more than once.
func (d *Dialer) Abort() {
	d.cancel()
	d.mu.Lock()
	d.aborted = true
	conns := d.conns
	d.conns = map[*conn]struct{}{}
	d.mu.Unlock()
	for c := range conns {
		_ = c.Conn.Close()
	}
}

// conn leaves its Dialer's set when its owner closes it.
type conn struct {
	net.Conn
	d *Dialer
}

func (c *conn) Close() error {
	c.d.mu.Lock()
	delete(c.d.conns, c)
	c.d.mu.Unlock()
	return c.Conn.Close()
}
