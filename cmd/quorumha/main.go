// Command quorumha is the single binary of the project: the controller daemon
// (run), the operator CLI (status, leader, history, ...) and the tools
// (check-config, check-repl, sandbox). main only wires packages together and
// prints; every decision lives in the packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// exitCoder is implemented by errors that carry a specific process exit code
// (check-repl exits 1 on problems found, 2 on usage or config errors).
type exitCoder interface{ ExitCode() int }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		var ec exitCoder
		if errors.As(err, &ec) {
			if msg := err.Error(); msg != "" {
				fmt.Fprintln(os.Stderr, "quorumha:", msg)
			}
			os.Exit(ec.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "quorumha:", err)
		os.Exit(2)
	}
}
