package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// Placeholder: replaced by the sandbox work.
func newSandboxCmd() *cobra.Command {
	return &cobra.Command{Use: "sandbox", RunE: func(*cobra.Command, []string) error { return errors.New("not yet") }}
}
