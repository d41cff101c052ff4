package controller

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/quorumha/quorumha/config"
)

func TestReload_BadFileChangesNothing(t *testing.T) {
	cfg := baseReloadConfig()
	level := new(slog.LevelVar)
	bad := errors.New("/etc/quorumha/c1.yaml: detector.probe_interval: \"0s\": must be positive")
	c := New(cfg, slog.New(slog.DiscardHandler), WithReload(func() (*config.Config, error) { return nil, bad }, level))
	if err := c.reload(); !errors.Is(err, bad) {
		t.Fatalf("reload = %v, want the load error", err)
	}
	if c.applied != cfg || level.Level() != slog.LevelInfo || c.hooks.Load() != nil {
		t.Fatalf("a refused reload changed something: applied %p (was %p), level %s, hooks %v", c.applied, cfg, level.Level(), c.hooks.Load())
	}
}

func TestReload_AppliesLevelAndHooks(t *testing.T) {
	cfg := baseReloadConfig()
	level := new(slog.LevelVar)
	next := baseReloadConfig()
	next.Log.Level = "debug"
	next.Clusters[0].Hooks.Report = "/bin/report2"
	next.Node.HTTPAddr = "127.0.0.1:1" // needs a restart: must not be applied
	c := New(cfg, slog.New(slog.DiscardHandler), WithReload(func() (*config.Config, error) { return next, nil }, level))
	if err := c.reload(); err != nil {
		t.Fatal(err)
	}
	if level.Level() != slog.LevelDebug {
		t.Errorf("level %s", level.Level())
	}
	h := c.hooks.Load()
	if h == nil || (*h)["app1"].Report != "/bin/report2" {
		t.Errorf("hooks %v", h)
	}
	if c.applied.Node.HTTPAddr != cfg.Node.HTTPAddr || c.applied.Log.Level != "debug" {
		t.Errorf("applied %+v / %s", c.applied.Node, c.applied.Log.Level)
	}
}
