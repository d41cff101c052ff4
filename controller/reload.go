package controller

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/quorumha/quorumha/config"
	"github.com/quorumha/quorumha/detector"
	"github.com/quorumha/quorumha/recovery"
)

// Option configures an optional part of a Controller.
type Option func(*Controller)

// WithReload makes Run reload the config on SIGHUP. load reads and
// validates the config file again (as at start); level is the level of
// the logger passed to New, which a reload may change.
func WithReload(load func() (*config.Config, error), level *slog.LevelVar) Option {
	return func(c *Controller) {
		c.reloadLoad = load
		c.logLevel = level
	}
}

// watchSIGHUP reloads the config on every SIGHUP until ctx ends. sig is
// already registered with signal.Notify (before the controller said it
// started, so an early SIGHUP never kills the process).
func (c *Controller) watchSIGHUP(ctx context.Context, sig <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-sig:
			_ = c.reload() // reload logs its outcome
		}
	}
}

// notifySIGHUP registers for SIGHUP; stop undoes it.
func notifySIGHUP() (sig chan os.Signal, stop func()) {
	sig = make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	return sig, func() { signal.Stop(sig) }
}

// reload reads the config file again and applies what can change while
// running: the log level, the detector's timings and the clusters' hooks.
// Every other changed key is logged as needing a restart. A file that does
// not load or validate is refused as a whole and changes nothing. Only
// watchSIGHUP calls it, so reloads never overlap.
func (c *Controller) reload() error {
	logger := c.log.With("pkg", "reload", "file", c.cfg.Source)
	if c.reloadLoad == nil {
		logger.Warn("SIGHUP ignored: this controller was started without a config file to reload")
		return nil
	}
	next, err := c.reloadLoad()
	if err != nil {
		logger.Error("config reload refused, nothing changed: the file does not load or validate", "err", err)
		return err
	}
	running := c.applied
	plan := planReload(running, next)
	if err := c.applyPlan(running, next, plan); err != nil {
		logger.Error("config reload refused, nothing changed", "err", err)
		return err
	}
	for _, ch := range plan.Apply {
		logger.Info("config reload: applied", "key", ch.Key, "old", ch.Old, "new", ch.New, "note", ch.Note)
	}
	for _, ch := range plan.Restart {
		logger.Warn("config reload: not applied, needs a restart", "key", ch.Key, "old", ch.Old, "new", ch.New, "why", ch.Note)
	}
	c.applied = applyLive(running, next)
	logger.Info("config reloaded", "applied", len(plan.Apply), "need_restart", len(plan.Restart))
	return nil
}

// applyPlan applies the live keys of next. The only step that can fail
// (the detector's timings) runs first, so a refusal changes nothing.
func (c *Controller) applyPlan(running, next *config.Config, plan reloadPlan) error {
	if len(plan.Apply) == 0 {
		return nil
	}
	d := next.Detector
	if c.detect != nil && d != running.Detector {
		if err := c.detect.det.SetTimings(detector.Timings{ProbeInterval: d.ProbeInterval, ProbeTimeout: d.ProbeTimeout,
			FailureThreshold: d.FailureThreshold, Freshness: d.FreshnessWindow}); err != nil {
			return fmt.Errorf("detector timings: %w", err)
		}
		c.detect.prober.SetTimeout(d.ProbeTimeout)
	}
	if c.logLevel != nil {
		c.logLevel.Set(next.Log.SlogLevel())
	}
	hooks := clusterHooks(applyLive(running, next))
	// Publish for the next leadership term first, then hand to the current
	// runner: onLeader stores its runner before reading c.hooks, so one of
	// the two always sees the new hooks.
	c.hooks.Store(&hooks)
	if r := c.runner.Load(); r != nil {
		r.SetHooks(hooks)
	}
	return nil
}

// clusterHooks is every cluster's hooks as recovery takes them.
func clusterHooks(cfg *config.Config) map[string]recovery.ClusterHooks {
	out := map[string]recovery.ClusterHooks{}
	for _, c := range cfg.Clusters {
		out[c.Name] = recoveryHooks(c.Hooks)
	}
	return out
}

// recoveryHooks converts a cluster's configured hooks.
func recoveryHooks(h config.Hooks) recovery.ClusterHooks {
	return recovery.ClusterHooks{IPFailover: h.IPFailover, OnlineChange: h.IPOnlineChange, Shutdown: h.Shutdown,
		Report: h.Report, SecondaryCheck: h.SecondaryCheck}
}
