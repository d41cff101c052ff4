package consensus

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
)

// tlsListener is raft's stream listener over mutual TLS: it accepts TLS
// connections on the raft address and dials peers with the same config, so
// both ends present a certificate and verify the other's against the CA.
// With ClientAuth RequireAndVerifyClientCert a server without a certificate
// the CA signed cannot send raft RPCs (no votes, no entries, no join), and
// with RootCAs it cannot pose as a member towards us either.
//
// It is tcpListener over a tls.Listener: Accept returns a connection whose
// handshake runs on the first read, in raft's per-connection goroutine, so
// one slow or hostile client cannot hold up the accept loop, and a failed
// handshake ends that connection only. Only the dial differs.
type tlsListener struct {
	tcpListener
	config *tls.Config
}

// newTLSListener listens on bind (see listenAdvertisable).
func newTLSListener(bind string, config *tls.Config) (*tlsListener, error) {
	if config == nil || len(config.Certificates) == 0 && config.GetCertificate == nil {
		return nil, fmt.Errorf("%w: TLS has no certificate", ErrInvalidConfig)
	}
	if config.ClientAuth != tls.RequireAndVerifyClientCert || config.ClientCAs == nil || config.RootCAs == nil {
		return nil, fmt.Errorf("%w: raft TLS must be mutual: RequireAndVerifyClientCert with ClientCAs and RootCAs", ErrInvalidConfig)
	}
	ln, addr, err := listenAdvertisable(bind)
	if err != nil {
		return nil, err
	}
	return &tlsListener{tcpListener: tcpListener{ln: tls.NewListener(ln, config), advertise: addr}, config: config}, nil
}

// dialContext connects to a peer and completes the handshake within ctx,
// so a peer with a certificate we do not trust fails here, not mid-RPC.
func (l *tlsListener) dialContext(ctx context.Context, address string) (net.Conn, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: l.config}
	conn, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, fmt.Errorf("raft TLS dial %s: %w", address, err)
	}
	return conn, nil
}
