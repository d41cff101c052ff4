package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// agentFixture is a binlog dir with one index file and a 0600 token file.
type agentFixture struct {
	dir, binlogs, index, token string
}

func newAgentFixture(t *testing.T) agentFixture {
	t.Helper()
	dir := t.TempDir()
	f := agentFixture{dir: dir, binlogs: filepath.Join(dir, "mysql")}
	f.index = writeFile(t, f.binlogs, "mysql-bin.index", "./mysql-bin.000001\n", 0o644)
	f.token = writeFile(t, dir, "agent.token", "tok-123\n", 0o600)
	return f
}

func (f agentFixture) write(t *testing.T, name, content string) string {
	t.Helper()
	return writeFile(t, f.dir, name, content, 0o644)
}

func TestLoadAgent_Valid(t *testing.T) {
	f := newAgentFixture(t)
	path := f.write(t, "agent.yaml", "agent:\n  listen: 10.0.1.20:7080\n  binlog_dir: mysql\n  token_file: agent.token\n  pid_file: /run/mysqld/mysqld.pid\n  reach_user: ha_check\n")
	a, err := loadAgent(path, []string{})
	if err != nil {
		t.Fatal(err)
	}
	want := Agent{Listen: "10.0.1.20:7080", BinlogDir: f.binlogs, BinlogIndex: f.index, TokenFile: f.token,
		PIDFile: "/run/mysqld/mysqld.pid", ReachUser: "ha_check", Token: "tok-123"}
	if a != want {
		t.Errorf("got %+v\nwant %+v", a, want)
	}
	if strings.Contains(a.Token.String(), "tok-123") {
		t.Error("the token prints")
	}
}

func TestLoadAgent_TOMLJSONAndEnv(t *testing.T) {
	f := newAgentFixture(t)
	toml := f.write(t, "agent.toml", "[agent]\nlisten = \"127.0.0.1:7080\"\nbinlog_dir = \""+f.binlogs+"\"\ninsecure_no_auth = true\n")
	json := f.write(t, "agent.json", `{"agent": {"listen": "127.0.0.1:7080", "binlog_dir": "`+f.binlogs+`", "insecure_no_auth": true}}`)
	for _, p := range []string{toml, json} {
		a, err := loadAgent(p, []string{"QUORUMHA_AGENT_LISTEN=127.0.0.1:7099", "QUORUMHA_AGENT_TOKEN_FILE=" + f.token, "QUORUMHA_OTHER=x"})
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if a.Listen != "127.0.0.1:7099" || a.Token.Reveal() != "tok-123" || !a.InsecureNoAuth {
			t.Errorf("%s: %+v", p, a)
		}
	}
	// An environment value is named by its variable in errors.
	_, err := loadAgent(toml, []string{"QUORUMHA_AGENT_LISTEN=nope", "QUORUMHA_AGENT_LISTN=x"})
	for _, want := range []string{`$QUORUMHA_AGENT_LISTEN: agent.listen: "nope"`, "$QUORUMHA_AGENT_LISTN: QUORUMHA_AGENT_LISTN: matches no agent config key"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	}
}

// TestLoadAgent_Refusals checks that each problem names the file, the key
// and the value.
func TestLoadAgent_Refusals(t *testing.T) {
	f := newAgentFixture(t)
	loose := writeFile(t, f.dir, "loose.token", "tok\n", 0o600)
	if err := os.Chmod(loose, 0o644); err != nil {
		t.Fatal(err)
	}
	notDir := writeFile(t, f.dir, "plain", "x", 0o644)
	twoIdx := filepath.Join(f.dir, "two")
	writeFile(t, twoIdx, "mysql-bin.index", "", 0o644)
	writeFile(t, twoIdx, "relay-bin.index", "", 0o644)
	noIdx := filepath.Join(f.dir, "empty")
	if err := os.Mkdir(noIdx, 0o755); err != nil {
		t.Fatal(err)
	}
	ok := "  listen: 127.0.0.1:7080\n  binlog_dir: " + f.binlogs + "\n"
	tests := []struct {
		name     string
		yaml     string
		sentinel error
		want     []string // the first one right after "file: "
	}{
		{"missing binlog_dir", "agent:\n  listen: 127.0.0.1:7080\n  token_file: " + f.token + "\n", ErrMissing,
			[]string{"agent.binlog_dir: required"}},
		{"binlog_dir does not exist", "agent:\n  listen: 127.0.0.1:7080\n  binlog_dir: /nope/mysql\n  insecure_no_auth: true\n", ErrFile,
			[]string{`agent.binlog_dir: "/nope/mysql": no such file or directory`}},
		{"binlog_dir not a dir", "agent:\n  listen: 127.0.0.1:7080\n  binlog_dir: " + notDir + "\n  insecure_no_auth: true\n", ErrInvalidValue,
			[]string{`agent.binlog_dir: "` + notDir + `": not a directory`}},
		{"no index", "agent:\n  listen: 127.0.0.1:7080\n  binlog_dir: " + noIdx + "\n  insecure_no_auth: true\n", ErrMissing,
			[]string{"agent.binlog_index: no *.index file in agent.binlog_dir " + noIdx}},
		{"two indexes", "agent:\n  listen: 127.0.0.1:7080\n  binlog_dir: " + twoIdx + "\n  insecure_no_auth: true\n", ErrMissing,
			[]string{"agent.binlog_index: agent.binlog_dir " + twoIdx + " holds several *.index files (mysql-bin.index, relay-bin.index)"}},
		{"missing index file", "agent:\n" + ok + "  binlog_index: /nope/x.index\n  insecure_no_auth: true\n", ErrFile,
			[]string{`agent.binlog_index: "/nope/x.index": no such file`}},
		{"no auth", "agent:\n" + ok, ErrMissing,
			[]string{"agent.token_file: the agent serves binlogs, so it needs authentication", "agent.insecure_no_auth"}},
		{"world-readable token", "agent:\n" + ok + "  token_file: " + loose + "\n", ErrSecretPerm,
			[]string{`agent.token_file: "` + loose + `": ` + ErrSecretPerm.Error(), "mode 0644"}},
		{"unknown key", "agent:\n" + ok + "  insecure_no_auth: true\n  tokn_file: x\n", ErrUnknownKey,
			[]string{"agent.tokn_file: unknown key"}},
		{"unknown section", "agent:\n" + ok + "  insecure_no_auth: true\nnode:\n  id: c1\n", ErrUnknownKey,
			[]string{"node: unknown key"}},
		{"missing listen", "agent:\n  binlog_dir: " + f.binlogs + "\n  insecure_no_auth: true\n", ErrMissing,
			[]string{"agent.listen: required"}},
		{"bad listen", "agent:\n  listen: 7080\n  binlog_dir: " + f.binlogs + "\n  insecure_no_auth: true\n", ErrInvalidValue,
			[]string{`agent.listen: "7080": want host:port`}},
		{"bad tls file", "agent:\n" + ok + "  tls_cert: /nope/agent.pem\n  tls_key: " + f.token + "\n  client_ca: " + f.token + "\n", ErrFile,
			[]string{`agent.tls_cert: "/nope/agent.pem": no such file or directory`}},
		{"cert without key", "agent:\n" + ok + "  token_file: " + f.token + "\n  tls_cert: " + f.token + "\n", ErrConflict,
			[]string{"agent.tls_cert: ", "must be set together"}},
		{"client_ca without cert", "agent:\n" + ok + "  token_file: " + f.token + "\n  client_ca: " + f.token + "\n", ErrConflict,
			[]string{"agent.client_ca: ", "needs agent.tls_cert"}},
		{"reach_user too long", "agent:\n" + ok + "  insecure_no_auth: true\n  reach_user: " + strings.Repeat("r", 81) + "\n", ErrInvalidValue,
			[]string{`agent.reach_user: "` + strings.Repeat("r", 81) + `": 81 characters; an account name has at most 80`}},
		{"reach_user control character", "agent:\n" + ok + "  insecure_no_auth: true\n  reach_user: \"a\\tb\"\n", ErrInvalidValue,
			[]string{`agent.reach_user: "a\tb": contains '\t'`}},
		{"bad bool", "agent:\n" + ok + "  insecure_no_auth: maybe\n", ErrInvalidValue,
			[]string{`agent.insecure_no_auth: "maybe": must be true or false`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := f.write(t, "agent.yaml", tt.yaml)
			_, err := loadAgent(path, []string{})
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("err = %v, want %v", err, tt.sentinel)
			}
			// The first part must follow the file name: "file: key: ...".
			for i, w := range tt.want {
				if i == 0 {
					w = path + ": " + w
				}
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want containing %q", err, w)
				}
			}
		})
	}
}

func TestLoadAgent_FileProblems(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadAgent(filepath.Join(dir, "none.yaml")); !errors.Is(err, ErrFile) {
		t.Errorf("missing file: %v", err)
	}
	p := writeFile(t, dir, "a.cnf", "", 0o644)
	if _, err := LoadAgent(p); !errors.Is(err, ErrFormat) {
		t.Errorf(".cnf: %v", err)
	}
	p = writeFile(t, dir, "a.yaml", "agent: [\n", 0o644)
	if _, err := LoadAgent(p); !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), p) {
		t.Errorf("bad yaml: %v", err)
	}
}

func TestLoadAgent_Fence(t *testing.T) {
	f := newAgentFixture(t)
	pw := writeFile(t, f.dir, "fence.pw", "fence-pass\n", 0o600)
	loose := writeFile(t, f.dir, "loose.pw", "x\n", 0o600)
	if err := os.Chmod(loose, 0o644); err != nil {
		t.Fatal(err)
	}
	base := "agent:\n  listen: 127.0.0.1:7080\n  binlog_dir: mysql\n  token_file: agent.token\n"

	// Valid, with relative paths and the default check interval.
	path := f.write(t, "agent.yaml", base+"  fence:\n    socket: run/mysqld.sock\n    user: fencer\n    password_file: fence.pw\n    state_file: fence.json\n")
	a, err := loadAgent(path, []string{})
	if err != nil {
		t.Fatal(err)
	}
	want := AgentFence{Socket: filepath.Join(f.dir, "run/mysqld.sock"), User: "fencer", PasswordFile: pw,
		StateFile: filepath.Join(f.dir, "fence.json"), CheckInterval: DefaultAgentFenceCheckInterval, Password: "fence-pass"}
	if a.Fence != want {
		t.Errorf("fence = %+v\nwant %+v", a.Fence, want)
	}
	// No section: disabled.
	path = f.write(t, "agent.yaml", base)
	if a, err := loadAgent(path, []string{}); err != nil || a.Fence.Enabled() {
		t.Errorf("no fence section: %+v, %v", a.Fence, err)
	}
	// Environment overrides reach the nested section.
	a, err = loadAgent(path, []string{"QUORUMHA_AGENT_FENCE_ADDRESS=127.0.0.1:3306", "QUORUMHA_AGENT_FENCE_USER=root",
		"QUORUMHA_AGENT_FENCE_STATE_FILE=" + filepath.Join(f.dir, "s.json"), "QUORUMHA_AGENT_FENCE_CHECK_INTERVAL=1s"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Fence.Address != "127.0.0.1:3306" || a.Fence.User != "root" || a.Fence.CheckInterval != time.Second || a.Fence.StateFile != filepath.Join(f.dir, "s.json") {
		t.Errorf("env fence = %+v", a.Fence)
	}
	_, err = loadAgent(path, []string{"QUORUMHA_AGENT_FENCE_CHECK_INTERVAL=soon", "QUORUMHA_AGENT_FENCE_USER=root",
		"QUORUMHA_AGENT_FENCE_SOCKET=/s", "QUORUMHA_AGENT_FENCE_STATE_FILE=/tmp/s.json"})
	if w := `$QUORUMHA_AGENT_FENCE_CHECK_INTERVAL: agent.fence.check_interval: "soon": invalid duration`; err == nil || !strings.Contains(err.Error(), w) {
		t.Errorf("err = %v, want %q", err, w)
	}

	tests := []struct {
		name     string
		fence    string
		sentinel error
		want     string
	}{
		{"socket and address", "    socket: /s\n    address: 127.0.0.1:3306\n    user: u\n    state_file: s.json\n", ErrConflict,
			`agent.fence.address: "127.0.0.1:3306": agent.fence.socket and agent.fence.address are both set`},
		{"neither socket nor address", "    user: u\n    state_file: s.json\n", ErrMissing, "agent.fence.socket: required with agent.fence"},
		{"bad address", "    address: db1\n    user: u\n    state_file: s.json\n", ErrInvalidValue, `agent.fence.address: "db1": want host:port`},
		{"no user", "    socket: /s\n    state_file: s.json\n", ErrMissing, "agent.fence.user: required"},
		{"no state file", "    socket: /s\n    user: u\n", ErrMissing, "agent.fence.state_file: required"},
		{"state dir missing", "    socket: /s\n    user: u\n    state_file: /nope/s.json\n", ErrFile, `agent.fence.state_file: "/nope/s.json": its directory`},
		{"loose password file", "    socket: /s\n    user: u\n    state_file: s.json\n    password_file: " + loose + "\n", ErrSecretPerm,
			`agent.fence.password_file: "` + loose + `"`},
		{"check interval too short", "    socket: /s\n    user: u\n    state_file: s.json\n    check_interval: 1ms\n", ErrInvalidValue,
			`agent.fence.check_interval: "1ms": want 10ms..1m`},
		{"unknown key", "    socket: /s\n    user: u\n    state_file: s.json\n    pasword_file: x\n", ErrUnknownKey, "agent.fence.pasword_file: unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := f.write(t, "agent.yaml", base+"  fence:\n"+tt.fence)
			_, err := loadAgent(path, []string{})
			if !errors.Is(err, tt.sentinel) || !strings.Contains(err.Error(), path+": "+tt.want) {
				t.Fatalf("err = %v, want %v and %q", err, tt.sentinel, path+": "+tt.want)
			}
		})
	}
}
