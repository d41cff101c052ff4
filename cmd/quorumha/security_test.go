package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quorumha/quorumha/api"
	"github.com/quorumha/quorumha/config"
	"github.com/quorumha/quorumha/tests/testpki"
)

// httpsController is a fake controller answering GET /v1/leader over HTTPS
// when the request carries token.
func httpsController(t *testing.T, ca *testpki.CA, token string) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(api.ErrorResponse{Error: "missing bearer token", Code: 401})
			return
		}
		_ = json.NewEncoder(w).Encode(api.LeaderResponse{ID: "c2", RaftAddr: "127.0.0.1:7000", HTTPAddr: "https://127.0.0.1:8443", Term: 4})
	}))
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "c2", "127.0.0.1").TLS(t)}}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts
}

// runCLI runs one client command with args and returns its output.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newLeaderCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestClient_HTTPSWithCAAndTokenFile(t *testing.T) {
	t.Setenv("QUORUMHA_TOKEN", "")
	t.Setenv("QUORUMHA_CA", "")
	t.Setenv("QUORUMHA_ADDR", "")
	dir := t.TempDir()
	ca := testpki.NewCA(t, "api CA")
	files := testpki.WriteFiles(t, dir, "api", ca, ca.Issue(t, "cli", "127.0.0.1"))
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("tok-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := httpsController(t, ca, "tok-123")

	out, err := runCLI(t, "--addr", ts.URL, "--ca", files.CA, "--token-file", tokenFile)
	if err != nil || !strings.Contains(out, "leader c2") || !strings.Contains(out, "https://127.0.0.1:8443") {
		t.Fatalf("leader over HTTPS: %v\n%s", err, out)
	}
	t.Setenv("QUORUMHA_CA", files.CA)
	if out, err := runCLI(t, "--addr", ts.URL, "--token", "tok-123"); err != nil {
		t.Fatalf("CA from QUORUMHA_CA: %v\n%s", err, out)
	}
	t.Setenv("QUORUMHA_CA", "")

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"untrusted certificate", []string{"--addr", ts.URL, "--token", "tok-123"}, []string{"certificate"}},
		{"missing CA file", []string{"--addr", ts.URL, "--ca", filepath.Join(dir, "nope.pem")}, []string{"--ca", "nope.pem", "no such file"}},
		{"CA file without certificate", []string{"--addr", ts.URL, "--ca", tokenFile}, []string{"--ca", tokenFile, "no PEM certificate"}},
		{"missing token file", []string{"--addr", ts.URL, "--ca", files.CA, "--token-file", filepath.Join(dir, "none")}, []string{"--token-file", "none"}},
		{"both token flags", []string{"--addr", ts.URL, "--token", "x", "--token-file", tokenFile}, []string{"--token and --token-file"}},
		{"no token", []string{"--addr", ts.URL, "--ca", files.CA}, []string{"HTTP 401", "--token-file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runCLI(t, tt.args...)
			if err == nil {
				t.Fatalf("succeeded: %s", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to mention %q", err, w)
				}
			}
		})
	}
}

// TestCheckConfig_NeverPrintsSecrets loads a config with every kind of
// secret and checks no output of check-config (text, JSON, with problems
// or without) nor the logged start-up attributes carry one.
func TestCheckConfig_NeverPrintsSecrets(t *testing.T) {
	const inline, token, readToken, repl = "inline-pw-4711", "write-tok-4712", "read-tok-4713", "repl-pw-4714"
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tok := write("api.token", token+"\n")
	rtok := write("read.token", readToken+"\n")
	body := "node:\n  id: c1\n  data_dir: " + dir + "\n  raft_addr: 127.0.0.1:7000\n  http_addr: 127.0.0.1:8080\n" +
		"api:\n  token_file: " + tok + "\n  read_token_file: " + rtok + "\n" +
		"clusters:\n  - name: app1\n    user: monitor\n    password: " + inline + "\n    repl_user: repl\n" +
		"    instances: [{address: 'h1:3306'}, {address: 'h2:3306'}]\n"
	good := write("good.yaml", body)
	bad := write("bad.yaml", body+"detector:\n  quorum: most\n")
	env := config.LoadOptions{Environ: []string{"QUORUMHA_CLUSTERS_APP1_REPL_PASSWORD=" + repl}}
	var all bytes.Buffer
	for _, path := range []string{good, bad} {
		for _, asJSON := range []bool{false, true} {
			for _, forRun := range []bool{false, true} {
				var out, errOut bytes.Buffer
				_ = runCheckConfig(&out, &errOut, path, env, asJSON, forRun)
				all.Write(out.Bytes())
				all.Write(errOut.Bytes())
			}
		}
	}
	cfg, _, err := config.Load(good, env)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(cfg)
	all.Write(js)
	for _, secret := range []string{inline, token, readToken, repl} {
		if strings.Contains(all.String(), secret) {
			t.Errorf("output reveals %q:\n%s", secret, all.String())
		}
	}
	if !strings.Contains(all.String(), "good.yaml: OK") {
		t.Fatalf("check-config did not succeed on the good config:\n%s", all.String())
	}
}
