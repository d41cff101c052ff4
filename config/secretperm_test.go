package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoad_SecretFilePermissions checks that every kind of secret file is
// refused when its group or others may access it, and that the error names
// the config file, the key, the secret file and its mode.
func TestLoad_SecretFilePermissions(t *testing.T) {
	cluster := func(extra string) string {
		return "clusters:\n  - name: app1\n    user: monitor\n" + extra +
			"    instances:\n      - address: h1:3306\n      - address: h2:3306\n"
	}
	tokenFile := writeFile(t, t.TempDir(), "write.token", "writer\n", 0o600)
	tests := []struct {
		name   string
		key    string
		mode   os.FileMode
		config func(secret string) string
	}{
		{"password_file 0644", "clusters[0].password_file", 0o644,
			func(s string) string { return cluster("    password_file: " + s + "\n") }},
		{"password_file 0640", "clusters[0].password_file", 0o640,
			func(s string) string { return cluster("    password_file: " + s + "\n") }},
		{"repl_password_file 0604", "clusters[0].repl_password_file", 0o604,
			func(s string) string { return cluster("    repl_password_file: " + s + "\n") }},
		{"api.token_file 0644", "api.token_file", 0o644,
			func(s string) string { return "api:\n  token_file: " + s + "\n" + cluster("") }},
		{"api.token_file 0660", "api.token_file", 0o660,
			func(s string) string { return "api:\n  token_file: " + s + "\n" + cluster("") }},
		{"node.gossip_key_file 0644", "node.gossip_key_file", 0o644,
			func(s string) string { return "node:\n  gossip_key_file: " + s + "\n" + cluster("") }},
		{"node.gossip_key_file 0620", "node.gossip_key_file", 0o620,
			func(s string) string { return "node:\n  gossip_key_file: " + s + "\n" + cluster("") }},
		{"password_file 0601 (others execute)", "clusters[0].password_file", 0o601,
			func(s string) string { return cluster("    password_file: " + s + "\n") }},
		{"api.read_token_file 0644", "api.read_token_file", 0o644,
			func(s string) string {
				return "api:\n  read_token_file: " + s + "\n  token_file: " + tokenFile + "\n" + cluster("")
			}},
		{"api.tls_key 0640", "api.tls_key", 0o640,
			func(s string) string { return "api:\n  tls_cert: /c.pem\n  tls_key: " + s + "\n" + cluster("") }},
		{"node.raft_tls_key 0644", "node.raft_tls_key", 0o644,
			func(s string) string {
				return "node:\n  raft_tls_cert: /c.pem\n  raft_tls_ca: /ca.pem\n  raft_tls_key: " + s + "\n" + cluster("")
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			secret := writeFile(t, dir, "secret", "0123456789abcdef\n", 0o600)
			// WriteFile's mode is filtered by the umask; set it exactly.
			if err := os.Chmod(secret, tt.mode); err != nil {
				t.Fatal(err)
			}
			path := writeFile(t, dir, "q.yaml", tt.config(secret), 0o644)
			_, _, err := Load(path, LoadOptions{Environ: []string{}})
			if !errors.Is(err, ErrSecretPerm) {
				t.Fatalf("err = %v, want ErrSecretPerm", err)
			}
			for _, want := range []string{path + ": " + tt.key + ": ", secret, "mode " + octal(tt.mode), "chmod 600"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want containing %q", err, want)
				}
			}
			// Fixing the mode fixes the load.
			if err := os.Chmod(secret, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, _, err := Load(path, LoadOptions{Environ: []string{}}); err != nil {
				t.Fatalf("after chmod 600: %v", err)
			}
		})
	}
}

// octal formats a mode as chmod writes it (0644).
func octal(m os.FileMode) string {
	const digits = "01234567"
	p := uint32(m.Perm())
	return "0" + string([]byte{digits[p>>6&7], digits[p>>3&7], digits[p&7]})
}

// TestLoad_SecretFileOwnerOnlyModes checks that 0600 and 0400 are accepted
// for every secret file at once.
func TestLoad_SecretFileOwnerOnlyModes(t *testing.T) {
	for _, mode := range []os.FileMode{0o600, 0o400} {
		dir := t.TempDir()
		for _, name := range []string{"monitor.pass", "repl.pass", "api.token", "gossip.key"} {
			p := writeFile(t, dir, name, "0123456789abcdef\n", 0o600)
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
		}
		content := "node:\n  gossip_key_file: gossip.key\napi:\n  token_file: api.token\n" +
			"clusters:\n  - name: app1\n    password_file: monitor.pass\n    repl_password_file: repl.pass\n" +
			"    instances:\n      - address: h1:3306\n      - address: h2:3306\n"
		path := writeFile(t, dir, "q.yaml", content, 0o644)
		cfg, _, err := Load(path, LoadOptions{Environ: []string{}})
		if err != nil {
			t.Fatalf("mode %s: %v", octal(mode), err)
		}
		if cfg.Clusters[0].Password.Reveal() != "0123456789abcdef" || cfg.API.Token.Reveal() == "" {
			t.Errorf("mode %s: secrets not read", octal(mode))
		}
	}
}

// TestLoad_SecretFileFromEnvChecked checks that a password file named by
// the environment is held to the same rule as one named in the file.
func TestLoad_SecretFileFromEnvChecked(t *testing.T) {
	dir := t.TempDir()
	secret := writeFile(t, dir, "env.pass", "pw\n", 0o600)
	if err := os.Chmod(secret, 0o644); err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, dir, "q.yaml", minimalYAML, 0o644)
	_, _, err := Load(path, LoadOptions{Environ: []string{"QUORUMHA_CLUSTERS_APP1_PASSWORD_FILE=" + secret}})
	if !errors.Is(err, ErrSecretPerm) || !strings.Contains(err.Error(), "clusters[0].password_file") {
		t.Fatalf("err = %v, want ErrSecretPerm on clusters[0].password_file", err)
	}
}

// TestCheckSecretPerm_FollowsSymlinks checks that the mode of the target,
// not of the link (always 0777), decides, as with Kubernetes and Docker
// secret mounts.
func TestCheckSecretPerm_FollowsSymlinks(t *testing.T) {
	dir := t.TempDir()
	target := writeFile(t, dir, "real.pass", "pw\n", 0o600)
	link := filepath.Join(dir, "link.pass")
	if err := os.Symlink(target, link); err != nil {
		t.Skip("symlinks unavailable:", err)
	}
	if err := checkSecretPerm(link); err != nil {
		t.Errorf("link to 0600 file: %v", err)
	}
	if err := os.Chmod(target, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := checkSecretPerm(link); !errors.Is(err, ErrSecretPerm) {
		t.Errorf("link to 0644 file: err = %v, want ErrSecretPerm", err)
	}
	if err := checkSecretPerm(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("missing file: %v (reading it reports the problem)", err)
	}
}
