package consensus

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// tlsStreamLayer is raft's StreamLayer over mutual TLS: it accepts TLS
// connections on the raft address and dials peers with the same config, so
// both ends present a certificate and verify the other's against the CA.
// With ClientAuth RequireAndVerifyClientCert a server without a certificate
// the CA signed cannot send raft RPCs (no votes, no entries, no join), and
// with RootCAs it cannot pose as a member towards us either.
type tlsStreamLayer struct {
	ln        net.Listener // a tls.Listener
	config    *tls.Config
	advertise net.Addr
}

// newTLSStreamLayer listens on bind. The advertised address is the
// listener's own, as raft's TCP transport does when given no advertise
// address, and must likewise be a specific address.
func newTLSStreamLayer(bind string, config *tls.Config) (*tlsStreamLayer, error) {
	if config == nil || len(config.Certificates) == 0 && config.GetCertificate == nil {
		return nil, fmt.Errorf("%w: TLS has no certificate", ErrInvalidConfig)
	}
	if config.ClientAuth != tls.RequireAndVerifyClientCert || config.ClientCAs == nil || config.RootCAs == nil {
		return nil, fmt.Errorf("%w: raft TLS must be mutual: RequireAndVerifyClientCert with ClientCAs and RootCAs", ErrInvalidConfig)
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	addr, ok := ln.Addr().(*net.TCPAddr)
	if !ok || addr.IP == nil || addr.IP.IsUnspecified() {
		_ = ln.Close()
		return nil, fmt.Errorf("%w: raft address %s is not advertisable", ErrInvalidConfig, ln.Addr())
	}
	return &tlsStreamLayer{ln: tls.NewListener(ln, config), config: config, advertise: addr}, nil
}

// Accept returns the next connection. Its handshake runs on the first read,
// in raft's per-connection goroutine, so one slow or hostile client cannot
// hold up the accept loop; a failed handshake ends that connection only.
func (l *tlsStreamLayer) Accept() (net.Conn, error) { return l.ln.Accept() }

// Close stops listening.
func (l *tlsStreamLayer) Close() error { return l.ln.Close() }

// Addr is the address raft advertises for this node.
func (l *tlsStreamLayer) Addr() net.Addr { return l.advertise }

// Dial connects to a peer and completes the handshake within timeout, so a
// peer with a certificate we do not trust fails here, not mid-RPC.
func (l *tlsStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: l.config}
	conn, err := d.DialContext(ctx, "tcp", string(address))
	if err != nil {
		return nil, fmt.Errorf("raft TLS dial %s: %w", address, err)
	}
	return conn, nil
}

// networkTransport builds raft's transport on cfg.RaftAddr: mutual TLS
// when cfg.TLS is set, plain TCP otherwise.
func networkTransport(cfg *Config, logger hclog.Logger) (*raft.NetworkTransport, error) {
	if cfg.TLS == nil {
		return raft.NewTCPTransportWithLogger(cfg.RaftAddr, nil, tcpMaxPool, tcpTimeout, logger)
	}
	stream, err := newTLSStreamLayer(cfg.RaftAddr, cfg.TLS)
	if err != nil {
		return nil, err
	}
	return raft.NewNetworkTransportWithLogger(stream, tcpMaxPool, tcpTimeout, logger), nil
}
