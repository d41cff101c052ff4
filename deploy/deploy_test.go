package deploy

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/config"
	"github.com/quorumha/quorumha/tests/testpki"
)

const (
	examplePath = "config.example.yaml"
	unitPath    = "systemd/quorumha.service"
	etcDir      = "/etc/quorumha/"
)

// TestConfigExample_LoadsForRun loads config.example.yaml as
// "quorumha check-config --for-run" does, with its /etc/quorumha/ secret
// files replaced by 0600 files in a temp dir.
func TestConfigExample_LoadsForRun(t *testing.T) {
	cfg := loadExample(t)
	if cfg.Node.ID == "" || len(cfg.Node.Bootstrap) != 3 || len(cfg.Clusters) != 1 {
		t.Errorf("node %+v, %d clusters: want a full example", cfg.Node, len(cfg.Clusters))
	}
	if cfg.Node.DataDir != "/var/lib/quorumha" {
		t.Errorf("node.data_dir = %q, want /var/lib/quorumha (the unit's StateDirectory)", cfg.Node.DataDir)
	}
	if cfg.API.Token.Reveal() == "" || cfg.Clusters[0].Password.Reveal() == "" || cfg.Clusters[0].ReplPassword.Reveal() == "" {
		t.Error("token and passwords were not read from their files")
	}
}

// TestConfigExample_LooseSecretRefused checks the example's secret files
// are held to the 0600 rule, as the comments in it say.
func TestConfigExample_LooseSecretRefused(t *testing.T) {
	path, secrets := exampleWithSecrets(t)
	if err := os.Chmod(secrets["monitor.pass"], 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := config.Load(path, config.LoadOptions{Environ: []string{}})
	if err == nil || !strings.Contains(err.Error(), "clusters[0].password_file") || !strings.Contains(err.Error(), "0644") {
		t.Fatalf("err = %v, want a refusal naming clusters[0].password_file and 0644", err)
	}
}

// TestConfigExample_ListsEveryKey checks that the example mentions every
// key of the config schema (set or commented out), so it stays the full
// reference it claims to be.
func TestConfigExample_ListsEveryKey(t *testing.T) {
	requireEveryKey(t, examplePath, reflect.TypeFor[config.Config](), "")
}

// requireEveryKey checks that the YAML file at path mentions every leaf key
// of the schema typ (set or commented out).
func requireEveryKey(t *testing.T, path string, typ reflect.Type, prefix string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range schemaKeys(typ, prefix) {
		leaf := key[strings.LastIndex(key, ".")+1:]
		if !regexp.MustCompile(`(?m)^[\s#-]*` + regexp.QuoteMeta(leaf) + `:`).MatchString(string(data)) {
			t.Errorf("%s does not mention %s", path, key)
		}
	}
}

// schemaKeys returns the dotted mapstructure keys of t's leaves.
func schemaKeys(t reflect.Type, prefix string) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("mapstructure")
		if tag == "" || tag == "-" {
			continue
		}
		key := tag
		if prefix != "" {
			key = prefix + "." + tag
		}
		ft := f.Type
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Duration]() {
			out = append(out, schemaKeys(ft, key)...)
			continue
		}
		out = append(out, key)
	}
	return out
}

// TestUnit checks the directives quorumha.service must have, and that it
// runs the config path the example is written for.
func TestUnit(t *testing.T) {
	unit := parseUnit(t, unitPath)
	want := map[string]string{
		"Type":                    "simple",
		"User":                    "quorumha",
		"ExecStart":               "/usr/local/bin/quorumha run --config /etc/quorumha/config.yaml",
		"Restart":                 "on-failure",
		"KillSignal":              "SIGTERM",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ReadWritePaths":          "/var/lib/quorumha",
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
		"SystemCallFilter":        "@system-service",
		"StateDirectory":          "quorumha",
		"WantedBy":                "multi-user.target",
	}
	checkDirectives(t, unitPath, unit, want)
	// quorumha bounds its own shutdown (leadership transfer) at 15 s.
	d, err := time.ParseDuration(unit["TimeoutStopSec"])
	if err != nil || d < 30*time.Second {
		t.Errorf("TimeoutStopSec=%s: want at least 30s for leadership transfer (%v)", unit["TimeoutStopSec"], err)
	}
	cfg := loadExample(t)
	if !strings.HasPrefix(cfg.Node.DataDir, "/var/lib/"+unit["StateDirectory"]) {
		t.Errorf("example node.data_dir %s is not under StateDirectory %s", cfg.Node.DataDir, unit["StateDirectory"])
	}
}

// checkDirectives reports every directive of want that unit lacks or sets
// otherwise.
func checkDirectives(t *testing.T, path string, unit, want map[string]string) {
	t.Helper()
	for k, v := range want {
		got, ok := unit[k]
		if !ok {
			t.Errorf("%s: %s= missing", path, k)
		} else if got != v {
			t.Errorf("%s: %s=%s, want %s", path, k, got, v)
		}
	}
}

// TestUnit_SystemdAnalyze runs systemd-analyze when it is installed: verify
// must find nothing but the absent binary, and the offline security score
// must stay low, for every unit.
func TestUnit_SystemdAnalyze(t *testing.T) {
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		skipOrFailInCI(t, "systemd-analyze not installed (apt-get install systemd)")
	}
	for _, unitPath := range []string{unitPath, agentUnitPath} {
		t.Run(filepath.Base(unitPath), func(t *testing.T) { systemdAnalyze(t, bin, unitPath) })
	}
}

func systemdAnalyze(t *testing.T, bin, unitPath string) {
	out, _ := exec.Command(bin, "verify", unitPath).CombinedOutput()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" || strings.Contains(line, "/usr/local/bin/quorumha is not executable") {
			continue
		}
		t.Errorf("systemd-analyze verify: %s", line)
	}
	out, err := exec.Command(bin, "security", "--offline=true", "--no-pager", unitPath).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		skipOrFailInCI(t, fmt.Sprintf("systemd-analyze security --offline unsupported here (%v): %s", err, out))
	}
	if score, _ := strconv.ParseFloat(string(m[1]), 64); score > 2.5 {
		t.Errorf("systemd-analyze security exposure %.1f, want <= 2.5", score)
	}
}

// parseUnit returns the unit's Key=Value settings (the last one wins).
func parseUnit(t *testing.T, unitPath string) map[string]string {
	t.Helper()
	f, err := os.Open(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("%s: not Key=Value: %q", unitPath, line)
			continue
		}
		out[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// exampleWithSecrets writes config.example.yaml to a temp dir with every
// /etc/quorumha/NAME path pointing at a 0600 file there, and returns the
// config path and the secret files by NAME.
func exampleWithSecrets(t *testing.T) (string, map[string]string) {
	t.Helper()
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	secrets := map[string]string{}
	ca := testpki.NewCA(t, "raft CA")
	pair := ca.Issue(t, "c1", "10.0.1.10")
	pki := map[string][]byte{"ca.pem": ca.CertPEM, "raft.pem": pair.CertPEM, "raft-key.pem": pair.KeyPEM}
	text := regexp.MustCompile(regexp.QuoteMeta(etcDir)+`[A-Za-z0-9_.-]+`).ReplaceAllStringFunc(string(data), func(p string) string {
		name := strings.TrimPrefix(p, etcDir)
		f := filepath.Join(dir, name)
		// 32 bytes: also a valid memberlist key.
		content := []byte("0123456789abcdef0123456789abcdef\n")
		if pem, ok := pki[name]; ok { // the raft TLS files
			content = pem
		}
		if err := os.WriteFile(f, content, 0o600); err != nil {
			t.Fatal(err)
		}
		secrets[name] = f
		return f
	})
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, secrets
}

func loadExample(t *testing.T) *config.Config {
	t.Helper()
	path, _ := exampleWithSecrets(t)
	cfg, warns, err := config.Load(path, config.LoadOptions{Environ: []string{}})
	if err != nil {
		t.Fatalf("%s: %v", examplePath, err)
	}
	if len(warns) > 0 {
		t.Errorf("%s: warnings %v", examplePath, warns)
	}
	if err := cfg.ValidateForRun(); err != nil {
		t.Fatalf("%s: ValidateForRun: %v", examplePath, err)
	}
	return cfg
}

// skipOrFailInCI skips a check whose tool is missing on a developer's
// machine, and fails it under CI=true, where make deps installs the tool.
func skipOrFailInCI(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}
