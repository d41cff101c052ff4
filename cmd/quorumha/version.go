package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/quorumha/quorumha/controller"
)

// version is set at link time by the Makefile (-X main.version=...).
var version = "dev"

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print version and build information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "quorumha %s\n", version)
			if controller.TestHooks {
				// Only test binaries: tests/harness checks for this line.
				fmt.Fprintln(out, "test_hooks: on")
			}
			if bi, ok := debug.ReadBuildInfo(); ok {
				fmt.Fprintf(out, "go: %s\n", bi.GoVersion)
				for _, s := range bi.Settings {
					switch s.Key {
					case "vcs.revision", "vcs.time", "vcs.modified", "GOOS", "GOARCH":
						fmt.Fprintf(out, "%s: %s\n", s.Key, s.Value)
					}
				}
			}
			return nil
		},
	}
}
