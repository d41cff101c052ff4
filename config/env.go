package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// envLeaf is one global key that an environment variable can override.
type envLeaf struct {
	key   string // dotted key, e.g. detector.probe_interval
	slice bool   // comma-separated list
}

// envLeaves lists every overridable global key, derived from the schema so
// a new key is overridable without further code. Clusters are a list and are
// overridden by name instead (see clusterEnvKeys).
func envLeaves() map[string]envLeaf {
	out := map[string]envLeaf{}
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("mapstructure")
			if tag == "" || tag == "-" || tag == "clusters" {
				continue
			}
			key := joinKey(prefix, tag)
			if f.Type.Kind() == reflect.Struct && f.Type.PkgPath() == t.PkgPath() {
				walk(f.Type, key)
				continue
			}
			name := EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
			out[name] = envLeaf{key: key, slice: f.Type.Kind() == reflect.Slice}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return out
}

// clusterEnvKeys are the per-cluster keys the environment may set, mostly so
// passwords need not be written to disk: QUORUMHA_CLUSTERS_<NAME>_<KEY>.
// Longer suffixes come first so REPL_PASSWORD is not read as PASSWORD.
func clusterEnvKeys() []string {
	return []string{"REPL_PASSWORD_FILE", "REPL_PASSWORD", "PASSWORD_FILE", "REPL_USER", "SSH_USER", "PASSWORD", "USER"}
}

// clusterEnv is one QUORUMHA_CLUSTERS_* variable waiting for the clusters
// to be assembled.
type clusterEnv struct {
	name, envName, key, value string
}

// envClusterName is how a cluster name appears in a variable name: upper
// case, anything but letters and digits as '_'.
func envClusterName(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9'):
			return r
		}
		return '_'
	}, name)
}

// applyEnv sets viper overrides from QUORUMHA_* variables and returns the
// cluster variables for later. Variables under a known section that match
// no key are warned about (likely typos); others are left alone, since
// QUORUMHA_* may also configure CLI commands.
func (l *loader) applyEnv(v interface{ Set(string, any) }, env []string) []clusterEnv {
	leaves := envLeaves()
	l.envKeys = map[string]string{}
	var clusters []clusterEnv
	sorted := append([]string(nil), env...)
	sort.Strings(sorted)
	for _, kv := range sorted {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		if leaf, ok := leaves[name]; ok {
			l.envKeys[leaf.key] = name
			if leaf.slice {
				v.Set(leaf.key, splitList(value))
			} else {
				v.Set(leaf.key, value)
			}
			continue
		}
		rest := strings.TrimPrefix(name, EnvPrefix)
		if rest == "API_TOKEN" {
			clusters = append(clusters, clusterEnv{envName: name, key: "API_TOKEN", value: value})
			continue
		}
		if cl, ok := strings.CutPrefix(rest, "CLUSTERS_"); ok {
			if ce, ok := parseClusterEnv(cl); ok {
				ce.envName, ce.value = name, value
				clusters = append(clusters, ce)
				continue
			}
		}
		for _, section := range []string{"NODE_", "API_", "DETECTOR_", "RECOVERY_", "LOG_", "CLUSTERS_"} {
			if strings.HasPrefix(rest, section) {
				l.warnings = append(l.warnings, Warning{File: "environment", Key: name,
					Message: "matches no config key; ignored"})
				break
			}
		}
	}
	return clusters
}

func parseClusterEnv(s string) (clusterEnv, bool) {
	for _, k := range clusterEnvKeys() {
		if name, ok := strings.CutSuffix(s, "_"+k); ok && name != "" {
			return clusterEnv{name: name, key: k}, true
		}
	}
	return clusterEnv{}, false
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// applyClusterEnv applies QUORUMHA_CLUSTERS_<NAME>_<KEY> and
// QUORUMHA_API_TOKEN once all clusters (including imported MHA ones) are
// known. An environment password replaces the file's password_file (and
// the reverse), since the environment is an override, not a conflict.
func (l *loader) applyClusterEnv(cfg *Config, envs []clusterEnv) {
	for _, e := range envs {
		if e.key == "API_TOKEN" {
			cfg.API.Token = Secret(strings.TrimSpace(e.value))
			continue
		}
		matched := false
		for i := range cfg.Clusters {
			cl := &cfg.Clusters[i]
			if envClusterName(cl.Name) != e.name {
				continue
			}
			matched = true
			switch e.key {
			case "USER":
				cl.User = e.value
			case "PASSWORD":
				cl.Password, cl.PasswordFile = Secret(e.value), ""
			case "PASSWORD_FILE":
				cl.Password, cl.PasswordFile = "", e.value
			case "REPL_USER":
				cl.ReplUser = e.value
			case "REPL_PASSWORD":
				cl.ReplPassword, cl.ReplPasswordFile = Secret(e.value), ""
			case "REPL_PASSWORD_FILE":
				cl.ReplPassword, cl.ReplPasswordFile = "", e.value
			case "SSH_USER":
				cl.SSHUser = e.value
			}
		}
		if !matched {
			l.warnings = append(l.warnings, Warning{File: "environment", Key: e.envName,
				Message: fmt.Sprintf("no cluster named like %q; ignored", e.name)})
		}
	}
}
