package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"runtime"

	"github.com/go-sql-driver/mysql"
	"golang.org/x/sys/unix"
)

// netnsDir is where `ip netns add` mounts the named namespaces.
const netnsDir = "/var/run/netns"

// Dial connects to addr (an IP literal with a port) from inside the zone,
// as a client running on that zone's host would: the socket is made inside
// the zone's namespace and keeps it for its whole life, whichever thread
// later reads or writes it. No helper process is involved.
func (z *Zone) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return DialInNetns(ctx, z.Name, network, addr)
}

// Listen opens a listener inside the zone (for tests of the zone's paths).
func (z *Zone) Listen(network, addr string) (net.Listener, error) {
	return ListenInNetns(z.Name, network, addr)
}

// MySQLNet returns the go-sql-driver network name whose connections are
// dialled from inside the zone (registered on first use), for DSNs such as
// sandbox.DSNVia: a *sql.DB with it is a client living in that zone.
func (z *Zone) MySQLNet() string {
	name := "netns-" + z.Name
	z.registerOnce.Do(func() {
		// The driver's registry is process-wide. Zone names are unique per
		// live Net, and a later Net that reuses a name dials the same named
		// namespace, so re-registering is harmless.
		mysql.RegisterDialContext(name, func(ctx context.Context, addr string) (net.Conn, error) {
			return DialInNetns(ctx, z.Name, "tcp", addr)
		})
	})
	return name
}

// DialInNetns dials addr from inside the named network namespace. addr must
// hold an IP literal: a host name would be resolved by the Go resolver,
// and several addresses would be raced from goroutines not locked to the
// switched thread.
func DialInNetns(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	if err := ipLiteral(addr); err != nil {
		return nil, err
	}
	var c net.Conn
	err := inNetns(ns, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// ListenInNetns listens on addr inside the named network namespace.
func ListenInNetns(ns, network, addr string) (net.Listener, error) {
	if err := ipLiteral(addr); err != nil {
		return nil, err
	}
	var l net.Listener
	err := inNetns(ns, func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

func ipLiteral(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("netns dial %q: %w", addr, err)
	}
	if net.ParseIP(host) == nil {
		return fmt.Errorf("netns dial %q: host must be an IP address", addr)
	}
	return nil
}

// inNetns runs f on an OS thread switched into the named namespace. The
// goroutine locks its thread, enters the namespace, runs f (sockets it
// creates belong to that namespace) and switches back. Only a thread that
// is back in its own namespace is unlocked and returned to the scheduler;
// if switching back fails the goroutine ends still locked, and Go then
// terminates the thread instead of reusing it in the wrong namespace.
func inNetns(ns string, f func() error) error {
	errc := make(chan error, 1)
	// Owned by this call: it waits on errc, and f is bounded by its caller's
	// context (a dial) or does not block (a listen).
	go func() {
		runtime.LockOSThread()
		errc <- runSwitched(ns, f)
	}()
	return <-errc
}

// runSwitched is inNetns's body on the locked thread; it unlocks the
// thread when (and only when) the thread is in its original namespace.
func runSwitched(ns string, f func() error) error {
	back, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns %s: own namespace: %w", ns, err)
	}
	defer unix.Close(back)
	target, err := unix.Open(filepath.Join(netnsDir, ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns %s: %w", ns, err)
	}
	err = unix.Setns(target, unix.CLONE_NEWNET)
	_ = unix.Close(target)
	if err != nil {
		runtime.UnlockOSThread() // setns failed: still in our own namespace
		return fmt.Errorf("netns %s: setns: %w", ns, err)
	}
	ferr := f()
	if err := unix.Setns(back, unix.CLONE_NEWNET); err != nil {
		// Stay locked: this goroutine returns locked and the thread dies.
		return errors.Join(ferr, fmt.Errorf("netns %s: switching back: %w", ns, err))
	}
	runtime.UnlockOSThread()
	return ferr
}
