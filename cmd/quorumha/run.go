package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/quorumha/quorumha/config"
	"github.com/quorumha/quorumha/controller"
)

func newRunCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run one controller in the foreground (SIGINT/SIGTERM stop it gracefully)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, path)
			if err != nil {
				return err
			}
			if err := cfg.ValidateForRun(); err != nil {
				return exitError{code: 2, err: err}
			}
			return controller.New(cfg, newLogger(cfg.Log)).Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "config file (YAML, TOML, JSON or MHA .cnf)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// loadConfig loads a config file, printing warnings (MHA keys that have no
// meaning here, for instance) to stderr.
func loadConfig(cmd *cobra.Command, path string) (*config.Config, error) {
	opts := config.LoadOptions{}
	if _, err := os.Stat("/etc/masterha_default.cnf"); err == nil {
		opts.MHADefaultFile = "/etc/masterha_default.cnf"
	}
	cfg, warnings, err := config.Load(path, opts)
	for _, w := range warnings {
		fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w.String())
	}
	if err != nil {
		return nil, exitError{code: 2, err: err}
	}
	return cfg, nil
}

// newLogger builds the process logger from the log section.
func newLogger(c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
