package harness

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// ownerDir records which test process owns each subnet's bridge, veths and
// namespaces, so a later NewNet can remove what a killed test process (no
// t.Cleanup ran) left behind without touching a live test's network.
// Subnets without an owner file (made by an older harness, or by hand) are
// never removed: freeSubnet just skips them.
const ownerDir = "/tmp/quorumha-netns"

// ownerFile is the owner record of subnet s.
func ownerFile(s int) string { return filepath.Join(ownerDir, fmt.Sprintf("%d.owner", s)) }

// writeOwner records this process as the owner of subnet s: its pid and
// its start time (guards against pid reuse).
func writeOwner(s int) error {
	if err := os.MkdirAll(ownerDir, 0o700); err != nil {
		return fmt.Errorf("owner record: %w", err)
	}
	pid := os.Getpid()
	start, err := procStart(pid)
	if err != nil {
		return fmt.Errorf("owner record: %w", err)
	}
	if err := os.WriteFile(ownerFile(s), fmt.Appendf(nil, "%d %s\n", pid, start), 0o600); err != nil {
		return fmt.Errorf("owner record: %w", err)
	}
	return nil
}

// procStart returns field 22 of /proc/pid/stat (start time in clock ticks).
func procStart(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	// The command name is in parentheses and may hold spaces.
	j := bytes.LastIndexByte(b, ')')
	if j < 0 {
		return "", fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(b[j+1:]))
	// fields[0] is field 3 (state); start time is field 22.
	if len(fields) < 20 {
		return "", fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	return fields[19], nil
}

// ownerAlive reports whether the process recorded in an owner file still
// runs (same pid, same start time).
func ownerAlive(record string) bool {
	f := strings.Fields(record)
	if len(f) != 2 {
		return false
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil {
		return false
	}
	start, err := procStart(pid)
	return err == nil && start == f[1]
}

// removeLeftovers destroys the subnets whose owner process is gone. The
// caller holds the netns lock.
func removeLeftovers(t testing.TB) {
	entries, err := os.ReadDir(ownerDir)
	if err != nil {
		return // no records yet
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".owner")
		if !ok {
			continue
		}
		s, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(ownerDir, e.Name()))
		if err != nil || ownerAlive(string(b)) {
			continue
		}
		if err := destroySubnet(s); err != nil {
			t.Logf("network zones: leftover subnet %d of a dead test process: %v", s, err)
			continue
		}
		t.Logf("network zones: removed leftover subnet %d of dead test process %s", s, strings.TrimSpace(string(b)))
	}
}

// destroySubnet deletes subnet s's namespaces, veths and bridge and its
// owner record, then checks that none is left. Deleting the root side of a
// veth deletes its peer inside the namespace too, even while a process (a
// mariadbd that has not exited yet) keeps the namespace itself alive.
func destroySubnet(s int) error {
	prefix := fmt.Sprintf("qha%d-", s)
	for _, ns := range netnsNames() {
		if strings.HasPrefix(ns, prefix) {
			_ = exec.Command("ip", "netns", "del", ns).Run()
		}
	}
	for _, l := range linkNames() {
		if strings.HasPrefix(l, fmt.Sprintf("qv%d-", s)) {
			_ = exec.Command("ip", "link", "del", l).Run()
		}
	}
	bridge := fmt.Sprintf("qha%d", s)
	_ = exec.Command("ip", "link", "del", bridge).Run()
	var left []string
	for _, ns := range netnsNames() {
		if strings.HasPrefix(ns, prefix) {
			left = append(left, "netns "+ns)
		}
	}
	for _, l := range linkNames() {
		if l == bridge || strings.HasPrefix(l, fmt.Sprintf("qv%d-", s)) {
			left = append(left, "link "+l)
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("still present: %s", strings.Join(left, ", "))
	}
	if err := os.Remove(ownerFile(s)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// netnsNames lists the named network namespaces (`ip netns list`).
func netnsNames() []string {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return nil
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

// linkNames lists the root namespace's interfaces (without "@peer").
func linkNames() []string {
	out, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		return nil
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		names = append(names, name)
	}
	return names
}
