package consensus

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/quorumha/quorumha/internal/netabort"
)

// listener is the half of a raft StreamLayer this package implements per
// protocol (plain TCP, mutual TLS); abortableStream adds the dial side.
type listener interface {
	Accept() (net.Conn, error)
	Close() error
	Addr() net.Addr
	dialContext(ctx context.Context, address string) (net.Conn, error)
}

// abortableStream is raft's StreamLayer with dials Node.Shutdown cuts
// short: between raft's Shutdown and the wait for its goroutines, abort
// ends the dials and RPCs they may be stuck in towards a peer whose host
// is gone (see netabort).
type abortableStream struct {
	listener
	dialer *netabort.Dialer
}

func newAbortableStream(l listener) *abortableStream {
	return &abortableStream{listener: l, dialer: netabort.New()}
}

// Dial connects to a peer within timeout unless aborted first.
func (s *abortableStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return s.dialer.Dial(string(address), timeout, func(ctx context.Context) (net.Conn, error) {
		return s.dialContext(ctx, string(address))
	})
}

func (s *abortableStream) abort() { s.dialer.Abort() }

// tcpListener is the plain-TCP listener: what raft's TCPStreamLayer does,
// dialling with a context. Accept, Close and Addr serve tlsListener too.
type tcpListener struct {
	ln        net.Listener
	advertise net.Addr
}

func (l *tcpListener) Accept() (net.Conn, error) { return l.ln.Accept() }
func (l *tcpListener) Close() error              { return l.ln.Close() }
func (l *tcpListener) Addr() net.Addr            { return l.advertise }

func (l *tcpListener) dialContext(ctx context.Context, address string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", address)
}

// listenAdvertisable listens on bind and returns the listener's own
// address, which raft advertises to peers: like raft's TCP transport given
// no advertise address, it must be a specific IP (not 0.0.0.0 or ::).
func listenAdvertisable(bind string) (net.Listener, *net.TCPAddr, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, nil, err
	}
	addr, ok := ln.Addr().(*net.TCPAddr)
	if !ok || addr.IP == nil || addr.IP.IsUnspecified() {
		_ = ln.Close()
		return nil, nil, fmt.Errorf("%w: raft address %s is not advertisable", ErrInvalidConfig, ln.Addr())
	}
	return ln, addr, nil
}

// noPipelining switches raft's pipelined replication off (one AppendEntries
// in flight per follower). hashicorp/raft v1.7's pipeline deadlocks when a
// follower answers Success=false while the leader sends the next append:
// pipelineDecode returns, the decoder blocks handing over the next answer,
// the sender blocks handing over the next request, and the Close that
// would free both is deferred in the blocked sender. The follower then
// gets heartbeats but never another entry (the group runs one voter
// short), and raft's Shutdown waits for ever (hashicorp/raft#612; seen
// here as a 25-minute CI hang). A controller commits a few entries a
// second; pipelining buys it nothing.
const noPipelining = 1

// networkTransport builds raft's transport on cfg.RaftAddr: mutual TLS
// when cfg.TLS is set, plain TCP otherwise. abort is for Shutdown.
func networkTransport(cfg *Config, logger hclog.Logger) (t *raft.NetworkTransport, abort func(), err error) {
	var l listener
	if cfg.TLS != nil {
		l, err = newTLSListener(cfg.RaftAddr, cfg.TLS)
	} else {
		var ln net.Listener
		var addr *net.TCPAddr
		if ln, addr, err = listenAdvertisable(cfg.RaftAddr); err == nil {
			l = &tcpListener{ln: ln, advertise: addr}
		}
	}
	if err != nil {
		return nil, nil, err
	}
	timeout := tcpTimeout
	if cfg.transportTimeout > 0 {
		timeout = cfg.transportTimeout
	}
	stream := newAbortableStream(l)
	t = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: stream, MaxPool: tcpMaxPool, Timeout: timeout, Logger: logger,
		MaxRPCsInFlight: noPipelining,
	})
	return t, stream.abort, nil
}
