package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/viper"
)

// AgentEnvPrefix starts every environment override of the agent config:
// QUORUMHA_AGENT_LISTEN, QUORUMHA_AGENT_BINLOG_DIR, ...
const AgentEnvPrefix = EnvPrefix + "AGENT_"

// Agent is the config of the binlog salvage agent (`quorumha agent`), a
// small file of its own under a top-level agent: key: the agent runs on
// database hosts, where the controller's config does not belong.
type Agent struct {
	// Listen is the address to serve on (host:port), e.g. 10.0.1.20:7080.
	Listen string `mapstructure:"listen" json:"listen"`
	// BinlogDir is the directory of the server's binlog files; the agent
	// needs read access to it only.
	BinlogDir string `mapstructure:"binlog_dir" json:"binlog_dir"`
	// BinlogIndex is the binlog index file; LoadAgent fills in the single
	// *.index file of BinlogDir when it is not set.
	BinlogIndex string `mapstructure:"binlog_index" json:"binlog_index"`
	// TokenFile holds the bearer token clients must send (mode 0600/0400).
	TokenFile string `mapstructure:"token_file" json:"token_file,omitempty"`
	// TLSCert and TLSKey serve HTTPS.
	TLSCert string `mapstructure:"tls_cert" json:"tls_cert,omitempty"`
	TLSKey  string `mapstructure:"tls_key" json:"tls_key,omitempty"`
	// ClientCA, with TLSCert and TLSKey, requires client certificates
	// signed by it (mutual TLS).
	ClientCA string `mapstructure:"client_ca" json:"client_ca,omitempty"`
	// PIDFile is the database server's pid file, so the agent can say
	// whether the server still runs.
	PIDFile string `mapstructure:"pid_file" json:"pid_file,omitempty"`
	// ReachUser is the account the agent's reachability check (GET
	// /v1/reach) logs in as with no password after the server's greeting;
	// the account need not exist (a denied login is the usual answer).
	// Finishing the login keeps the checks from counting against the
	// server's max_connect_errors, which would block this host. Default
	// quorumha_reach.
	ReachUser string `mapstructure:"reach_user" json:"reach_user,omitempty"`
	// InsecureNoAuth allows neither a token nor mutual TLS: tests and demos
	// only, since anyone reaching the port could read every binlog.
	InsecureNoAuth bool `mapstructure:"insecure_no_auth" json:"insecure_no_auth,omitempty"`
	// Token is read from TokenFile.
	Token Secret `mapstructure:"-" json:"token,omitempty"`
	// Fence turns on the quorum lease and self-fencing; without it the
	// agent answers leases but never fences.
	Fence AgentFence `mapstructure:"fence" json:"fence,omitzero"`
}

// AgentFence is the agent.fence section: how the agent reaches its own
// server to fence it when the master's quorum lease lapses. Fencing needs
// an account with READ_ONLY ADMIN (read_only), CONNECTION ADMIN and
// PROCESS (kill every client session) and RELOAD (the global read lock,
// FTWRL) on MariaDB 10.11, SUPER in place of the first two on MySQL.
type AgentFence struct {
	// Socket is the server's unix socket (preferred: it does not depend on
	// the network, and allows unix_socket authentication).
	Socket string `mapstructure:"socket" json:"socket,omitempty"`
	// Address is host:port, when the agent cannot use the socket.
	Address string `mapstructure:"address" json:"address,omitempty"`
	// User is the fencing account.
	User string `mapstructure:"user" json:"user,omitempty"`
	// PasswordFile holds its password (mode 0600/0400); optional with
	// unix_socket authentication.
	PasswordFile string `mapstructure:"password_file" json:"password_file,omitempty"`
	// StateFile keeps the lease's state (armed, fenced) across restarts,
	// written atomically; its directory must exist.
	StateFile string `mapstructure:"state_file" json:"state_file,omitempty"`
	// CheckInterval is how often a fenced agent checks the server is still
	// read-only (a restarted mysqld comes back writable); default 250ms.
	CheckInterval time.Duration `mapstructure:"check_interval" json:"check_interval,omitempty"`
	// Password is read from PasswordFile.
	Password Secret `mapstructure:"-" json:"password,omitempty"`
}

// Enabled reports whether the section is set at all.
func (f AgentFence) Enabled() bool { return f != AgentFence{} }

// DefaultAgentFenceCheckInterval is agent.fence.check_interval's default.
const DefaultAgentFenceCheckInterval = 250 * time.Millisecond

// agentFile is the agent config file's schema: everything under agent:.
type agentFile struct {
	Agent Agent `mapstructure:"agent"`
}

// LoadAgent reads an agent config (YAML, TOML or JSON by extension),
// applies QUORUMHA_AGENT_* environment overrides, reads the token file and
// validates the result. The error joins every problem found (see
// Problems), each naming the file, key and value.
func LoadAgent(path string) (Agent, error) {
	return loadAgent(path, os.Environ())
}

func loadAgent(path string, env []string) (Agent, error) {
	l := &loader{path: path, dir: filepath.Dir(path), p: &problems{file: path}, envKeys: map[string]string{}}
	v := viper.New()
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".yaml", ".yml", ".toml", ".json":
		data, err := os.ReadFile(path)
		if err != nil {
			return Agent{}, fileErr(path, err)
		}
		if err := readViper(v, strings.TrimPrefix(ext, "."), data); err != nil {
			return Agent{}, &FieldError{File: path, Message: err.Error(), Err: ErrSyntax}
		}
	default:
		return Agent{}, &FieldError{File: path, Value: ext, Message: "unsupported agent config format (want .yaml, .yml, .toml or .json)", Err: ErrFormat}
	}
	l.applyAgentEnv(v, env)
	settings := v.AllSettings()
	l.normalize(settings, reflect.TypeFor[agentFile](), "")
	var f agentFile
	l.decode(settings, &f)
	a := f.Agent
	l.validateAgent(&a)
	if err := l.p.err(); err != nil {
		return Agent{}, err
	}
	return a, nil
}

// agentEnvKeys maps QUORUMHA_AGENT_<KEY> to agent.<key> for every key of
// the schema, and QUORUMHA_AGENT_<SECTION>_<KEY> to agent.<section>.<key>
// for the keys of a nested section (agent.fence).
func agentEnvKeys() map[string]string {
	out := map[string]string{}
	var walk func(t reflect.Type, env, key string)
	walk = func(t reflect.Type, env, key string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("mapstructure")
			if tag == "" || tag == "-" {
				continue
			}
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]() {
				walk(f.Type, env+strings.ToUpper(tag)+"_", key+tag+".")
				continue
			}
			out[env+strings.ToUpper(tag)] = key + tag
		}
	}
	walk(reflect.TypeFor[Agent](), AgentEnvPrefix, "agent.")
	return out
}

// applyAgentEnv sets overrides from QUORUMHA_AGENT_* variables. One that
// matches no key is an error, like an unknown key in the file: a typo must
// not leave the agent listening where nobody expects.
func (l *loader) applyAgentEnv(v *viper.Viper, env []string) {
	keys := agentEnvKeys()
	sorted := append([]string(nil), env...)
	sort.Strings(sorted)
	for _, kv := range sorted {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, AgentEnvPrefix) {
			continue
		}
		key, ok := keys[name]
		if !ok {
			l.p.addIn("$"+name, name, "", ErrUnknownKey, "matches no agent config key")
			continue
		}
		l.envKeys[key] = name
		v.Set(key, value)
	}
}

// validateAgent resolves relative paths against the config file's
// directory, reads the token and checks every key.
func (l *loader) validateAgent(a *Agent) {
	add := func(key, value string, sentinel error, format string, args ...any) {
		l.p.addIn(l.fileOf(key), key, value, sentinel, format, args...)
	}
	for _, p := range []*string{&a.BinlogDir, &a.BinlogIndex, &a.TokenFile, &a.TLSCert, &a.TLSKey, &a.ClientCA, &a.PIDFile} {
		*p = l.resolve(*p)
	}

	switch {
	case strings.TrimSpace(a.Listen) == "":
		add("agent.listen", "", ErrMissing, "required: the address the controllers reach the agent on (e.g. 10.0.1.20:7080)")
	default:
		if err := checkHostPort(a.Listen); err != nil {
			add("agent.listen", a.Listen, ErrInvalidValue, "%s", msgOf(err))
		}
	}

	if a.ReachUser != "" {
		if err := checkReachUser(a.ReachUser); err != nil {
			add("agent.reach_user", a.ReachUser, ErrInvalidValue, "%v", err)
		}
	}

	dirOK := false
	if a.BinlogDir == "" {
		add("agent.binlog_dir", "", ErrMissing, "required: the directory of the server's binlog files")
	} else if st, err := os.Stat(a.BinlogDir); err != nil {
		add("agent.binlog_dir", a.BinlogDir, ErrFile, "%v", unwrapPathErr(err))
	} else if !st.IsDir() {
		add("agent.binlog_dir", a.BinlogDir, ErrInvalidValue, "not a directory")
	} else {
		dirOK = true
	}
	switch {
	case a.BinlogIndex != "":
		l.checkAgentFile("agent.binlog_index", a.BinlogIndex)
	case dirOK:
		l.defaultBinlogIndex(a)
	}

	if a.TokenFile != "" {
		tok, err := readSecretFile(a.TokenFile)
		if err != nil {
			add("agent.token_file", a.TokenFile, fileSentinel(err), "%v", err)
		}
		a.Token = tok
	}
	if (a.TLSCert == "") != (a.TLSKey == "") {
		add("agent.tls_cert", a.TLSCert, ErrConflict, "agent.tls_cert and agent.tls_key must be set together")
	}
	if a.ClientCA != "" && (a.TLSCert == "" || a.TLSKey == "") {
		add("agent.client_ca", a.ClientCA, ErrConflict, "mutual TLS needs agent.tls_cert and agent.tls_key too")
	}
	for _, f := range []struct{ key, path string }{
		{"agent.tls_cert", a.TLSCert}, {"agent.tls_key", a.TLSKey}, {"agent.client_ca", a.ClientCA},
	} {
		if f.path != "" {
			l.checkAgentFile(f.key, f.path)
		}
	}
	mtls := a.TLSCert != "" && a.TLSKey != "" && a.ClientCA != ""
	if a.TokenFile == "" && !mtls && !a.InsecureNoAuth {
		add("agent.token_file", "", ErrMissing,
			"the agent serves binlogs, so it needs authentication: set agent.token_file, or agent.tls_cert, agent.tls_key and agent.client_ca (mutual TLS); agent.insecure_no_auth: true is for tests only")
	}
	l.validateAgentFence(&a.Fence)
}

// validateAgentFence checks agent.fence when it is set.
func (l *loader) validateAgentFence(f *AgentFence) {
	if !f.Enabled() {
		return
	}
	add := func(key, value string, sentinel error, format string, args ...any) {
		l.p.addIn(l.fileOf(key), key, value, sentinel, format, args...)
	}
	for _, p := range []*string{&f.Socket, &f.PasswordFile, &f.StateFile} {
		*p = l.resolve(*p)
	}
	switch {
	case f.Socket != "" && f.Address != "":
		add("agent.fence.address", f.Address, ErrConflict, "agent.fence.socket and agent.fence.address are both set; use one (the socket is preferred)")
	case f.Socket == "" && f.Address == "":
		add("agent.fence.socket", "", ErrMissing, "required with agent.fence: the server's unix socket (or agent.fence.address host:port)")
	case f.Address != "":
		if err := checkHostPort(f.Address); err != nil {
			add("agent.fence.address", f.Address, ErrInvalidValue, "%s", msgOf(err))
		}
	}
	if strings.TrimSpace(f.User) == "" {
		add("agent.fence.user", "", ErrMissing, "required with agent.fence: the account that fences the server")
	}
	if f.PasswordFile != "" {
		pw, err := readSecretFile(f.PasswordFile)
		if err != nil {
			add("agent.fence.password_file", f.PasswordFile, fileSentinel(err), "%v", err)
		}
		f.Password = pw
	}
	if f.StateFile == "" {
		add("agent.fence.state_file", "", ErrMissing, "required with agent.fence: where the agent keeps whether it is armed or fenced across restarts")
	} else if st, err := os.Stat(filepath.Dir(f.StateFile)); err != nil {
		add("agent.fence.state_file", f.StateFile, ErrFile, "its directory: %v", unwrapPathErr(err))
	} else if !st.IsDir() {
		add("agent.fence.state_file", f.StateFile, ErrFile, "%s is not a directory", filepath.Dir(f.StateFile))
	} else if st, err := os.Stat(f.StateFile); err == nil && !st.Mode().IsRegular() {
		add("agent.fence.state_file", f.StateFile, ErrFile, "not a regular file")
	}
	switch {
	case f.CheckInterval == 0:
		f.CheckInterval = DefaultAgentFenceCheckInterval
	case f.CheckInterval < 10*time.Millisecond || f.CheckInterval > time.Minute:
		add("agent.fence.check_interval", f.CheckInterval.String(), ErrInvalidValue, "want 10ms..1m")
	}
}

// checkAgentFile reports a file key whose file is missing or not a
// regular file.
func (l *loader) checkAgentFile(key, path string) {
	st, err := os.Stat(path)
	switch {
	case err != nil:
		l.p.addIn(l.fileOf(key), key, path, ErrFile, "%v", unwrapPathErr(err))
	case !st.Mode().IsRegular():
		l.p.addIn(l.fileOf(key), key, path, ErrFile, "not a regular file")
	}
}

// defaultBinlogIndex sets BinlogIndex to the single *.index file of
// BinlogDir. A datadir often holds the relay log's index too, so two files
// are an error asking for the key rather than a guess.
func (l *loader) defaultBinlogIndex(a *Agent) {
	matches, err := filepath.Glob(filepath.Join(a.BinlogDir, "*.index"))
	if err != nil {
		l.p.addIn(l.fileOf("agent.binlog_dir"), "agent.binlog_dir", a.BinlogDir, ErrInvalidValue, "%v", err)
		return
	}
	key := "agent.binlog_index"
	switch len(matches) {
	case 0:
		l.p.addIn(l.fileOf(key), key, "", ErrMissing, "no *.index file in agent.binlog_dir %s: set agent.binlog_index (the server's log_bin_index)", a.BinlogDir)
	case 1:
		a.BinlogIndex = matches[0]
	default:
		names := make([]string, len(matches))
		for i, m := range matches {
			names[i] = filepath.Base(m)
		}
		l.p.addIn(l.fileOf(key), key, "", ErrMissing, "agent.binlog_dir %s holds several *.index files (%s): set agent.binlog_index to the binlog's (log_bin_index)",
			a.BinlogDir, strings.Join(names, ", "))
	}
}

// maxReachUserLen is MariaDB's limit on an account name (MySQL's is 32;
// a longer name is denied there, which the check accepts).
const maxReachUserLen = 80

// checkReachUser accepts an account name the handshake can carry: 1 to 80
// characters, none of them a control character (the name is sent
// NUL-terminated).
func checkReachUser(u string) error {
	if n := utf8.RuneCountInString(u); n > maxReachUserLen {
		return fmt.Errorf("%d characters; an account name has at most %d", n, maxReachUserLen)
	}
	for _, r := range u {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return fmt.Errorf("contains %q; an account name has no control characters", r)
		}
	}
	return nil
}
