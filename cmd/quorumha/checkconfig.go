package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// Placeholder: replaced by the config work.
func newCheckConfigCmd() *cobra.Command {
	return &cobra.Command{Use: "check-config", RunE: func(*cobra.Command, []string) error { return errors.New("not yet") }}
}
