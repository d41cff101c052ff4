package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// serverRunning reads the server's pid file and reports whether that
// process is alive. A missing pid file means stopped (the server removes it
// on a clean shutdown). kill(pid, 0) answers EPERM for a live process of
// another user, which is the normal case: the agent does not run as mysql.
//
// After a crash the pid file stays and its pid may be reused by an
// unrelated process, so when /proc shows the process's name it must be a
// MySQL or MariaDB server; when /proc hides it (hidepid), kill's answer is
// all there is.
func serverRunning(pidFile string) (bool, error) {
	_, running, err := serverProcess(pidFile)
	return running, err
}

// serverProcess is serverRunning that also returns the pid file's process
// id (0 when there is no pid file, or it is still empty).
func serverProcess(pidFile string) (int, bool, error) {
	data, err := os.ReadFile(pidFile)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("pid file: %w", err)
	}
	text := strings.TrimSpace(string(data))
	if text == "" {
		// Written but not yet filled: the server is starting.
		return 0, false, nil
	}
	pid, err := strconv.Atoi(text)
	if err != nil || pid <= 0 {
		return 0, false, fmt.Errorf("pid file %s: %q is not a process id", pidFile, text)
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return pid, false, nil
	}
	if zombie(pid) {
		// Killed but not yet reaped by its parent: kill(pid, 0) still
		// succeeds and /proc still names it, yet nothing runs.
		return pid, false, nil
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return pid, true, nil
	}
	name := strings.TrimSpace(string(comm))
	return pid, strings.Contains(name, "mysqld") || strings.Contains(name, "mariadbd"), nil
}

// zombie reports whether /proc shows pid as exited (Z, zombie; X, dead).
// When /proc hides it, the answer is no: kill's answer stands.
func zombie(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// "pid (comm) S ...": comm may hold spaces and parentheses, the state
	// follows the last ')'.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 || i+2 >= len(stat) {
		return false
	}
	state := stat[i+2]
	return state == 'Z' || state == 'X'
}
