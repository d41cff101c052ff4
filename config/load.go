package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// DefaultMHAFile is MHA's global defaults file; the CLI passes it as
// LoadOptions.MHADefaultFile when it exists, as MHA itself reads it.
const DefaultMHAFile = "/etc/masterha_default.cnf"

// EnvPrefix starts every environment override: QUORUMHA_NODE_ID,
// QUORUMHA_DETECTOR_PROBE_INTERVAL, QUORUMHA_CLUSTERS_APP1_PASSWORD, ...
const EnvPrefix = "QUORUMHA_"

// LoadOptions are the inputs of Load besides the file, injected so tests do
// not touch the process environment or /etc.
type LoadOptions struct {
	// Environ is the environment as KEY=VALUE lines; nil means os.Environ().
	Environ []string
	// MHADefaultFile is an MHA global defaults .cnf applied under every
	// imported MHA cluster; "" means none.
	MHADefaultFile string
}

// defaults returns the built-in value of every global key that has one,
// keyed by dotted path. Durations are strings so they go through the same
// parsing as values from files and the environment.
func defaults() map[string]any {
	return map[string]any{
		"node.raft_profile":          "lan",
		"detector.probe_interval":    "500ms",
		"detector.probe_timeout":     "500ms",
		"detector.failure_threshold": 3,
		"detector.quorum":            "majority",
		"detector.replica_check":     true,
		"detector.freshness_window":  "5s",
		"api.leader_contact_window":  "5s",
		"detector.replica_heartbeat": "1s",
		// 1h, not MHA's 8h: see Recovery.AntiFlap.
		"recovery.anti_flap":               "1h",
		"recovery.max_replica_lag":         "30s",
		"recovery.apply_timeout":           "60s",
		"recovery.salvage_timeout":         "10s",
		"recovery.salvage_connect_timeout": "500ms",
		"recovery.check_repl_delay":        true,
		"recovery.fence":                   "required",
		"recovery.lease_ttl":               "2s",
		"recovery.lease_drift":             "500ms",
		"log.level":                        "info",
		"log.format":                       "text",
	}
}

// Load reads a config file (YAML, TOML or JSON by extension, or an MHA
// .cnf/.conf/.ini imported as one cluster), applies defaults and QUORUMHA_*
// environment overrides, imports mha_configs, reads password and token
// files, and validates the result. Warnings are returned even when the
// error is not nil. The error joins every problem found (see Problems).
func Load(path string, opts LoadOptions) (*Config, []Warning, error) {
	env := opts.Environ
	if env == nil {
		env = os.Environ()
	}
	l := &loader{path: path, dir: filepath.Dir(path), p: &problems{file: path}}

	var mhaDefaults *MHAFile
	if opts.MHADefaultFile != "" {
		f, err := parseMHAFile(opts.MHADefaultFile)
		if err != nil {
			return nil, nil, err
		}
		mhaDefaults = f
	}

	v := viper.New()
	for k, val := range defaults() {
		v.SetDefault(k, val)
	}
	var mhaCluster *Cluster
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".yaml", ".yml", ".toml", ".json":
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, fileErr(path, err)
		}
		if err := readViper(v, strings.TrimPrefix(ext, "."), data); err != nil {
			return nil, nil, &FieldError{File: path, Message: err.Error(), Err: ErrSyntax}
		}
	case ".cnf", ".conf", ".ini":
		f, err := parseMHAFile(path)
		if err != nil {
			return nil, nil, err
		}
		cl, warns, err := ImportMHA(f, mhaDefaults, clusterNameFromFile(path))
		l.warnings = append(l.warnings, warns...)
		if err != nil {
			return nil, l.warnings, err
		}
		mhaCluster = &cl
	default:
		return nil, nil, &FieldError{File: path, Value: ext, Message: "unsupported config format (want .yaml, .yml, .toml, .json, .cnf, .conf or .ini)", Err: ErrFormat}
	}

	clusterEnv := l.applyEnv(v, env)
	settings := v.AllSettings()
	l.normalize(settings, reflect.TypeFor[Config](), "")
	cfg := &Config{}
	l.decode(settings, cfg)
	cfg.Source = path
	for i := range cfg.Clusters {
		cfg.Clusters[i].Source = path
	}
	for i, m := range cfg.MHAConfigs {
		cfg.MHAConfigs[i] = l.resolve(m)
		l.importMHA(cfg, cfg.MHAConfigs[i], fmt.Sprintf("mha_configs[%d]", i), mhaDefaults)
	}
	if mhaCluster != nil {
		cfg.Clusters = append(cfg.Clusters, *mhaCluster)
	}
	for i := range cfg.Clusters {
		if cfg.Clusters[i].ReplicationMode == "" {
			cfg.Clusters[i].ReplicationMode = ReplicationGTID
		}
	}
	markInlineSecrets(cfg)
	l.applyClusterEnv(cfg, clusterEnv)
	l.readSecrets(cfg)
	if err := cfg.Validate(); err != nil {
		// A key that already failed to parse was zeroed; do not report it
		// a second time as out of range.
		bad := map[string]bool{}
		for _, e := range l.p.errs {
			var fe *FieldError
			if errors.As(e, &fe) {
				bad[fe.Key] = true
			}
		}
		for _, e := range Problems(err) {
			var fe *FieldError
			if errors.As(e, &fe) && bad[fe.Key] {
				continue
			}
			l.p.errs = append(l.p.errs, e)
		}
	}
	if err := l.p.err(); err != nil {
		return nil, l.warnings, err
	}
	return cfg, l.warnings, nil
}

// Default returns a Config holding only the built-in defaults (no node
// identity, no clusters), decoded exactly as Load decodes them, for tests
// and tools that build a config in code.
func Default() *Config {
	settings := map[string]any{}
	for k, v := range defaults() {
		section, key, _ := strings.Cut(k, ".")
		m, ok := settings[section].(map[string]any)
		if !ok {
			m = map[string]any{}
			settings[section] = m
		}
		m[key] = v
	}
	l := &loader{p: &problems{}}
	l.normalize(settings, reflect.TypeFor[Config](), "")
	cfg := &Config{}
	l.decode(settings, cfg)
	return cfg
}

// loader carries the state of one Load call.
type loader struct {
	path     string
	dir      string
	p        *problems
	warnings []Warning
	envKeys  map[string]string // dotted key -> env var that set it
}

// readViper parses data with viper, turning a panic in a third-party parser
// into an error: a malformed config must never crash the controller.
func readViper(v *viper.Viper, typ string, data []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cannot parse %s: %v", typ, r)
		}
	}()
	v.SetConfigType(typ)
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return fmt.Errorf("cannot parse %s: %w", typ, err)
	}
	return nil
}

// fileErr reports a config file that cannot be read as one FieldError.
func fileErr(path string, err error) error {
	return &FieldError{File: path, Message: unwrapPathErr(err).Error(), Err: ErrFile}
}

func clusterNameFromFile(path string) string {
	base := filepath.Base(path)
	return strings.TrimSuffix(base, filepath.Ext(base))
}

func parseMHAFile(path string) (*MHAFile, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fileErr(path, err)
	}
	defer fh.Close()
	return ParseMHA(fh, path)
}

func (l *loader) importMHA(cfg *Config, path, key string, defaults *MHAFile) {
	f, err := parseMHAFile(path)
	if err != nil {
		l.p.errs = append(l.p.errs, fmt.Errorf("%s: %s: %w", l.path, key, err))
		return
	}
	cl, warns, err := ImportMHA(f, defaults, clusterNameFromFile(path))
	l.warnings = append(l.warnings, warns...)
	if err != nil {
		l.p.errs = append(l.p.errs, Problems(err)...)
		return
	}
	cfg.Clusters = append(cfg.Clusters, cl)
}

// resolve makes a relative path relative to the config file's directory, so
// a config works the same whatever the current directory is.
func (l *loader) resolve(p string) string { return resolveIn(l.dir, p) }

func resolveIn(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// resolveHook resolves a hook's program (its first word) relative to dir;
// MHA hooks may carry arguments after it.
func resolveHook(dir, h string) string {
	fields := strings.Fields(h)
	if len(fields) == 0 || filepath.IsAbs(fields[0]) {
		return h
	}
	rest := strings.TrimPrefix(strings.TrimSpace(h), fields[0])
	return resolveIn(dir, fields[0]) + rest
}

// fileOf names where a key's value came from: the env var when the
// environment set it, else the config file.
func (l *loader) fileOf(key string) string {
	if name, ok := l.envKeys[key]; ok {
		return "$" + name
	}
	return l.path
}

// normalize walks the settings against the schema: it reports and removes
// unknown keys, and parses durations (so "3x" is reported with its key and
// an int like 5 is refused for lacking a unit instead of meaning 5ns).
func (l *loader) normalize(m map[string]any, t reflect.Type, prefix string) {
	fields := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if tag := f.Tag.Get("mapstructure"); tag != "" && tag != "-" {
			fields[tag] = f
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		val := m[k]
		key := joinKey(prefix, k)
		f, ok := fields[strings.ToLower(k)]
		if !ok {
			l.p.addIn(l.fileOf(key), key, "", ErrUnknownKey, "unknown key")
			delete(m, k)
			continue
		}
		m[k] = l.normalizeValue(val, f.Type, key)
	}
}

func (l *loader) normalizeValue(val any, t reflect.Type, key string) any {
	if val == nil {
		return nil
	}
	switch {
	case t == reflect.TypeFor[time.Duration]():
		s := strings.TrimSpace(fmt.Sprint(val))
		d, err := time.ParseDuration(s)
		if err != nil {
			l.p.addIn(l.fileOf(key), key, s, ErrInvalidValue, "invalid duration (want e.g. 500ms, 3s, 1h)")
			def, _ := time.ParseDuration(fmt.Sprint(defaults()[key]))
			return def
		}
		return d
	case t.Kind() == reflect.Struct:
		sub, ok := val.(map[string]any)
		if !ok {
			l.p.addIn(l.fileOf(key), key, fmt.Sprint(val), ErrInvalidValue, "must be a mapping of keys")
			return nil
		}
		l.normalize(sub, t, key)
		return sub
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		rv := reflect.ValueOf(val)
		if rv.Kind() != reflect.Slice {
			l.p.addIn(l.fileOf(key), key, fmt.Sprint(val), ErrInvalidValue, "must be a list")
			return nil
		}
		out := make([]any, 0, rv.Len())
		for i := 0; i < rv.Len(); i++ {
			out = append(out, l.normalizeValue(rv.Index(i).Interface(), t.Elem(), fmt.Sprintf("%s[%d]", key, i)))
		}
		return out
	}
	return val
}

func joinKey(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// decode fills out (a *Config or *agentFile) from normalized settings; type
// errors become FieldErrors naming the key.
func (l *loader) decode(settings map[string]any, out any) {
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result:           out,
		ErrorUnused:      true,
		WeaklyTypedInput: true,
		TagName:          "mapstructure",
		DecodeHook:       mapstructure.StringToSliceHookFunc(","),
	})
	if err != nil {
		l.p.errs = append(l.p.errs, fmt.Errorf("%s: %w", l.path, err))
		return
	}
	if err := dec.Decode(settings); err != nil {
		for _, e := range Problems(err) {
			var de *mapstructure.DecodeError
			if errors.As(e, &de) {
				value, msg := describeDecodeErr(errors.Unwrap(de))
				l.p.addIn(l.fileOf(de.Name()), de.Name(), value, ErrInvalidValue, "%s", msg)
				continue
			}
			l.p.addIn(l.path, "", "", ErrInvalidValue, "%v", e)
		}
	}
}

// describeDecodeErr turns a mapstructure type error into the offending
// value and a message in words.
func describeDecodeErr(err error) (value, msg string) {
	var pe *mapstructure.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprint(pe.Value), "must be " + kindWords(pe.Expected.Kind())
	}
	var ue *mapstructure.UnconvertibleTypeError
	if errors.As(err, &ue) {
		return fmt.Sprint(ue.Value), "must be " + kindWords(ue.Expected.Kind())
	}
	if err == nil {
		return "", "invalid value"
	}
	return "", err.Error()
}

func kindWords(k reflect.Kind) string {
	switch k {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping of keys"
	}
	return "a " + k.String()
}

// readSecrets resolves relative paths and reads password and token files
// into their Secret fields.
func (l *loader) readSecrets(cfg *Config) {
	cfg.Node.GossipKeyFile = l.resolve(cfg.Node.GossipKeyFile)
	l.checkGossipKeyPerm(cfg.Node.GossipKeyFile)
	for _, f := range []*string{&cfg.API.TLSCert, &cfg.API.TLSKey, &cfg.API.TLSCA,
		&cfg.Node.RaftTLSCert, &cfg.Node.RaftTLSKey, &cfg.Node.RaftTLSCA} {
		*f = l.resolve(*f)
	}
	l.checkKeyPerm("api.tls_key", cfg.API.TLSKey)
	l.checkKeyPerm("node.raft_tls_key", cfg.Node.RaftTLSKey)
	if cfg.API.TokenFile != "" && cfg.API.Token == "" {
		cfg.API.TokenFile = l.resolve(cfg.API.TokenFile)
		tok, err := readSecretFile(cfg.API.TokenFile)
		if err != nil {
			l.p.addIn(l.fileOf("api.token_file"), "api.token_file", cfg.API.TokenFile, fileSentinel(err), "%v", err)
		}
		cfg.API.Token = tok
	}
	if cfg.API.ReadTokenFile != "" {
		cfg.API.ReadTokenFile = l.resolve(cfg.API.ReadTokenFile)
		tok, err := readSecretFile(cfg.API.ReadTokenFile)
		if err != nil {
			l.p.addIn(l.fileOf("api.read_token_file"), "api.read_token_file", cfg.API.ReadTokenFile, fileSentinel(err), "%v", err)
		}
		cfg.API.ReadToken = tok
	}
	for i := range cfg.Clusters {
		cl := &cfg.Clusters[i]
		file := cl.Source
		key := fmt.Sprintf("clusters[%d]", i)
		// Paths in an imported MHA file are relative to that file.
		base := l.dir
		if file != "" {
			base = filepath.Dir(file)
		}
		l.readAgentSecrets(file, key, cl)
		for _, tp := range []*string{&cl.TLS.CA, &cl.TLS.Cert, &cl.TLS.Key} {
			*tp = resolveIn(base, *tp)
		}
		h := &cl.Hooks
		for _, hp := range []*string{&h.IPFailover, &h.IPOnlineChange, &h.Shutdown, &h.Report, &h.SecondaryCheck} {
			*hp = resolveHook(base, *hp)
		}
		for _, s := range []struct {
			name   string
			secret *Secret
			path   *string
		}{
			{"password", &cl.Password, &cl.PasswordFile},
			{"repl_password", &cl.ReplPassword, &cl.ReplPasswordFile},
		} {
			if *s.path == "" {
				continue
			}
			if *s.secret != "" {
				l.p.addIn(file, key+"."+s.name+"_file", *s.path, ErrConflict,
					"cluster %q: %s and %s_file are both set; use one", cl.Name, s.name, s.name)
				continue
			}
			*s.path = l.resolve(*s.path)
			val, err := readSecretFile(*s.path)
			if err != nil {
				l.p.addIn(file, key+"."+s.name+"_file", *s.path, fileSentinel(err), "cluster %q: %v", cl.Name, err)
				continue
			}
			*s.secret = val
		}
	}
}

// readSecretFile reads a password or token file, trimming the trailing
// newline editors add. An empty file is refused: it would silently mean
// "no password" or "no auth".
func readSecretFile(path string) (Secret, error) {
	if err := checkSecretPerm(path); err != nil {
		return "", err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", unwrapPathErr(err)
	}
	s := strings.TrimSpace(string(data))
	if s == "" {
		return "", errors.New("file is empty")
	}
	return Secret(s), nil
}
