package deploy

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/quorumha/quorumha/config"
)

const (
	agentExamplePath = "agent.example.yaml"
	agentUnitPath    = "systemd/quorumha-agent.service"
	agentEtcDir      = "/etc/quorumha-agent/"
	// agentBinlogDir is the binlog_dir the example and the unit agree on.
	agentBinlogDir = "/var/lib/mysql"
)

// agentExample writes agent.example.yaml to a temp dir with binlog_dir
// pointing at a temp dir holding mysql-bin.index, and every
// /etc/quorumha-agent/NAME at a 0600 file, and returns the config path and
// the secret files by NAME.
func agentExample(t *testing.T) (string, map[string]string) {
	t.Helper()
	data, err := os.ReadFile(agentExamplePath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	binlogs := filepath.Join(dir, "mysql")
	if err := os.Mkdir(binlogs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(binlogs, "mysql-bin.index"), []byte("./mysql-bin.000001\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{}
	text := regexp.MustCompile(regexp.QuoteMeta(agentEtcDir)+`[A-Za-z0-9_.-]+`).ReplaceAllStringFunc(string(data), func(p string) string {
		name := strings.TrimPrefix(p, agentEtcDir)
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte("agent-token-0123456789\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		secrets[name] = f
		return f
	})
	// The fence state file's directory must exist: point it into dir.
	text = strings.ReplaceAll(text, "state_file: /var/lib/quorumha-agent/", "state_file: "+dir+"/")
	text = strings.ReplaceAll(text, agentBinlogDir+"/", binlogs+"/")
	text = strings.ReplaceAll(text, "binlog_dir: "+agentBinlogDir+"\n", "binlog_dir: "+binlogs+"\n")
	path := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, secrets
}

// TestAgentExample_Loads loads agent.example.yaml as `quorumha agent
// --check` does, with its paths replaced by temp files.
func TestAgentExample_Loads(t *testing.T) {
	path, _ := agentExample(t)
	a, err := config.LoadAgent(path)
	if err != nil {
		t.Fatalf("%s: %v", agentExamplePath, err)
	}
	if a.Listen == "" || a.Token.Reveal() == "" || a.PIDFile == "" || filepath.Base(a.BinlogIndex) != "mysql-bin.index" || !a.Fence.Enabled() {
		t.Errorf("example loaded as %+v: want listen, token, pid_file, the index and fencing", a)
	}
}

// TestAgentExample_LooseTokenRefused checks the token file is held to the
// 0600 rule, as the comments say.
func TestAgentExample_LooseTokenRefused(t *testing.T) {
	path, secrets := agentExample(t)
	if err := os.Chmod(secrets["agent.token"], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := config.LoadAgent(path)
	if err == nil || !strings.Contains(err.Error(), "agent.token_file") || !strings.Contains(err.Error(), "0644") {
		t.Fatalf("err = %v, want a refusal naming agent.token_file and 0644", err)
	}
}

// TestAgentExample_ListsEveryKey checks the example mentions every key of
// the agent schema (set or commented out).
func TestAgentExample_ListsEveryKey(t *testing.T) {
	requireEveryKey(t, agentExamplePath, reflect.TypeFor[config.Agent](), "agent")
}

// TestAgentUnit checks the directives quorumha-agent.service must have: its
// own user with the mysql group for read access, the binlog dir read-only,
// nothing writable, and the config path the example is written for.
func TestAgentUnit(t *testing.T) {
	unit := parseUnit(t, agentUnitPath)
	checkDirectives(t, agentUnitPath, unit, map[string]string{
		"Type":                    "simple",
		"User":                    "quorumha-agent",
		"Group":                   "quorumha-agent",
		"SupplementaryGroups":     "mysql",
		"ExecStartPre":            "/usr/local/bin/quorumha agent --check --config /etc/quorumha-agent/agent.yaml",
		"ExecStart":               "/usr/local/bin/quorumha agent --config /etc/quorumha-agent/agent.yaml",
		"Restart":                 "on-failure",
		"KillSignal":              "SIGTERM",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ReadOnlyPaths":           agentBinlogDir,
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"PrivateDevices":          "yes",
		"ProtectKernelTunables":   "yes",
		"ProtectKernelModules":    "yes",
		"ProtectKernelLogs":       "yes",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"LockPersonality":         "yes",
		"MemoryDenyWriteExecute":  "yes",
		"CapabilityBoundingSet":   "",
		"UMask":                   "0077",
		"WantedBy":                "multi-user.target",
	})
	// The agent writes nowhere: no state, no writable path.
	for _, k := range []string{"ReadWritePaths", "StateDirectory", "LogsDirectory", "CacheDirectory", "RuntimeDirectory"} {
		if v, ok := unit[k]; ok {
			t.Errorf("%s: %s=%s: the agent must have no writable path", agentUnitPath, k, v)
		}
	}
	data, err := os.ReadFile(agentExamplePath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "binlog_dir: "+unit["ReadOnlyPaths"]+"\n") {
		t.Errorf("%s binlog_dir is not the unit's ReadOnlyPaths %s", agentExamplePath, unit["ReadOnlyPaths"])
	}
}
