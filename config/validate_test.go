package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// yamlParts builds a config from named sections so each validation case
// replaces just the part it breaks.
type yamlParts map[string]string

func baseParts(hook string) yamlParts {
	return yamlParts{
		"node":     "node:\n  id: c1\n  raft_addr: 127.0.0.1:7000\n  http_addr: 127.0.0.1:8080\n  gossip_addr: 127.0.0.1:7946\n  data_dir: /tmp/q\n  bootstrap: [c1=127.0.0.1:7000, c2=127.0.0.2:7000]\n",
		"api":      "",
		"detector": "detector:\n  probe_interval: 1s\n",
		"recovery": "",
		"log":      "log:\n  level: info\n",
		"clusters": "clusters:\n  - name: app1\n    hooks:\n      report: " + hook + "\n    instances:\n      - address: 10.0.0.1:3306\n      - address: 10.0.0.2:3306\n",
	}
}

func (p yamlParts) render() string {
	var b strings.Builder
	for _, k := range []string{"node", "api", "detector", "recovery", "log", "clusters"} {
		b.WriteString(p[k])
	}
	return b.String()
}

func TestValidate_Errors(t *testing.T) {
	dir := t.TempDir()
	hook := writeFile(t, dir, "hook.sh", "#!/bin/sh\nexit 0\n", 0o755)
	notExec := writeFile(t, dir, "noexec.sh", "#!/bin/sh\n", 0o644)
	inst := func(addrs ...string) string {
		s := "clusters:\n  - name: app1\n    instances:\n"
		for _, a := range addrs {
			s += "      - address: " + a + "\n"
		}
		return s
	}
	tests := []struct {
		name     string
		part     string
		yaml     string
		key      string
		value    string
		sentinel error
	}{
		{"bad duration", "detector", "detector:\n  probe_interval: 3x\n", "detector.probe_interval", `"3x": invalid duration`, ErrInvalidValue},
		{"duration without unit", "detector", "detector:\n  probe_timeout: 5\n", "detector.probe_timeout", `"5"`, ErrInvalidValue},
		{"zero duration", "detector", "detector:\n  freshness_window: 0s\n", "detector.freshness_window", `"0s": must be a positive duration`, ErrInvalidValue},
		{"replica heartbeat too short", "detector", "detector:\n  replica_heartbeat: 100us\n", "detector.replica_heartbeat", `"100µs": must be 0`, ErrInvalidValue},
		{"replica heartbeat too long", "detector", "detector:\n  replica_heartbeat: 2h\n", "detector.replica_heartbeat", `"2h0m0s"`, ErrInvalidValue},
		{"negative duration", "recovery", "recovery:\n  anti_flap: -1m\n", "recovery.anti_flap", `"-1m0s"`, ErrInvalidValue},
		{"apply timeout", "recovery", "recovery:\n  apply_timeout: 0s\n", "recovery.apply_timeout", `"0s"`, ErrInvalidValue},
		{"lag", "recovery", "recovery:\n  max_replica_lag: 0s\n", "recovery.max_replica_lag", `"0s"`, ErrInvalidValue},
		{"salvage timeout", "recovery", "recovery:\n  salvage_timeout: 0s\n", "recovery.salvage_timeout", `"0s"`, ErrInvalidValue},
		{"agent not a URL scheme", "clusters", "clusters:\n  - name: app1\n    instances:\n      - address: 10.0.0.1:3306\n        agent: ftp://10.0.0.1:7080\n      - address: 10.0.0.2:3306\n",
			"clusters[0].instances[0].agent", `"ftp://10.0.0.1:7080": want http://host:port`, ErrInvalidValue},
		{"agent without port", "clusters", "clusters:\n  - name: app1\n    instances:\n      - address: 10.0.0.1:3306\n        agent: https://10.0.0.1\n      - address: 10.0.0.2:3306\n",
			"clusters[0].instances[0].agent", `"https://10.0.0.1": want host and port`, ErrInvalidValue},
		{"agent with a path", "clusters", "clusters:\n  - name: app1\n    instances:\n      - address: 10.0.0.1:3306\n        agent: https://10.0.0.1:7080/x\n      - address: 10.0.0.2:3306\n",
			"clusters[0].instances[0].agent", `"https://10.0.0.1:7080/x": no path`, ErrInvalidValue},
		{"agent ca missing", "clusters", "clusters:\n  - name: app1\n    agent:\n      ca_file: /nonexistent/ca.pem\n    instances:\n      - address: 10.0.0.1:3306\n      - address: 10.0.0.2:3306\n",
			"clusters[0].agent.ca_file", `"/nonexistent/ca.pem"`, ErrFile},
		{"agent cert without key", "clusters", "clusters:\n  - name: app1\n    agent:\n      cert_file: " + hook + "\n    instances:\n      - address: 10.0.0.1:3306\n      - address: 10.0.0.2:3306\n",
			"clusters[0].agent.cert_file", "go together", ErrConflict},
		{"agent token world-readable", "clusters", "clusters:\n  - name: app1\n    agent:\n      token_file: " + notExec + "\n    instances:\n      - address: 10.0.0.1:3306\n      - address: 10.0.0.2:3306\n",
			"clusters[0].agent.token_file", notExec, ErrSecretPerm},
		{"failure threshold", "detector", "detector:\n  failure_threshold: 0\n", "detector.failure_threshold", `"0": must be at least 1`, ErrInvalidValue},
		{"failure threshold type", "detector", "detector:\n  failure_threshold: many\n", "detector.failure_threshold", `"many": must be an integer`, ErrInvalidValue},
		{"quorum word", "detector", "detector:\n  quorum: most\n", "detector.quorum", `"most"`, ErrInvalidValue},
		{"quorum zero", "detector", "detector:\n  quorum: 0\n", "detector.quorum", `"0"`, ErrInvalidValue},
		{"bool type", "detector", "detector:\n  replica_check: maybe\n", "detector.replica_check", `"maybe": must be true or false`, ErrInvalidValue},
		{"log level", "log", "log:\n  level: loud\n", "log.level", `"loud"`, ErrInvalidValue},
		{"log format", "log", "log:\n  format: xml\n", "log.format", `"xml"`, ErrInvalidValue},
		{"raft addr no port", "node", "node:\n  raft_addr: 10.0.0.1\n", "node.raft_addr", `"10.0.0.1"`, ErrInvalidValue},
		{"gossip addr port range", "node", "node:\n  gossip_addr: h:70000\n", "node.gossip_addr", `"h:70000": port must be a number in 1..65535`, ErrInvalidValue},
		{"http addr port zero", "node", "node:\n  http_addr: h:0\n", "node.http_addr", `"h:0"`, ErrInvalidValue},
		{"http addr no host", "node", "node:\n  http_addr: :8080\n", "node.http_addr", `":8080": missing host`, ErrInvalidValue},
		{"gossip join", "node", "node:\n  gossip_join: [h1:7946, h2]\n", "node.gossip_join[1]", `"h2"`, ErrInvalidValue},
		{"bootstrap malformed", "node", "node:\n  bootstrap: [c1]\n", "node.bootstrap[0]", `"c1"`, ErrInvalidValue},
		{"bootstrap dup id", "node", "node:\n  bootstrap: [c1=h:1, c1=h:2]\n", "node.bootstrap[1]", `"c1=h:2": id "c1" already used`, ErrDuplicate},
		{"raft profile", "node", "node:\n  raft_profile: space\n", "node.raft_profile", `"space": must be lan or wan`, ErrInvalidValue},
		{"tls cert without key", "api", "api:\n  tls_cert: /x.pem\n", "api.tls_key", `required when api.tls_cert is set (/x.pem)`, ErrMissing},
		{"tls key without cert", "api", "api:\n  tls_key: /x.key\n", "api.tls_cert", `required when api.tls_key is set (/x.key)`, ErrMissing},
		{"raft tls partial", "node", "node:\n  raft_tls_cert: /r.pem\n  raft_tls_ca: /ca.pem\n", "node.raft_tls_key", `set: node.raft_tls_cert, node.raft_tls_ca`, ErrMissing},
		{"cluster name empty", "clusters", "clusters:\n  - instances: [{address: 'h:1'}, {address: 'h:2'}]\n", "clusters[0].name", "cluster name is required", ErrMissing},
		{"cluster name chars", "clusters", "clusters:\n  - name: app 1\n    instances: [{address: 'h:1'}, {address: 'h:2'}]\n", "clusters[0].name", `"app 1": may contain only`, ErrInvalidValue},
		{"cluster name dup", "clusters", "clusters:\n  - name: a\n    instances: [{address: 'h:1'}, {address: 'h:2'}]\n  - name: a\n    instances: [{address: 'h:1'}, {address: 'h:2'}]\n", "clusters[1].name", `"a": cluster name already used by clusters[0]`, ErrDuplicate},
		{"one instance", "clusters", inst("h:1"), "clusters[0].instances", `"1": cluster "app1" needs at least 2 instances`, ErrInvalidValue},
		{"instance dup", "clusters", inst("h:1", "H:1"), "clusters[0].instances[1].address", `"H:1": already listed`, ErrDuplicate},
		{"instance bad port", "clusters", inst("h:1", "h:x"), "clusters[0].instances[1].address", `"h:x"`, ErrInvalidValue},
		{"instance no address", "clusters", inst("h:1", "''"), "clusters[0].instances[1].address", "instance address is required", ErrMissing},
		{"candidate and no_master", "clusters", inst("h:1", "h:2") + "        candidate_master: true\n        no_master: true\n", "clusters[0].instances[1].no_master", "both set", ErrConflict},
		{"replication mode", "clusters", strings.Replace(inst("h:1", "h:2"), "    instances", "    replication_mode: binlog\n    instances", 1), "clusters[0].replication_mode", `"binlog": must be gtid or file`, ErrInvalidValue},
		{"negative max lag", "clusters", strings.Replace(inst("h:1", "h:2"), "    instances", "    max_lag: -1s\n    instances", 1), "clusters[0].max_lag", `"-1s"`, ErrInvalidValue},
		{"hook missing", "clusters", strings.Replace(inst("h:1", "h:2"), "    instances", "    hooks:\n      ip_failover: /nonexistent/hook\n    instances", 1), "clusters[0].hooks.ip_failover", `"/nonexistent/hook": cluster "app1": no such file`, ErrFile},
		{"hook not executable", "clusters", strings.Replace(inst("h:1", "h:2"), "    instances", "    hooks:\n      shutdown: "+notExec+"\n    instances", 1), "clusters[0].hooks.shutdown", `cluster "app1": not executable`, ErrFile},
		{"hook is a dir", "clusters", strings.Replace(inst("h:1", "h:2"), "    instances", "    hooks:\n      report: "+dir+"\n    instances", 1), "clusters[0].hooks.report", "not a regular file", ErrFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := baseParts(hook)
			parts[tt.part] = tt.yaml
			path := writeFile(t, dir, "q.yaml", parts.render(), 0o644)
			_, _, err := Load(path, LoadOptions{Environ: []string{}})
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if !errors.Is(err, tt.sentinel) {
				t.Errorf("err = %v, want %v", err, tt.sentinel)
			}
			want := path + ": " + tt.key + ": " + tt.value
			found := false
			for _, p := range Problems(err) {
				if strings.HasPrefix(p.Error(), path+": "+tt.key+": ") && strings.Contains(p.Error(), tt.value) {
					found = true
				}
			}
			if !found {
				t.Errorf("no problem like %q in:\n%v", want, err)
			}
		})
	}
}

func TestValidate_ReportsAllProblems(t *testing.T) {
	path := writeFile(t, t.TempDir(), "q.yaml", "detector:\n  probe_interval: 3x\n  quorum: most\nlog:\n  format: xml\nclusters:\n  - name: a\n    instances: [{address: 'h'}]\n", 0o644)
	_, _, err := Load(path, LoadOptions{Environ: []string{}})
	probs := Problems(err)
	if len(probs) != 5 {
		t.Fatalf("got %d problems, want 5 (interval, quorum, format, instance count, address):\n%v", len(probs), err)
	}
	for _, p := range probs {
		if strings.Contains(p.Error(), "\n") {
			t.Errorf("problem spans lines: %q", p.Error())
		}
	}
}

func TestValidate_ValidBase(t *testing.T) {
	dir := t.TempDir()
	hook := writeFile(t, dir, "hook.sh", "#!/bin/sh\n", 0o755)
	path := writeFile(t, dir, "q.yaml", baseParts(hook+" --extra-arg").render(), 0o644)
	cfg, _, err := Load(path, LoadOptions{Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.ValidateForRun(); err != nil {
		t.Fatalf("ValidateForRun: %v", err)
	}
}

func TestValidateForRun_Errors(t *testing.T) {
	tests := []struct {
		name string
		node Node
		want []string
	}{
		{"nothing set", Node{RaftProfile: "lan"}, []string{"node.id: required", "node.raft_addr: required", "node.http_addr: required", "node.data_dir: required"}},
		{"bootstrap without self", Node{ID: "c3", RaftAddr: "h:1", HTTPAddr: "h:2", DataDir: "/d", RaftProfile: "lan", Bootstrap: []string{"c1=h:1", "c2=h:2"}},
			[]string{`node.bootstrap: "c1=h:1,c2=h:2": does not include this node's id "c3"`}},
		{"gossip key missing", Node{ID: "c1", RaftAddr: "h:1", HTTPAddr: "h:2", DataDir: "/d", RaftProfile: "lan", GossipKeyFile: "/nonexistent.key"},
			[]string{`node.gossip_key_file: "/nonexistent.key"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			cfg.Node = tt.node
			err := cfg.ValidateForRun()
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), "run.yaml: "+w) {
					t.Errorf("err = %v, want containing %q", err, "run.yaml: "+w)
				}
			}
			if err := cfg.Validate(); err != nil {
				t.Errorf("Validate (not for run) = %v, want nil", err)
			}
		})
	}
}

// validConfig is a minimal valid Config built in code, as another package's
// test would build one.
func validConfig() *Config {
	return &Config{
		Source:   "run.yaml",
		Node:     Node{RaftProfile: "lan"},
		Detector: Detector{ProbeInterval: 1, ProbeTimeout: 1, FailureThreshold: 1, Quorum: "majority", FreshnessWindow: 1},
		Recovery: Recovery{AntiFlap: 1, MaxReplicaLag: 1, ApplyTimeout: 1, SalvageTimeout: 1, SalvageConnectTimeout: 1, Fence: FenceRequired, LeaseTTL: time.Second},
		Log:      Log{Level: "info", Format: "text"},
		Clusters: []Cluster{{Name: "a", ReplicationMode: "gtid", Instances: []Instance{{Address: "h:1"}, {Address: "h:2"}}}},
	}
}

func TestValidate_WildcardAdvertisedAddress(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:7000", "[::]:7000"} {
		c := Default()
		c.Source = "q.yaml"
		c.Node.HTTPAddr = addr
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), `node.http_addr: "`+addr+`"`) || !strings.Contains(err.Error(), "wildcard") {
			t.Errorf("http_addr %q: err = %v, want wildcard refusal naming the key", addr, err)
		}
	}
}

func TestValidateForRun_GossipNeededForSeveralControllers(t *testing.T) {
	c := Default()
	c.Source = "q.yaml"
	c.Node.ID, c.Node.RaftAddr, c.Node.HTTPAddr, c.Node.DataDir = "c1", "127.0.0.1:7000", "127.0.0.1:8080", "/tmp/q"
	c.Node.Bootstrap = []string{"c1=127.0.0.1:7000", "c2=127.0.0.2:7000"}
	c.Clusters = []Cluster{{Name: "a", Instances: []Instance{{Address: "127.0.0.1:3306"}, {Address: "127.0.0.1:3307"}}}}
	err := c.ValidateForRun()
	if err == nil || !strings.Contains(err.Error(), "q.yaml: node.gossip_addr") {
		t.Fatalf("err = %v, want node.gossip_addr required", err)
	}
}

func TestValidate_GossipAddrMustBeIP(t *testing.T) {
	c := Default()
	c.Source = "q.yaml"
	c.Node.GossipAddr = "ctl1.example:7946"
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), `node.gossip_addr: "ctl1.example:7946"`) || !strings.Contains(err.Error(), "IP address") {
		t.Fatalf("err = %v, want gossip_addr refused as a host name", err)
	}
	c.Node.GossipAddr = "10.0.0.1:7946"
	if err := c.Validate(); err != nil {
		t.Fatalf("IP gossip_addr: %v", err)
	}
}

func TestValidate_LeaseTTLLongerThanTheProbeIntervalWithAgents(t *testing.T) {
	for _, tc := range []struct {
		name     string
		agent    string
		interval time.Duration
		wantErr  bool
	}{
		{"agents, ttl equal to the interval", "http://h:7080", time.Second, true},
		{"agents, ttl longer", "http://h:7080", 500 * time.Millisecond, false},
		{"no agents: no lease renewed", "", 2 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			c.Detector.ProbeInterval = tc.interval
			c.Clusters[0].Instances[0].Agent = tc.agent
			err := c.Validate()
			if got := err != nil && strings.Contains(err.Error(), "recovery.lease_ttl") && strings.Contains(err.Error(), "detector.probe_interval"); got != tc.wantErr {
				t.Errorf("Validate() = %v, want a lease_ttl error: %t", err, tc.wantErr)
			}
		})
	}
}
