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
		Short: "Run one controller in the foreground (SIGINT/SIGTERM stop it gracefully, SIGHUP reloads the config)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, path)
			if err != nil {
				return err
			}
			if err := cfg.ValidateForRun(); err != nil {
				return exitError{code: 2, err: err}
			}
			logger, level := newLevelLogger(cfg.Log)
			// SIGHUP reads the same file again, validated as at start.
			reload := func() (*config.Config, error) {
				next, err := loadConfig(cmd, path)
				if err != nil {
					return nil, err
				}
				if err := next.ValidateForRun(); err != nil {
					return nil, err
				}
				return next, nil
			}
			return controller.New(cfg, logger, controller.WithReload(reload, level)).Run(cmd.Context())
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

// newLevelLogger builds the process logger from the log section, with its
// level in a LevelVar so a config reload can change it.
func newLevelLogger(c config.Log) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	level.Set(c.SlogLevel()) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), level
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts)), level
}
