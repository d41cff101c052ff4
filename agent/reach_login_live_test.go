package agent

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
)

// TestReach_DoesNotBlockTheHost: with name resolution on (the servers'
// default) and max_connect_errors=3, ten reach checks from one client
// address leave that address able to connect, while four checks that hang
// up after the greeting (what the check did before) get the next one
// refused with 1129 "host blocked". The clients use 127.0.0.2 and .3: the
// server keeps no host cache for 127.0.0.1 alone.
func TestReach_DoesNotBlockTheHost(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a MariaDB server")
	}
	sb := sandbox.New(t, sandbox.Options{Replicas: -1, ExtraConfig: []string{"skip_name_resolve=OFF", "max_connect_errors=3"}})
	addr := sb.Instance(0).Addr()
	ctx := context.Background()
	from := func(ip string) *net.Dialer { return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}} }

	// The negative control: greeting only, as before.
	for i := range 4 {
		c, err := from("127.0.0.3").DialContext(ctx, "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := readPacket(c); err != nil {
			t.Fatalf("greeting-only connection %d: %v", i, err)
		}
		c.Close()
	}
	// The server counts the error when it notices the hang-up: poll.
	var blocked Reach
	deadline := time.Now().Add(10 * time.Second)
	for {
		blocked = checkReach(ctx, from("127.0.0.3"), addr, 2*time.Second, DefaultReachUser)
		if blocked.ErrorCode == 1129 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if blocked.ErrorCode != 1129 || !blocked.Reachable {
		t.Fatalf("after greeting-only connections, a check from 127.0.0.3 = %+v; want the host blocked (1129): "+
			"without that this test cannot tell a fix from a server that never blocks", blocked)
	}

	// Absence is the point: keep checking for a second after the ten, so
	// that errors the server would count after the fact have been counted.
	end := time.Now().Add(time.Second)
	for i := 1; i <= 10 || time.Now().Before(end); i++ {
		r := checkReach(ctx, from("127.0.0.2"), addr, 2*time.Second, DefaultReachUser)
		if !r.Reachable || r.ErrorCode != 0 || !strings.HasPrefix(r.Login, LoginDenied+": error 1045") {
			t.Fatalf("check %d from 127.0.0.2 = %+v; want reachable, the login denied (1045), no server error", i, r)
		}
		if i > 10 {
			time.Sleep(50 * time.Millisecond)
		}
	}
}
