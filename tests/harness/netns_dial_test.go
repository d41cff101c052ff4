package harness

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// echoOnce accepts connections on l and writes greeting to each.
func echoOnce(t *testing.T, l net.Listener, greeting string) {
	t.Helper()
	done := make(chan struct{})
	go func() { // owned by the test: Cleanup closes l and waits
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, greeting)
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = l.Close(); <-done })
}

func readGreeting(c net.Conn) (string, error) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

func TestZoneDial_ReachesListenersInsideItsZoneOnly(t *testing.T) {
	nw := NewNet(t, 2)
	za, zb := nw.Zones[0], nw.Zones[1]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A listener on the zone's own loopback proves where the dialer dials
	// from: the root namespace's 127.0.0.1 has nothing on that port.
	lo, err := za.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echoOnce(t, lo, "zone-a-loopback")
	c, err := za.Dial(ctx, "tcp", lo.Addr().String())
	if err != nil {
		t.Fatalf("dial the zone's loopback from inside the zone: %v", err)
	}
	if got, err := readGreeting(c); err != nil || got != "zone-a-loopback" {
		t.Fatalf("read %q, %v", got, err)
	}
	if c, err := net.DialTimeout("tcp", lo.Addr().String(), time.Second); err == nil {
		got, _ := readGreeting(c)
		t.Fatalf("root namespace reached zone a's loopback listener (%q): the listener is not in the zone", got)
	}

	// A listener on the zone's address: reachable from the root namespace
	// and from another zone until the zone is cut off, and from inside the
	// zone after.
	l, err := za.Listen("tcp", za.IP+":0")
	if err != nil {
		t.Fatal(err)
	}
	echoOnce(t, l, "zone-a")
	addr := l.Addr().String()
	dialers := map[string]func(context.Context) (net.Conn, error){
		"root":   func(ctx context.Context) (net.Conn, error) { var d net.Dialer; return d.DialContext(ctx, "tcp", addr) },
		"zone b": func(ctx context.Context) (net.Conn, error) { return zb.Dial(ctx, "tcp", addr) },
		"zone a": func(ctx context.Context) (net.Conn, error) { return za.Dial(ctx, "tcp", addr) },
	}
	for name, dial := range dialers {
		c, err := dial(ctx)
		if err != nil {
			t.Fatalf("before the cut, %s: %v", name, err)
		}
		if got, err := readGreeting(c); err != nil || got != "zone-a" {
			t.Fatalf("before the cut, %s read %q, %v", name, got, err)
		}
	}

	nw.Isolate(za, nw.HostIP, zb.IP)
	for name, dial := range dialers {
		dctx, dcancel := context.WithTimeout(ctx, 700*time.Millisecond)
		c, err := dial(dctx)
		dcancel()
		if name == "zone a" {
			if err != nil {
				t.Fatalf("after the cut, from inside zone a: %v", err)
			}
			if got, err := readGreeting(c); err != nil || got != "zone-a" {
				t.Fatalf("after the cut, zone a read %q, %v", got, err)
			}
			continue
		}
		if err == nil {
			c.Close()
			t.Fatalf("after the cut, %s still reaches zone a", name)
		}
		if !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "timeout") {
			t.Fatalf("after the cut, %s: %v; want a timeout (packets dropped, nothing refused)", name, err)
		}
	}
	// Cutting zone a leaves the other zones' paths alone.
	rootL, err := net.Listen("tcp", nw.HostIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	echoOnce(t, rootL, "root")
	if c, err := zb.Dial(ctx, "tcp", rootL.Addr().String()); err != nil {
		t.Fatalf("zone b to the root namespace while zone a is cut: %v", err)
	} else if got, err := readGreeting(c); err != nil || got != "root" {
		t.Fatalf("zone b read %q, %v", got, err)
	}
	dctx, dcancel := context.WithTimeout(ctx, 700*time.Millisecond)
	if c, err := za.Dial(dctx, "tcp", rootL.Addr().String()); err == nil {
		c.Close()
		t.Fatal("cut-off zone a still reaches the root namespace")
	}
	dcancel()
	nw.Heal(za)
	if c, err := dialers["root"](ctx); err != nil {
		t.Fatalf("after healing, root: %v", err)
	} else {
		c.Close()
	}
}

func TestZoneDial_ThreadsComeBackToTheRootNamespace(t *testing.T) {
	nw := NewNet(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	root, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	l, err := nw.Zones[0].Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echoOnce(t, l, "x")
	// Many dials: had a switched thread gone back to the scheduler, some of
	// these goroutines' reads of their thread's namespace would see it.
	for range 50 {
		c, err := nw.Zones[0].Dial(ctx, "tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	for range 200 {
		errc := make(chan error, 1)
		go func() {
			ns, err := os.Readlink("/proc/thread-self/ns/net")
			if err == nil && ns != root {
				err = errors.New("goroutine ran on a thread in namespace " + ns + ", root is " + root)
			}
			errc <- err
		}()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := nw.Zones[0].Dial(ctx, "tcp", "localhost:1"); err == nil || !strings.Contains(err.Error(), "IP address") {
		t.Fatalf("dial by host name: %v, want refused", err)
	}
}

func TestNewNet_RemovesLeftoversOfDeadTestProcesses(t *testing.T) {
	nw := NewNet(t, 2)
	dead := nw.Zones[1].Name
	// Pretend the owner died: pid 1 runs, but not since that start time.
	if err := os.WriteFile(ownerFile(nw.subnet), []byte("1 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := NewNet(t, 1) // its NewNet sweeps leftovers under the lock
	if other.subnet == nw.subnet {
		nw.subnet = 0 // reused: nw's cleanup must not remove other's network
	}
	if slices.Contains(netnsNames(), dead) {
		t.Fatalf("leftover namespace %s survived", dead)
	}
	if _, err := os.Stat(ownerFile(other.subnet)); err != nil {
		t.Fatalf("live net's owner record: %v", err)
	}
	if _, err := other.Zones[0].Listen("tcp", other.Zones[0].IP+":0"); err != nil {
		t.Fatalf("live net damaged by the sweep: %v", err)
	}
}
