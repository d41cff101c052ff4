package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	path := f.write(t, "agent.yaml", "agent:\n  listen: 10.0.1.20:7080\n  binlog_dir: mysql\n  token_file: agent.token\n  pid_file: /run/mysqld/mysqld.pid\n")
	a, err := loadAgent(path, []string{})
	if err != nil {
		t.Fatal(err)
	}
	want := Agent{Listen: "10.0.1.20:7080", BinlogDir: f.binlogs, BinlogIndex: f.index, TokenFile: f.token,
		PIDFile: "/run/mysqld/mysqld.pid", Token: "tok-123"}
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
