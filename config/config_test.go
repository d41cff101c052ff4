package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSecret_NeverPrinted(t *testing.T) {
	const pw = "hunter2-very-secret"
	cfg := &Config{
		API: API{Token: Secret(pw), ReadToken: Secret(pw)},
		Clusters: []Cluster{{
			Name: "app1", Password: Secret(pw), ReplPassword: Secret(pw),
			Instances: []Instance{{Address: "h1:3306"}},
		}},
	}
	var jsonBuf, textBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&jsonBuf, nil)).Info("cfg", "config", cfg, "cluster", cfg.Clusters[0], "pw", cfg.API.Token)
	slog.New(slog.NewTextHandler(&textBuf, nil)).Info("cfg", "config", cfg, "cluster", cfg.Clusters[0], "pw", cfg.API.Token)
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	txt, err := cfg.API.Token.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v":        fmt.Sprintf("%v", cfg),
		"%+v":       fmt.Sprintf("%+v", *cfg),
		"%#v":       fmt.Sprintf("%#v", *cfg),
		"%s":        fmt.Sprintf("%s", cfg.Clusters[0].Password),
		"%q":        fmt.Sprintf("%q", cfg.Clusters[0].Password),
		"%x":        fmt.Sprintf("%x", cfg.Clusters[0].Password),
		"%v-slice":  fmt.Sprintf("%v", cfg.Clusters),
		"json":      string(js),
		"text":      string(txt),
		"slog-json": jsonBuf.String(),
		"slog-text": textBuf.String(),
	}
	for name, out := range outputs {
		if strings.Contains(out, pw) || strings.Contains(out, fmt.Sprintf("%x", pw)) {
			t.Errorf("%s output reveals the secret: %s", name, out)
		}
		if !strings.Contains(out, "****") {
			t.Errorf("%s output has no mask: %s", name, out)
		}
	}
	if got := cfg.API.Token.Reveal(); got != pw {
		t.Errorf("Reveal() = %q, want %q", got, pw)
	}
}

func TestSecret_EmptyStaysEmpty(t *testing.T) {
	var s Secret
	if got := s.String(); got != "" {
		t.Errorf("String() = %q, want empty", got)
	}
	js, _ := json.Marshal(s)
	if string(js) != `""` {
		t.Errorf("json = %s, want \"\"", js)
	}
	if got := s.LogValue().String(); got != "" {
		t.Errorf("LogValue = %q, want empty", got)
	}
}

func TestDetector_QuorumSize(t *testing.T) {
	tests := []struct {
		quorum string
		live   int
		want   int
	}{
		{"majority", 3, 2},
		{"majority", 4, 3},
		{"majority", 5, 3},
		{"majority", 1, 1},
		{"2", 5, 2},
		{"3", 3, 3},
		{"bogus", 3, 2},
		{"0", 3, 2},
	}
	for _, tt := range tests {
		if got := (Detector{Quorum: tt.quorum}).QuorumSize(tt.live); got != tt.want {
			t.Errorf("QuorumSize(%q, live=%d) = %d, want %d", tt.quorum, tt.live, got, tt.want)
		}
	}
}

func TestNode_BootstrapPeers(t *testing.T) {
	tests := []struct {
		name    string
		entries []string
		want    []Peer
		wantErr string
	}{
		{"empty", nil, []Peer{}, ""},
		{"three", []string{"c1=10.0.0.1:7000", " c2 = host2:7000"}, []Peer{{"c1", "10.0.0.1:7000"}, {"c2", "host2:7000"}}, ""},
		{"no id", []string{"=h:1"}, nil, "node.bootstrap[0]"},
		{"no equals", []string{"c1"}, nil, "want id=host:port"},
		{"bad port", []string{"c1=h:99999"}, nil, "1..65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Node{Bootstrap: tt.entries}.BootstrapPeers()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("peers = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestInstance_HostPort(t *testing.T) {
	tests := []struct {
		addr string
		host string
		port int
	}{
		{"10.0.0.1:3306", "10.0.0.1", 3306},
		{"[::1]:3307", "::1", 3307},
		{"db.example:13306", "db.example", 13306},
		{"nonsense", "", 0},
		{"h:abc", "h", 0},
	}
	for _, tt := range tests {
		in := Instance{Address: tt.addr}
		if in.Host() != tt.host || in.Port() != tt.port {
			t.Errorf("%q: Host,Port = %q,%d, want %q,%d", tt.addr, in.Host(), in.Port(), tt.host, tt.port)
		}
	}
}

func TestCluster_LagLimitAndReplDelay(t *testing.T) {
	r := Recovery{MaxReplicaLag: 30 * time.Second, CheckReplDelay: true}
	if got := (Cluster{}).LagLimit(r); got != 30*time.Second {
		t.Errorf("LagLimit without max_lag = %v, want 30s", got)
	}
	if got := (Cluster{MaxLag: 5 * time.Second}).LagLimit(r); got != 5*time.Second {
		t.Errorf("LagLimit with max_lag = %v, want 5s", got)
	}
	off := false
	if (Instance{CheckReplDelay: &off}).ChecksReplDelay(r) {
		t.Error("instance check_repl_delay=false should override global true")
	}
	if !(Instance{}).ChecksReplDelay(r) {
		t.Error("instance without setting should follow global true")
	}
}

func TestLog_SlogLevel(t *testing.T) {
	tests := map[string]slog.Level{"debug": slog.LevelDebug, "warn": slog.LevelWarn, "ERROR": slog.LevelError, "bogus": slog.LevelInfo}
	for in, want := range tests {
		if got := (Log{Level: in}).SlogLevel(); got != want {
			t.Errorf("SlogLevel(%q) = %v, want %v", in, got, want)
		}
	}
}
