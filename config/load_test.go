package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const minimalYAML = `
clusters:
  - name: app1
    user: monitor
    instances:
      - address: 10.0.1.20:3306
      - address: 10.0.2.20:3306
`

func TestLoad_Defaults(t *testing.T) {
	path := writeFile(t, t.TempDir(), "q.yaml", minimalYAML, 0o644)
	cfg, warns, err := Load(path, LoadOptions{Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 0 {
		t.Errorf("warnings = %v, want none", warns)
	}
	d, r := cfg.Detector, cfg.Recovery
	checks := []struct {
		name      string
		got, want any
	}{
		{"probe_interval", d.ProbeInterval, 500 * time.Millisecond},
		{"probe_timeout", d.ProbeTimeout, 500 * time.Millisecond},
		{"failure_threshold", d.FailureThreshold, 3},
		{"quorum", d.Quorum, "majority"},
		{"replica_check", d.ReplicaCheck, true},
		{"freshness_window", d.FreshnessWindow, 5 * time.Second},
		{"replica_heartbeat", d.ReplicaHeartbeat, time.Second},
		{"anti_flap", r.AntiFlap, time.Hour},
		{"max_replica_lag", r.MaxReplicaLag, 30 * time.Second},
		{"apply_timeout", r.ApplyTimeout, 60 * time.Second},
		{"check_repl_delay", r.CheckReplDelay, true},
		{"log.level", cfg.Log.Level, "info"},
		{"log.format", cfg.Log.Format, "text"},
		{"raft_profile", cfg.Node.RaftProfile, "lan"},
		{"replication_mode", cfg.Clusters[0].ReplicationMode, "gtid"},
		{"source", cfg.Source, path},
		{"cluster source", cfg.Clusters[0].Source, path},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestLoad_Formats(t *testing.T) {
	tests := []struct {
		name, file, content string
	}{
		{"yaml", "q.yml", "detector:\n  probe_interval: 2s\n" + minimalYAML},
		{"toml", "q.toml", `
[detector]
probe_interval = "2s"
[[clusters]]
name = "app1"
[[clusters.instances]]
address = "10.0.1.20:3306"
[[clusters.instances]]
address = "10.0.2.20:3306"
`},
		{"json", "q.json", `{"detector":{"probe_interval":"2s"},"clusters":[{"name":"app1","instances":[{"address":"10.0.1.20:3306"},{"address":"10.0.2.20:3306"}]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), tt.file, tt.content, 0o644)
			cfg, _, err := Load(path, LoadOptions{Environ: []string{}})
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Detector.ProbeInterval != 2*time.Second {
				t.Errorf("probe_interval = %v, want 2s", cfg.Detector.ProbeInterval)
			}
			if len(cfg.Clusters) != 1 || len(cfg.Clusters[0].Instances) != 2 || cfg.Clusters[0].Instances[1].Address != "10.0.2.20:3306" {
				t.Errorf("clusters = %+v", cfg.Clusters)
			}
		})
	}
}

func TestLoad_EnvOverride(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "q.yaml", "node:\n  id: fromfile\n"+minimalYAML, 0o644)
	env := []string{
		"QUORUMHA_NODE_ID=c9",
		"QUORUMHA_DETECTOR_PROBE_INTERVAL=250ms",
		"QUORUMHA_DETECTOR_FAILURE_THRESHOLD=5",
		"QUORUMHA_DETECTOR_REPLICA_CHECK=false",
		"QUORUMHA_NODE_BOOTSTRAP=c1=h1:7000, c2=h2:7000",
		"QUORUMHA_CLUSTERS_APP1_PASSWORD=s3cret",
		"QUORUMHA_CLUSTERS_APP1_REPL_USER=replicator",
		"QUORUMHA_API_TOKEN=tok",
		"QUORUMHA_DETECTOR_PROBE_INTERVALL=1s", // typo: warned
		"QUORUMHA_CLUSTERS_NOPE_PASSWORD=x",    // no such cluster: warned
		"QUORUMHA_ADDR=elsewhere",              // not a config section: silent
		"PATH=/bin",
	}
	cfg, warns, err := Load(path, LoadOptions{Environ: env})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Node.ID != "c9" || cfg.Detector.ProbeInterval != 250*time.Millisecond ||
		cfg.Detector.FailureThreshold != 5 || cfg.Detector.ReplicaCheck {
		t.Errorf("env not applied: node=%+v detector=%+v", cfg.Node, cfg.Detector)
	}
	if got := strings.Join(cfg.Node.Bootstrap, "|"); got != "c1=h1:7000|c2=h2:7000" {
		t.Errorf("bootstrap = %q", got)
	}
	cl := cfg.Clusters[0]
	if cl.Password.Reveal() != "s3cret" || cl.ReplUser != "replicator" {
		t.Errorf("cluster env not applied: user=%q repl_user=%q", cl.User, cl.ReplUser)
	}
	if cfg.API.Token.Reveal() != "tok" {
		t.Errorf("api token = %q", cfg.API.Token.Reveal())
	}
	if len(warns) != 2 {
		t.Fatalf("warnings = %v, want 2", warns)
	}
	joined := warns[0].String() + "\n" + warns[1].String()
	for _, want := range []string{"QUORUMHA_DETECTOR_PROBE_INTERVALL", "QUORUMHA_CLUSTERS_NOPE_PASSWORD"} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings %q do not mention %s", joined, want)
		}
	}
}

func TestLoad_EnvInvalidNamesVariable(t *testing.T) {
	path := writeFile(t, t.TempDir(), "q.yaml", minimalYAML, 0o644)
	_, _, err := Load(path, LoadOptions{Environ: []string{"QUORUMHA_RECOVERY_ANTI_FLAP=soon"}})
	if err == nil || !strings.Contains(err.Error(), `$QUORUMHA_RECOVERY_ANTI_FLAP: recovery.anti_flap: "soon": invalid duration`) {
		t.Fatalf("err = %v", err)
	}
}

func TestLoad_UnknownKey(t *testing.T) {
	tests := []struct {
		name, content, key string
	}{
		{"top level", "nodes:\n  id: x\n" + minimalYAML, "nodes"},
		{"section", "detector:\n  probe_intervall: 1s\n" + minimalYAML, "detector.probe_intervall"},
		{"cluster", minimalYAML + "    pasword: x\n", "clusters[0].pasword"},
		{"instance", minimalYAML + "        zoen: a\n", "clusters[0].instances[1].zoen"},
		{"source is not a key", "source: x\n" + minimalYAML, "source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "q.yaml", tt.content, 0o644)
			_, _, err := Load(path, LoadOptions{Environ: []string{}})
			if !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("err = %v, want ErrUnknownKey", err)
			}
			if want := path + ": " + tt.key + ": unknown key"; !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v, want containing %q", err, want)
			}
		})
	}
}

func TestLoad_PasswordFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "secrets/monitor.pass", "  pa55\n\n", 0o600)
	writeFile(t, dir, "secrets/empty.pass", "\n", 0o600)
	writeFile(t, dir, "api.token", "abc123\n", 0o600)
	cluster := func(extra string) string {
		return "clusters:\n  - name: app1\n" + extra + "    instances:\n      - address: h1:3306\n      - address: h2:3306\n"
	}
	tests := []struct {
		name    string
		content string
		wantErr []string // substrings; nil means success
	}{
		{"relative file read and trimmed", "api:\n  token_file: api.token\n" + cluster("    password_file: secrets/monitor.pass\n    repl_password_file: "+filepath.Join(dir, "secrets/monitor.pass")+"\n"), nil},
		{"both set", cluster("    password: x\n    password_file: secrets/monitor.pass\n"), []string{"clusters[0].password_file", "both set"}},
		{"missing", cluster("    repl_password_file: nope.pass\n"), []string{"clusters[0].repl_password_file", "nope.pass", "no such file"}},
		{"empty", cluster("    password_file: secrets/empty.pass\n"), []string{"clusters[0].password_file", "file is empty"}},
		{"token missing", "api:\n  token_file: missing.token\n" + cluster(""), []string{"api.token_file", "missing.token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, dir, "q.yaml", tt.content, 0o644)
			cfg, _, err := Load(path, LoadOptions{Environ: []string{}})
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				cl := cfg.Clusters[0]
				if cl.Password.Reveal() != "pa55" || cl.ReplPassword.Reveal() != "pa55" || cfg.API.Token.Reveal() != "abc123" {
					t.Errorf("secrets = %q %q %q", cl.Password.Reveal(), cl.ReplPassword.Reveal(), cfg.API.Token.Reveal())
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want containing %q", err, w)
				}
			}
		})
	}
}

func TestLoad_EnvPasswordReplacesFile(t *testing.T) {
	path := writeFile(t, t.TempDir(), "q.yaml", strings.Replace(minimalYAML, "user: monitor", "user: monitor\n    password_file: /nonexistent", 1), 0o644)
	cfg, _, err := Load(path, LoadOptions{Environ: []string{"QUORUMHA_CLUSTERS_APP1_PASSWORD=fromenv"}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Clusters[0].Password.Reveal() != "fromenv" || cfg.Clusters[0].PasswordFile != "" {
		t.Errorf("password=%q file=%q", cfg.Clusters[0].Password.Reveal(), cfg.Clusters[0].PasswordFile)
	}
}

func TestLoad_MHAConfigsIncluded(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "mha/app2.cnf", "[server default]\nuser=mha\npassword=pw\nmanager_log=/var/log/mha.log\n[server1]\nhostname=db1\n[server2]\nhostname=db2\nport=3307\n", 0o644)
	path := writeFile(t, dir, "q.yaml", "mha_configs: [mha/app2.cnf]\n"+minimalYAML, 0o644)
	cfg, warns, err := Load(path, LoadOptions{Environ: []string{"QUORUMHA_CLUSTERS_APP2_REPL_PASSWORD=rp"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Clusters) != 2 {
		t.Fatalf("clusters = %d, want 2", len(cfg.Clusters))
	}
	cl, ok := cfg.Cluster("app2")
	if !ok {
		t.Fatal("cluster app2 not imported")
	}
	if cl.User != "mha" || cl.Password.Reveal() != "pw" || cl.ReplPassword.Reveal() != "rp" ||
		cl.Instances[1].Address != "db2:3307" || cl.Source != filepath.Join(dir, "mha/app2.cnf") {
		t.Errorf("app2 = %+v", cl)
	}
	if len(warns) != 1 || !strings.Contains(warns[0].String(), "manager_log") {
		t.Errorf("warnings = %v, want one about manager_log", warns)
	}
}

func TestLoad_MHAConfigsErrorsNameFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "bad.cnf", "[server1]\nhostname=db1\nbogus_key=1\n", 0o644)
	path := writeFile(t, dir, "q.yaml", "mha_configs: [bad.cnf, missing.cnf]\n"+minimalYAML, 0o644)
	_, _, err := Load(path, LoadOptions{Environ: []string{}})
	for _, want := range []string{"bad.cnf:3: [server1] bogus_key", "mha_configs[1]", "missing.cnf"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want containing %q", err, want)
		}
	}
}

func TestLoad_WholeCnf(t *testing.T) {
	dir := t.TempDir()
	defaults := writeFile(t, dir, "masterha_default.cnf", "[server default]\nuser=globaluser\nssh_user=admin\n", 0o644)
	path := writeFile(t, dir, "app1.cnf", "[server default]\npassword=x\n[server1]\nhostname=10.0.0.1\n[server2]\nhostname=10.0.0.2\ncandidate_master=1\n", 0o644)
	cfg, _, err := Load(path, LoadOptions{Environ: []string{"QUORUMHA_LOG_FORMAT=json"}, MHADefaultFile: defaults})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Clusters) != 1 {
		t.Fatalf("clusters = %+v", cfg.Clusters)
	}
	cl := cfg.Clusters[0]
	if cl.Name != "app1" || cl.User != "globaluser" || cl.SSHUser != "admin" || !cl.Instances[1].CandidateMaster {
		t.Errorf("cluster = %+v", cl)
	}
	if cfg.Log.Format != "json" || cfg.Detector.ProbeInterval != 500*time.Millisecond {
		t.Errorf("defaults/env not applied: %+v %+v", cfg.Log, cfg.Detector)
	}
}

func TestLoad_FileErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, path string
		sentinel   error
	}{
		{"unsupported extension", writeFile(t, dir, "q.xml", "<x/>", 0o644), ErrFormat},
		{"missing file", filepath.Join(dir, "nope.yaml"), ErrFile},
		{"bad yaml", writeFile(t, dir, "bad.yaml", "node: [unclosed\n", 0o644), ErrSyntax},
		{"scalar section", writeFile(t, dir, "scalar.yaml", "node: 5\n", 0o644), ErrInvalidValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Load(tt.path, LoadOptions{Environ: []string{}})
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("err = %v, want %v", err, tt.sentinel)
			}
			if !strings.Contains(err.Error(), filepath.Base(tt.path)) {
				t.Errorf("err = %v does not name the file", err)
			}
		})
	}
}

func TestDefault_MatchesLoad(t *testing.T) {
	path := writeFile(t, t.TempDir(), "empty.yaml", "", 0o644)
	loaded, _, err := Load(path, LoadOptions{Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	loaded.Source = ""
	def := Default()
	if got, want := fmt.Sprintf("%+v", *def), fmt.Sprintf("%+v", *loaded); got != want {
		t.Errorf("Default() = %s\nLoad(empty) = %s", got, want)
	}
	if def.Detector.ProbeInterval != 500*time.Millisecond || def.Recovery.AntiFlap != time.Hour {
		t.Errorf("Default() lacks defaults: %+v", def)
	}
}

func TestLoad_MHAHookRelativeToCnf(t *testing.T) {
	dir := t.TempDir()
	hook := writeFile(t, dir, "mha/hooks/failover.sh", "#!/bin/sh\n", 0o755)
	writeFile(t, dir, "mha/app3.cnf", "[server default]\nmaster_ip_failover_script=hooks/failover.sh --flag\n[server1]\nhostname=a\n[server2]\nhostname=b\n", 0o644)
	path := writeFile(t, dir, "q.yaml", "mha_configs: [mha/app3.cnf]\n", 0o644)
	cfg, _, err := Load(path, LoadOptions{Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Clusters[0].Hooks.IPFailover; got != hook+" --flag" {
		t.Errorf("hook = %q, want %q", got, hook+" --flag")
	}
}
