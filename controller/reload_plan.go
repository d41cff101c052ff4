package controller

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/quorumha/quorumha/config"
)

// keyChange is one config key whose value differs between the running
// config and the file just read.
type keyChange struct {
	// Key is the dotted key, with list entries named by their name or
	// address: "detector.probe_interval", "clusters[app1].hooks.report".
	Key string
	// Old and New are printable values; secrets print masked, so a changed
	// password shows as "****" -> "****".
	Old, New string
	// Note says what a reload does or does not do with the key: for an
	// applied key, what keeps its start-up value; for the others, why a
	// restart is needed.
	Note string
}

// reloadPlan is what a reload does with a new config: the changes applied
// to the running controller, and the ones that wait for a restart.
type reloadPlan struct {
	Apply   []keyChange
	Restart []keyChange
}

// planReload compares the running config with a new one, key by key. It is
// pure: applying the plan is the caller's job.
func planReload(old, next *config.Config) reloadPlan {
	var plan reloadPlan
	for _, ch := range diffConfig(old, next) {
		if note, ok := liveKey(ch.Key); ok {
			ch.Note = note
			plan.Apply = append(plan.Apply, ch)
			continue
		}
		ch.Note = restartReason(ch.Key)
		plan.Restart = append(plan.Restart, ch)
	}
	return plan
}

// liveKey reports whether a reload applies key to the running controller,
// with a note on what it does not reach.
func liveKey(key string) (string, bool) {
	const keepsStart = "; lease renewals, the API's replica view and recovery's connections keep the start-up value until a restart"
	switch key {
	case "log.level":
		return "applied to every logger at once", true
	case "detector.probe_interval":
		return "applied from each cluster's next probe" + keepsStart, true
	case "detector.probe_timeout":
		return "applied from the next probe (kept connections are replaced)" + keepsStart, true
	case "detector.failure_threshold":
		return "applied from the next probe", true
	case "detector.freshness_window":
		return "applied from the next assessment", true
	}
	if strings.HasPrefix(key, "clusters[") && strings.Contains(key, "].hooks.") {
		return "applied to failovers, switchovers and checks that start from now on; one already running keeps its hooks", true
	}
	return "", false
}

// restartReason says why a reload cannot apply key.
func restartReason(key string) string {
	switch {
	case strings.HasPrefix(key, "node."):
		return "needs a restart: node identity, data_dir, raft, gossip and listeners are set up at start"
	case strings.HasPrefix(key, "api."):
		return "needs a restart: the HTTP server, its tokens and TLS are set up at start"
	case key == "log.format":
		return "needs a restart: the log handler is built at start"
	case strings.HasPrefix(key, "clusters"), strings.HasPrefix(key, "mha_configs"):
		return "clusters and instances live in the replicated state: change them with quorumha cluster|instance (this file only seeded it); local secrets, TLS and agent credentials need a restart"
	case strings.HasPrefix(key, "recovery."):
		return "needs a restart: the recovery runner and the lease keeper read it at start"
	default:
		return "needs a restart: read at start"
	}
}

// diffConfig lists every key whose value differs, in a stable order. A list
// entry present on one side only is one change ("clusters[app2]": absent ->
// present), not one per key inside it.
func diffConfig(old, next *config.Config) []keyChange {
	a, b := flatten(old), flatten(next)
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out []keyChange
	var whole []string // entries added or removed as a whole
	for _, k := range keys {
		if slices.ContainsFunc(whole, func(p string) bool { return strings.HasPrefix(k, p+".") }) {
			continue
		}
		va, ina := a[k]
		vb, inb := b[k]
		if ina && inb && reflect.DeepEqual(va.raw, vb.raw) {
			continue
		}
		if va.entry || vb.entry {
			whole = append(whole, k)
		}
		out = append(out, keyChange{Key: k, Old: va.show(ina), New: vb.show(inb)})
	}
	return out
}

// leaf is one flattened value: raw for comparison, text for the log.
type leaf struct {
	raw   any
	text  string
	entry bool // a list entry's presence marker
}

func (l leaf) show(present bool) string {
	if !present {
		return "(absent)"
	}
	return l.text
}

// flatten maps every key of cfg to its value, keyed as in the config file
// (mapstructure names). Fields that are not keys (source) are left out;
// secrets read from files (api.token) are in, masked.
func flatten(cfg *config.Config) map[string]leaf {
	out := map[string]leaf{}
	if cfg != nil {
		walk(out, "", reflect.ValueOf(*cfg))
	}
	return out
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	secretType   = reflect.TypeFor[config.Secret]()
)

func walk(out map[string]leaf, key string, v reflect.Value) {
	switch {
	case v.Type() == secretType:
		out[key] = leaf{raw: v.String(), text: fmt.Sprint(v.Interface())}
	case v.Type() == durationType:
		out[key] = leaf{raw: v.Int(), text: time.Duration(v.Int()).String()}
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			out[key] = leaf{raw: nil, text: "(unset)"}
			return
		}
		walk(out, key, v.Elem())
	case v.Kind() == reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name := fieldKey(f)
			if name == "" {
				continue
			}
			walk(out, join(key, name), v.Field(i))
		}
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct:
		for i := range v.Len() {
			e := v.Index(i)
			k := fmt.Sprintf("%s[%s]", key, entryID(e, i))
			out[k] = leaf{raw: true, text: "present", entry: true}
			walk(out, k, e)
		}
	default:
		out[key] = leaf{raw: v.Interface(), text: fmt.Sprint(v.Interface())}
	}
}

// fieldKey is a field's config key: its mapstructure name, or for the
// values read from files (mapstructure "-") its JSON name; "" for fields
// that are not config at all.
func fieldKey(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
	if name == "-" || name == "" {
		name, _, _ = strings.Cut(f.Tag.Get("json"), ",")
	}
	if name == "-" || name == "" || name == "source" {
		return ""
	}
	return name
}

// entryID names a list entry by its name or address, else its position.
func entryID(e reflect.Value, i int) string {
	for _, f := range []string{"Name", "Address"} {
		if fv := e.FieldByName(f); fv.IsValid() && fv.Kind() == reflect.String && fv.String() != "" {
			return fv.String()
		}
	}
	return fmt.Sprint(i)
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// applyLive returns a copy of running with the keys a reload applies taken
// from next: what the controller runs with once the plan is applied, and
// what the next reload compares against. Keys that need a restart keep
// running's values, so they are reported again until the restart.
func applyLive(running, next *config.Config) *config.Config {
	out := *running
	out.Clusters = slices.Clone(running.Clusters)
	out.Log.Level = next.Log.Level
	out.Detector.ProbeInterval = next.Detector.ProbeInterval
	out.Detector.ProbeTimeout = next.Detector.ProbeTimeout
	out.Detector.FailureThreshold = next.Detector.FailureThreshold
	out.Detector.FreshnessWindow = next.Detector.FreshnessWindow
	for i, c := range out.Clusters {
		if n, ok := next.Cluster(c.Name); ok {
			out.Clusters[i].Hooks = n.Hooks
		}
	}
	return &out
}
