package main

// exitError carries a process exit code through cobra to main, which prints
// the message (when not empty) and exits with the code. Commands use it for
// outcomes that are not usage errors, e.g. check-config's 2 on an invalid
// config or check-repl's 1 on problems found.
type exitError struct {
	code int
	err  error
}

// Error returns the wrapped message; "" tells main to print nothing more,
// for commands that already printed their problems.
func (e exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

// Unwrap exposes the cause to errors.Is/As.
func (e exitError) Unwrap() error { return e.err }

// ExitCode is the process exit status main uses.
func (e exitError) ExitCode() int { return e.code }
