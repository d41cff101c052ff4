package main

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quorumha/quorumha/config"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/")

func proxyTestConfig() *config.Config {
	return &config.Config{
		Source: "/etc/quorumha/quorumha.yaml",
		Node:   config.Node{ID: "c1", HTTPAddr: "10.0.1.10:8080"},
		Clusters: []config.Cluster{
			{Name: "other", Instances: []config.Instance{{Address: "10.9.0.1:3306"}}},
			{Name: "app1", Instances: []config.Instance{
				{Address: "10.0.0.1:3306"}, {Address: "10.0.0.2:3306"}, {Address: "db3.example:3307"},
			}},
		},
	}
}

func TestProxyConfigHAProxy_Golden(t *testing.T) {
	withToken := proxyTestConfig()
	withToken.API.ReadTokenFile = "/etc/quorumha/read.token"
	withToken.API.ReadToken = "r3ad-t0ken"
	withTLS := proxyTestConfig()
	withTLS.API.TLSCert, withTLS.API.TLSKey, withTLS.API.TLSCA = "/etc/quorumha/api.crt", "/etc/quorumha/api.key", "/etc/quorumha/ca.pem"
	ctls := []string{"10.0.1.10:8080", "10.0.2.10:8080", "10.0.3.10:8080"}
	tests := []struct {
		golden string
		cfg    *config.Config
		opts   haproxyOptions
	}{
		{"haproxy_token.cfg", withToken, haproxyOptions{Cluster: "app1", Listen: ":5000", ReadListen: ":5001", CheckListen: defaultProxyCheckListen, Controllers: ctls}},
		{"haproxy_tls_noread.cfg", withTLS, haproxyOptions{Cluster: "app1", Listen: "127.0.0.1:3306", CheckListen: "127.0.0.1:9000", Controllers: ctls}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			got, err := renderHAProxy(tt.cfg, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tt.golden)
			if *updateGolden {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestProxyConfigHAProxy_Golden -update ./cmd/quorumha)", err)
			}
			if got != string(want) {
				t.Fatalf("output differs from %s (rerun with -update and review the diff):\n%s", path, got)
			}
			haproxyCheck(t, got)
		})
	}
}

// haproxyCheck runs `haproxy -c` on a generated config when HAProxy is
// installed (CI=true: it must be).
func haproxyCheck(t *testing.T, cfg string) {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		bin = "/usr/sbin/haproxy"
		if _, serr := os.Stat(bin); serr != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("haproxy not installed (make deps)")
			}
			t.Log("haproxy not installed: config not checked with haproxy -c")
			return
		}
	}
	p := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// db3.example does not resolve here: name resolution is HAProxy's at
	// start, not a config error worth failing on in this check.
	// Likewise the golden CA path: any readable CA bundle stands in.
	p2 := p + ".resolvable"
	cfg = strings.ReplaceAll(cfg, "db3.example", "127.0.0.3")
	cfg = strings.ReplaceAll(cfg, "/etc/quorumha/ca.pem", "/etc/ssl/certs/ca-certificates.crt")
	if err := os.WriteFile(p2, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", p2).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
}

func TestProxyConfigHAProxy_Refusals(t *testing.T) {
	ok := haproxyOptions{Cluster: "app1", Listen: ":5000", ReadListen: ":5001", CheckListen: defaultProxyCheckListen, Controllers: []string{"10.0.1.10:8080"}}
	badToken := proxyTestConfig()
	badToken.API.ReadTokenFile, badToken.API.ReadToken = "/etc/quorumha/read.token", `has"quote`
	tests := []struct {
		name string
		cfg  *config.Config
		mut  func(*haproxyOptions)
		want string
	}{
		{"unknown cluster", proxyTestConfig(), func(o *haproxyOptions) { o.Cluster = "nope" }, `--cluster "nope": not a cluster of /etc/quorumha/quorumha.yaml`},
		{"bad listen", proxyTestConfig(), func(o *haproxyOptions) { o.Listen = "5000" }, `--listen "5000"`},
		{"bad read listen", proxyTestConfig(), func(o *haproxyOptions) { o.ReadListen = "x" }, `--read-listen "x"`},
		{"bad controller", proxyTestConfig(), func(o *haproxyOptions) { o.Controllers = []string{"c1"} }, `--controllers "c1"`},
		{"token HAProxy cannot quote", badToken, nil, "/etc/quorumha/read.token (api.read_token_file)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			if tt.mut != nil {
				tt.mut(&o)
			}
			_, err := renderHAProxy(tt.cfg, o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
