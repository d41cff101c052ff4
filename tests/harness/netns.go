package harness

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Net is a set of network namespaces ("zones") joined by a bridge in the
// root namespace, for tests that cut real network paths with iptables. Each
// zone gets one address; the root namespace (where the MariaDB sandbox runs)
// gets the bridge address. Addresses come from 198.18.0.0/15, the range set
// aside for network testing, and never leave this machine.
type Net struct {
	t      testing.TB
	bridge string
	subnet int    // third octet
	HostIP string // the root namespace's address on the bridge
	Zones  []*Zone
}

// Zone is one network namespace with one address.
type Zone struct {
	Name string // netns name
	IP   string
	veth string

	registerOnce sync.Once // the go-sql-driver network of MySQLNet
}

// Exec returns the command prefix that runs a program inside the zone.
func (z *Zone) Exec() []string { return []string{"ip", "netns", "exec", z.Name} }

// NetAvailable reports why namespaces cannot be used here, or nil.
func NetAvailable() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("network namespaces need root")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found (apt-get install iproute2 iptables): %w", tool, err)
		}
	}
	return nil
}

// NewNet creates n zones. Outside CI it skips when namespaces are not
// available; in CI (CI=true) it fails, since these tests must run there.
func NewNet(t testing.TB, n int) *Net {
	t.Helper()
	if err := NetAvailable(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("network partition tests: %v", err)
		}
		t.Skipf("network partition tests: %v", err)
	}
	nw := &Net{t: t}
	unlock := lockFile(t, "/tmp/quorumha-netns.lock")
	defer unlock() // a Fatalf below must not leave the lock to destroy
	removeLeftovers(t)
	nw.subnet = nw.freeSubnet()
	nw.bridge = fmt.Sprintf("qha%d", nw.subnet)
	nw.HostIP = fmt.Sprintf("198.18.%d.1", nw.subnet)
	t.Cleanup(nw.destroy)
	if err := writeOwner(nw.subnet); err != nil {
		unlock()
		t.Fatalf("network zones: %v", err)
	}
	nw.run("ip", "link", "add", nw.bridge, "type", "bridge")
	nw.run("ip", "addr", "add", nw.HostIP+"/24", "dev", nw.bridge)
	nw.run("ip", "link", "set", nw.bridge, "up")
	unlock()
	for i := 0; i < n; i++ {
		z := &Zone{
			Name: fmt.Sprintf("qha%d-z%d", nw.subnet, i),
			IP:   fmt.Sprintf("198.18.%d.%d", nw.subnet, 11+i),
			veth: fmt.Sprintf("qv%d-%d", nw.subnet, i),
		}
		nw.Zones = append(nw.Zones, z)
		nw.run("ip", "netns", "add", z.Name)
		nw.run("ip", "link", "add", z.veth, "type", "veth", "peer", "name", z.veth+"p")
		nw.run("ip", "link", "set", z.veth+"p", "netns", z.Name)
		nw.run("ip", "link", "set", z.veth, "master", nw.bridge)
		nw.run("ip", "link", "set", z.veth, "up")
		nw.run("ip", "-n", z.Name, "addr", "add", z.IP+"/24", "dev", z.veth+"p")
		nw.run("ip", "-n", z.Name, "link", "set", z.veth+"p", "up")
		nw.run("ip", "-n", z.Name, "link", "set", "lo", "up")
	}
	return nw
}

// freeSubnet picks a third octet no interface and no namespace uses yet
// (under the lock).
func (nw *Net) freeSubnet() int {
	out, err := exec.Command("ip", "-4", "-o", "addr", "show").CombinedOutput()
	if err != nil {
		nw.t.Fatalf("ip addr show: %v: %s", err, out)
	}
	names := netnsNames()
	for s := 1 + os.Getpid()%200; ; s = s%250 + 1 {
		if strings.Contains(string(out), fmt.Sprintf("198.18.%d.", s)) {
			continue
		}
		if slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, fmt.Sprintf("qha%d-", s)) }) {
			continue
		}
		return s
	}
}

func (nw *Net) run(args ...string) {
	nw.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		nw.t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// CutTCP drops TCP from zone z to addr (ip:port) in both directions, as a
// firewall or a dead link would: packets vanish, nothing is refused.
func (nw *Net) CutTCP(z *Zone, ip string, port int) {
	nw.t.Helper()
	p := fmt.Sprint(port)
	nw.run("ip", "netns", "exec", z.Name, "iptables", "-A", "OUTPUT", "-p", "tcp", "-d", ip, "--dport", p, "-j", "DROP")
	nw.run("ip", "netns", "exec", z.Name, "iptables", "-A", "INPUT", "-p", "tcp", "-s", ip, "--sport", p, "-j", "DROP")
}

// Isolate drops all traffic between zone z and the given peer addresses.
func (nw *Net) Isolate(z *Zone, peers ...string) {
	nw.t.Helper()
	for _, ip := range peers {
		nw.run("ip", "netns", "exec", z.Name, "iptables", "-A", "OUTPUT", "-d", ip, "-j", "DROP")
		nw.run("ip", "netns", "exec", z.Name, "iptables", "-A", "INPUT", "-s", ip, "-j", "DROP")
	}
}

// Heal removes every rule of zone z.
func (nw *Net) Heal(z *Zone) {
	nw.t.Helper()
	nw.run("ip", "netns", "exec", z.Name, "iptables", "-F")
}

func (nw *Net) destroy() {
	if nw.subnet == 0 {
		return
	}
	unlock := lockFile(nw.t, "/tmp/quorumha-netns.lock")
	defer unlock()
	if err := destroySubnet(nw.subnet); err != nil {
		nw.t.Errorf("network zones: cleanup of subnet %d: %v", nw.subnet, err)
	}
}

// lockFile takes an exclusive flock, returning its release (which may be
// called more than once).
func lockFile(t testing.TB, path string) func() {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("lock %s: %v", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("lock %s: %v", path, err)
	}
	var once sync.Once
	return func() { once.Do(func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }) }
}
