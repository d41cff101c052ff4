package config

import (
	"testing"
	"time"
)

func TestLoad_AgentClient(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "agent.token", "s3cret\n", 0o600)
	p := baseParts("")
	p["clusters"] = "clusters:\n  - name: app1\n    agent:\n      token_file: agent.token\n    instances:\n" +
		"      - address: 10.0.0.1:3306\n        agent: https://10.0.0.1:7080\n      - address: 10.0.0.2:3306\n"
	p["recovery"] = "recovery:\n  salvage_timeout: 3s\n"
	cfg, _, err := Load(writeFile(t, dir, "q.yaml", p.render(), 0o644), LoadOptions{Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	cl := cfg.Clusters[0]
	if cl.Agent.Token != "s3cret" || cl.Instances[0].Agent != "https://10.0.0.1:7080" || cl.Instances[1].Agent != "" {
		t.Errorf("agent config = %+v, instances %+v", cl.Agent, cl.Instances)
	}
	if cfg.Recovery.SalvageTimeout != 3*time.Second {
		t.Errorf("salvage_timeout = %s", cfg.Recovery.SalvageTimeout)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}
