//go:build unix

package recovery

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts the hook in its own process group and makes
// cancellation kill the whole group, so children a script started (ssh,
// sleep, arping) die with it instead of holding the failover.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
