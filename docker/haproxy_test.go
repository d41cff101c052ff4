package docker

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The demo's HAProxy service (docker/haproxy/): its haproxy.cfg is what
// `quorumha proxy-config haproxy` prints for cluster demo with all three
// controllers, so the checks use the same endpoints the docs describe.
// QUORUMHA_UPDATE_GOLDEN=1 rewrites the file.

const (
	haproxyService    = "haproxy"
	haproxyDockerfile = "haproxy/Dockerfile"
	haproxyConfig     = "haproxy/haproxy.cfg"
	haproxyAddr       = "172.30.0.30"
)

// haproxyArgs are the proxy-config flags the committed file comes from.
func haproxyArgs(configPath string) []string {
	ctrls := make([]string, 0, len(controllers))
	for _, c := range []string{"172.30.0.11", "172.30.0.12", "172.30.0.13"} {
		ctrls = append(ctrls, c+":8080")
	}
	return []string{"run", "../cmd/quorumha", "proxy-config", "haproxy", "--config", configPath, "--cluster", "demo",
		"--listen", ":5000", "--read-listen", ":5001", "--controllers", strings.Join(ctrls, ",")}
}

// TestHAProxy_ConfigCurrent regenerates haproxy.cfg from c1's config and
// compares it with the committed file.
func TestHAProxy_ConfigCurrent(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		if _, err := os.Stat("/usr/local/go/bin/go"); err != nil {
			skipOrFailInCI(t, "no go toolchain to run quorumha proxy-config")
		}
		goBin = "/usr/local/go/bin/go"
	}
	cf := loadCompose(t)
	tmp := withSecrets(t, configMount(t, "c1", cf.Services["c1"]), cf.Services["c1"].Secrets)
	cmd := exec.Command(goBin, haproxyArgs(tmp)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	want, err := cmd.Output()
	if err != nil {
		t.Fatalf("quorumha proxy-config haproxy: %v\n%s", err, stderr.String())
	}
	if os.Getenv("QUORUMHA_UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(haproxyConfig, want, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s rewritten", haproxyConfig)
	}
	got, err := os.ReadFile(haproxyConfig)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not what quorumha proxy-config haproxy prints now; rerun with QUORUMHA_UPDATE_GOLDEN=1 (go test -run TestHAProxy_ConfigCurrent ./docker)", haproxyConfig)
	}
	// No secret in the committed file: the demo's API has no read token.
	if bytes.Contains(got, []byte("Authorization")) {
		t.Errorf("%s carries a token", haproxyConfig)
	}
}

// TestHAProxy_Service checks the service: built like the others, mounted
// config, on db at its fixed address, resolving the servers from
// /etc/hosts, started after the controllers.
func TestHAProxy_Service(t *testing.T) {
	cf := loadCompose(t)
	s, ok := cf.Services[haproxyService]
	if !ok {
		t.Fatalf("compose.yaml has no %s service", haproxyService)
	}
	if s.Build == nil || s.Build.Dockerfile != haproxyDockerfile {
		t.Errorf("%s: build %+v, want dockerfile %s", haproxyService, s.Build, haproxyDockerfile)
	}
	if !strings.HasPrefix(s.Image, "quorumha-haproxy:") {
		t.Errorf("%s: image %q, want quorumha-haproxy:TAG (what compose-demo.sh images builds)", haproxyService, s.Image)
	}
	if !contains(s.Volumes, "./"+haproxyConfig+":/etc/haproxy/haproxy.cfg:ro") {
		t.Errorf("%s: volumes %v do not mount %s read-only", haproxyService, s.Volumes, haproxyConfig)
	}
	if sn := s.Networks["db"]; sn == nil || sn.IPv4Address != haproxyAddr {
		t.Errorf("%s: not on db at %s: %+v", haproxyService, haproxyAddr, s.Networks)
	}
	if len(s.ExtraHosts) != len(databases) {
		t.Errorf("%s: extra_hosts %v, want the servers' fixed addresses", haproxyService, s.ExtraHosts)
	}
	for _, c := range controllers {
		if _, ok := s.DependsOn[c]; !ok {
			t.Errorf("%s: does not depend on %s", haproxyService, c)
		}
	}
	df, err := os.ReadFile(haproxyDockerfile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ARG BASE_IMAGE=debian:bookworm-slim", "FROM ${BASE_IMAGE}", "install -y --no-install-recommends haproxy",
		"USER haproxy", "EXPOSE 5000/tcp 5001/tcp", "STOPSIGNAL SIGTERM", "/etc/haproxy/haproxy.cfg"} {
		if !strings.Contains(string(df), want) {
			t.Errorf("%s does not contain %q", haproxyDockerfile, want)
		}
	}
	script, err := os.ReadFile("../scripts/compose-demo.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(script, []byte(`"quorumha-haproxy:$TAG=`+haproxyDockerfile+`"`)) {
		t.Errorf("scripts/compose-demo.sh images does not build quorumha-haproxy from %s", haproxyDockerfile)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
