//go:build !unix

package recovery

import "os/exec"

// setProcessGroup is a no-op where process groups do not exist; exec kills
// the hook process itself on cancellation.
func setProcessGroup(*exec.Cmd) {}
