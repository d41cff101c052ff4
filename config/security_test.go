package config

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quorumha/quorumha/tests/testpki"
)

// runConfig writes a config for run on addr (host only) with the given extra
// sections and loads it; the node section is complete so only the case's
// own problem can show.
func runConfig(t *testing.T, dir, host, node, extra string, mode os.FileMode) (*Config, string) {
	t.Helper()
	y := "node:\n  id: c1\n  data_dir: " + filepath.Join(dir, "data") +
		"\n  raft_addr: '" + host + ":7000'\n  http_addr: '" + host + ":8080'\n  gossip_addr: '" + host + ":7946'\n" + node + extra
	path := writeFile(t, dir, "q.yaml", y, 0o600)
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := Load(path, LoadOptions{Environ: []string{}})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cfg, path
}

// wantRefused checks that err holds a problem naming file, key and value,
// classified as sentinel.
func wantRefused(t *testing.T, err error, sentinel error, file, key, value string, also ...string) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("err = %v, want %v", err, sentinel)
	}
	prefix := file + ": " + key + ": "
	if value != "" {
		prefix += `"` + value + `": `
	}
	for _, p := range Problems(err) {
		if strings.HasPrefix(p.Error(), prefix) {
			for _, a := range also {
				if !strings.Contains(p.Error(), a) {
					t.Errorf("problem %q does not mention %q", p, a)
				}
			}
			return
		}
	}
	t.Fatalf("no problem starting %q in:\n%v", prefix, err)
}

func TestValidateForRun_RefusesTokenlessNetworkAPI(t *testing.T) {
	dir := t.TempDir()
	key := writeFile(t, dir, "gossip.key", "0123456789abcdef0123456789abcdef\n", 0o600)
	gossip := "  gossip_key_file: " + key + "\n  insecure_no_raft_tls: true\n"
	cfg, path := runConfig(t, dir, "10.0.0.1", gossip, "", 0o600)
	wantRefused(t, cfg.ValidateForRun(), ErrInsecure, path, "node.http_addr", "10.0.0.1:8080", "api.token_file", "api.insecure_no_token")

	cfg, _ = runConfig(t, dir, "10.0.0.1", gossip, "api:\n  insecure_no_token: true\n", 0o600)
	if err := cfg.ValidateForRun(); err != nil {
		t.Fatalf("with api.insecure_no_token: %v", err)
	}
	tok := writeFile(t, dir, "api.token", "s3cret\n", 0o600)
	cfg, _ = runConfig(t, dir, "10.0.0.1", gossip, "api:\n  token_file: "+tok+"\n", 0o600)
	if err := cfg.ValidateForRun(); err != nil {
		t.Fatalf("with api.token_file: %v", err)
	}
	for _, host := range []string{"127.0.0.1", "127.0.0.2", "[::1]"} {
		cfg, _ = runConfig(t, dir, host, "", "", 0o600)
		if err := cfg.ValidateForRun(); err != nil {
			t.Fatalf("loopback %s without a token: %v", host, err)
		}
	}
}

func TestValidateForRun_RefusesKeylessNetworkGossip(t *testing.T) {
	dir := t.TempDir()
	tok := writeFile(t, dir, "api.token", "s3cret\n", 0o600)
	api := "api:\n  token_file: " + tok + "\n"
	cfg, path := runConfig(t, dir, "10.0.0.1", "  insecure_no_raft_tls: true\n", api, 0o600)
	wantRefused(t, cfg.ValidateForRun(), ErrInsecure, path, "node.gossip_addr", "10.0.0.1:7946", "node.gossip_key_file", "node.insecure_no_gossip_key")

	cfg, _ = runConfig(t, dir, "10.0.0.1", "  insecure_no_gossip_key: true\n  insecure_no_raft_tls: true\n", api, 0o600)
	if err := cfg.ValidateForRun(); err != nil {
		t.Fatalf("with node.insecure_no_gossip_key: %v", err)
	}
}

func TestValidateForRun_RefusesReadableConfigWithInlinePassword(t *testing.T) {
	const password = "hunter2-inline"
	clusters := "clusters:\n  - name: app1\n    user: monitor\n    password: " + password +
		"\n    instances: [{address: 'h1:3306'}, {address: 'h2:3306'}]\n"
	dir := t.TempDir()
	cfg, path := runConfig(t, dir, "127.0.0.1", "", clusters, 0o644)
	err := cfg.ValidateForRun()
	wantRefused(t, err, ErrSecretPerm, path, "clusters[0].password", path, "mode 0644", "chmod 600", "password_file")
	if strings.Contains(err.Error(), password) {
		t.Fatalf("refusal prints the password: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate (check-config without --for-run) refused it: %v", err)
	}

	// A private file, or a readable one with the password in a file or the
	// environment, is fine.
	cfg, _ = runConfig(t, dir, "127.0.0.1", "", clusters, 0o600)
	if err := cfg.ValidateForRun(); err != nil {
		t.Fatalf("0600 config: %v", err)
	}
	pw := writeFile(t, dir, "monitor.pass", password+"\n", 0o600)
	noInline := strings.Replace(clusters, "password: "+password, "password_file: "+pw, 1)
	cfg, _ = runConfig(t, dir, "127.0.0.1", "", noInline, 0o644)
	if err := cfg.ValidateForRun(); err != nil {
		t.Fatalf("password_file in a 0644 config: %v", err)
	}
	y := "node:\n  id: c1\n  data_dir: /tmp/q\n  raft_addr: 127.0.0.1:7000\n  http_addr: 127.0.0.1:8080\n" +
		"clusters:\n  - name: app1\n    instances: [{address: 'h1:3306'}, {address: 'h2:3306'}]\n"
	path = writeFile(t, dir, "env.yaml", y, 0o644)
	cfg, _, err = Load(path, LoadOptions{Environ: []string{"QUORUMHA_CLUSTERS_APP1_PASSWORD=" + password}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.ValidateForRun(); err != nil {
		t.Fatalf("password from the environment: %v", err)
	}
}

func TestValidateForRun_RefusesReadableMHAConfigWithPassword(t *testing.T) {
	dir := t.TempDir()
	cnf := writeFile(t, dir, "app1.cnf", "[server default]\nuser=root\npassword=mha-secret\n[server1]\nhostname=h1\n[server2]\nhostname=h2\n", 0o644)
	if err := os.Chmod(cnf, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _ := runConfig(t, dir, "127.0.0.1", "", "mha_configs: ["+cnf+"]\n", 0o600)
	err := cfg.ValidateForRun()
	wantRefused(t, err, ErrSecretPerm, cnf, "clusters[0].password", cnf, "mode 0644")
	if strings.Contains(err.Error(), "mha-secret") {
		t.Fatalf("refusal prints the password: %v", err)
	}
}

func TestValidate_ReadTokenRules(t *testing.T) {
	dir := t.TempDir()
	read := writeFile(t, dir, "read.token", "reader\n", 0o600)
	same := writeFile(t, dir, "same.token", "reader\n", 0o600)
	tests := []struct {
		name, api, key, value string
		sentinel              error
	}{
		{"read token without write token", "api:\n  read_token_file: " + read + "\n", "api.token_file", "", ErrMissing},
		{"read token equals write token", "api:\n  token_file: " + same + "\n  read_token_file: " + read + "\n", "api.read_token_file", read, ErrConflict},
		{"metrics auth without token", "api:\n  metrics_auth: true\n", "api.metrics_auth", "true", ErrMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, dir, "q.yaml", tt.api, 0o600)
			_, _, err := Load(path, LoadOptions{Environ: []string{}})
			wantRefused(t, err, tt.sentinel, path, tt.key, tt.value)
			if strings.Contains(err.Error(), "reader") {
				t.Fatalf("error prints the token: %v", err)
			}
		})
	}
}

func TestValidateForRun_TLSFiles(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test CA")
	f := testpki.WriteFiles(t, dir, "api", ca, ca.Issue(t, "c1", "127.0.0.1"))
	other := testpki.NewCA(t, "other CA").Issue(t, "c1", "127.0.0.1")
	otherKey := writeFile(t, dir, "other-key.pem", string(other.KeyPEM), 0o600)
	garbage := writeFile(t, dir, "garbage.pem", "not a certificate\n", 0o600)
	missing := filepath.Join(dir, "missing.pem")

	good := "api:\n  tls_cert: " + f.Cert + "\n  tls_key: " + f.Key + "\n  tls_ca: " + f.CA + "\n"
	raft := "  raft_tls_cert: " + f.Cert + "\n  raft_tls_key: " + f.Key + "\n  raft_tls_ca: " + f.CA + "\n"
	cfg, _ := runConfig(t, dir, "127.0.0.1", raft, good, 0o600)
	if err := cfg.ValidateForRun(); err != nil {
		t.Fatalf("valid TLS files: %v", err)
	}
	srv, err := cfg.APIServerTLS()
	if err != nil || srv == nil || srv.MinVersion != tls.VersionTLS12 || len(srv.Certificates) != 1 {
		t.Fatalf("APIServerTLS = %+v, %v; want TLS 1.2 minimum and one certificate", srv, err)
	}
	rc, err := cfg.RaftTLSConfig()
	if err != nil || rc.ClientAuth != tls.RequireAndVerifyClientCert || rc.ClientCAs == nil || rc.RootCAs == nil || rc.MinVersion != tls.VersionTLS12 {
		t.Fatalf("RaftTLSConfig = %+v, %v; want mutual TLS", rc, err)
	}

	tests := []struct {
		name, node, api, key, value, msg string
	}{
		{"missing cert", "", "api:\n  tls_cert: " + missing + "\n  tls_key: " + f.Key + "\n", "api.tls_cert", missing, "no such file"},
		{"garbage cert", "", "api:\n  tls_cert: " + garbage + "\n  tls_key: " + f.Key + "\n", "api.tls_cert", garbage, "no PEM certificate"},
		{"missing key", "", "api:\n  tls_cert: " + f.Cert + "\n  tls_key: " + missing + "\n", "api.tls_key", missing, "no such file"},
		{"garbage key", "", "api:\n  tls_cert: " + f.Cert + "\n  tls_key: " + garbage + "\n", "api.tls_key", garbage, "no PEM private key"},
		{"key of another cert", "", "api:\n  tls_cert: " + f.Cert + "\n  tls_key: " + otherKey + "\n", "api.tls_key", otherKey, "does not match api.tls_cert"},
		{"garbage api CA", "", "api:\n  tls_ca: " + garbage + "\n", "api.tls_ca", garbage, "no PEM certificate"},
		{"missing raft CA", "  raft_tls_cert: " + f.Cert + "\n  raft_tls_key: " + f.Key + "\n  raft_tls_ca: " + missing + "\n", "", "node.raft_tls_ca", missing, "no such file"},
		{"garbage raft cert", "  raft_tls_cert: " + garbage + "\n  raft_tls_key: " + f.Key + "\n  raft_tls_ca: " + f.CA + "\n", "", "node.raft_tls_cert", garbage, "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, path := runConfig(t, t.TempDir(), "127.0.0.1", tt.node, tt.api, 0o600)
			wantRefused(t, cfg.ValidateForRun(), ErrFile, path, tt.key, tt.value, tt.msg)
		})
	}
}

// Security review item 2: plain raft on a network address is refused, not
// merely logged.
func TestValidateForRun_RefusesPlainNetworkRaft(t *testing.T) {
	dir := t.TempDir()
	tok := writeFile(t, dir, "api.token", "s3cret\n", 0o600)
	key := writeFile(t, dir, "gossip.key", "0123456789abcdef0123456789abcdef\n", 0o600)
	node := "  gossip_key_file: " + key + "\n"
	api := "api:\n  token_file: " + tok + "\n"
	cfg, path := runConfig(t, dir, "10.0.0.1", node, api, 0o600)
	wantRefused(t, cfg.ValidateForRun(), ErrInsecure, path, "node.raft_addr", "10.0.0.1:7000", "node.raft_tls_cert", "node.insecure_no_raft_tls")

	cfg, _ = runConfig(t, dir, "10.0.0.1", node+"  insecure_no_raft_tls: true\n", api, 0o600)
	if err := cfg.ValidateForRun(); err != nil {
		t.Fatalf("with node.insecure_no_raft_tls: %v", err)
	}
	ca := testpki.NewCA(t, "raft CA")
	f := testpki.WriteFiles(t, dir, "raft", ca, ca.Issue(t, "c1", "10.0.0.1"))
	cfg, _ = runConfig(t, dir, "10.0.0.1", node+"  raft_tls_cert: "+f.Cert+"\n  raft_tls_key: "+f.Key+"\n  raft_tls_ca: "+f.CA+"\n", api, 0o600)
	if err := cfg.ValidateForRun(); err != nil {
		t.Fatalf("with raft TLS: %v", err)
	}
}

// Security review item 5: an http:// agent on a network address is refused
// unless the cluster says insecure_http.
func TestValidateForRun_RefusesPlainNetworkAgent(t *testing.T) {
	dir := t.TempDir()
	clusters := func(agent, extra string) string {
		return "clusters:\n  - name: app1\n    user: monitor\n" + extra +
			"    instances: [{address: 'h1:3306', agent: '" + agent + "'}, {address: 'h2:3306'}]\n"
	}
	cfg, path := runConfig(t, dir, "127.0.0.1", "", clusters("http://10.0.0.5:7080", ""), 0o600)
	wantRefused(t, cfg.ValidateForRun(), ErrInsecure, path, "clusters[0].instances[0].agent", "http://10.0.0.5:7080", "insecure_http")
	for _, ok := range []string{
		clusters("http://10.0.0.5:7080", "    agent: {insecure_http: true}\n"),
		clusters("http://127.0.0.1:7080", ""),
		clusters("https://10.0.0.5:7080", ""),
	} {
		cfg, _ = runConfig(t, dir, "127.0.0.1", "", ok, 0o600)
		if err := cfg.ValidateForRun(); err != nil {
			t.Fatalf("%s: %v", ok, err)
		}
	}
}
