package detector

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/quorumha/quorumha/internal/netabort"
)

// abortableTransport is memberlist's own UDP/TCP transport with TCP dials
// that Shutdown cuts short. A join or push/pull towards a peer whose host
// vanished otherwise holds the rejoin loop, and so Shutdown, for
// TCPTimeout per address (20 s with two peers gone, measured); see
// netabort.
type abortableTransport struct {
	*memberlist.NetTransport
	dialer *netabort.Dialer
}

// DialTimeout is memberlist.Transport's dial.
func (t *abortableTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.dialer.TCP(addr, timeout)
}

// DialAddressTimeout is memberlist.NodeAwareTransport's dial, the one
// memberlist calls when the transport has it.
func (t *abortableTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.dialer.TCP(a.Addr, timeout)
}

// newAbortableTransport binds mc.BindAddr:mc.BindPort as memberlist.Create
// does when given no transport: a port of 0 picks a free one (retried,
// since UDP and TCP must get the same port) and becomes mc.BindPort and
// mc.AdvertisePort.
func newAbortableTransport(mc *memberlist.Config) (*abortableTransport, error) {
	nc := &memberlist.NetTransportConfig{BindAddrs: []string{mc.BindAddr}, BindPort: mc.BindPort, Logger: mc.Logger}
	tries := 1
	if mc.BindPort == 0 {
		tries = 10
	}
	var nt *memberlist.NetTransport
	var err error
	for range tries {
		if nt, err = memberlist.NewNetTransport(nc); err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("gossip transport: %w", err)
	}
	if mc.BindPort == 0 {
		mc.BindPort = nt.GetAutoBindPort()
		mc.AdvertisePort = mc.BindPort
	}
	return &abortableTransport{NetTransport: nt, dialer: netabort.New()}, nil
}
