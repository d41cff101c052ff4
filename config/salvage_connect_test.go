package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestLoad_SalvageConnectTimeout(t *testing.T) {
	dir := t.TempDir()
	p := baseParts("")
	cfg, _, err := Load(writeFile(t, dir, "q.yaml", p.render(), 0o644), LoadOptions{Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Recovery.SalvageConnectTimeout != 500*time.Millisecond {
		t.Errorf("default salvage_connect_timeout = %s, want 500ms", cfg.Recovery.SalvageConnectTimeout)
	}
	p["recovery"] = "recovery:\n  salvage_timeout: 3s\n  salvage_connect_timeout: 5s\n"
	cfg, _, err = Load(writeFile(t, dir, "q2.yaml", p.render(), 0o644), LoadOptions{Environ: []string{}})
	if err == nil {
		err = cfg.Validate()
	}
	if !errors.Is(err, ErrInvalidValue) || !strings.Contains(err.Error(), "recovery.salvage_connect_timeout") || !strings.Contains(err.Error(), "5s") {
		t.Fatalf("connect timeout above salvage_timeout: err = %v, want it named with its value", err)
	}
}
