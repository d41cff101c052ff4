package controller

import (
	"cmp"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/quorumha/quorumha/config"
	"github.com/quorumha/quorumha/detector"
	"github.com/quorumha/quorumha/fsm"
)

// The clusters a controller watches come from the replicated state; its
// config file only bootstraps it (the first leader of a state that has
// never held a cluster definition writes its file's clusters) and supplies
// what stays local: the secrets a definition refers to (or, without a
// reference, the file's own), hooks, database TLS and agent credentials.
// Until the state is bootstrapped, each controller watches its file's
// clusters; from then on only the state's, whatever any file says.

// Origins of a resolved cluster.
const (
	originState = "state" // defined in the replicated state
	originFile  = "file"  // only in this controller's file, not seeded yet
)

// resolvedCluster is one cluster as this controller uses it.
type resolvedCluster struct {
	config.Cluster
	TLS    *tls.Config
	TLSErr error
	Origin string
	// LocalIndex is the cluster's index in the file (-1: not in it).
	LocalIndex int
}

// configured reports whether addr is one of the cluster's instances.
func (c resolvedCluster) configured(addr string) bool {
	return slices.ContainsFunc(c.Instances, func(in config.Instance) bool { return strings.EqualFold(in.Address, addr) })
}

// resolvedTopology is an immutable view: replaced whole on every change.
type resolvedTopology struct {
	clusters []resolvedCluster // sorted by name
	// problems are what could not be resolved (unreadable password files,
	// unset variables), for the log.
	problems []string
}

func (r *resolvedTopology) cluster(name string) (resolvedCluster, bool) {
	for _, c := range r.clusters {
		if c.Name == name {
			return c, true
		}
	}
	return resolvedCluster{}, false
}

// configured reports whether addr is an instance of the cluster.
func (r *resolvedTopology) configured(cluster, addr string) bool {
	c, ok := r.cluster(cluster)
	return ok && c.configured(addr)
}

// anyInstance reports whether addr is an instance of any cluster.
func (r *resolvedTopology) anyInstance(addr string) bool {
	return slices.ContainsFunc(r.clusters, func(c resolvedCluster) bool { return c.configured(addr) })
}

// names returns the cluster names, sorted.
func (r *resolvedTopology) names() []string {
	out := make([]string, 0, len(r.clusters))
	for _, c := range r.clusters {
		out = append(out, c.Name)
	}
	return out
}

// secretSource reads what a definition's password references name.
type secretSource struct {
	readFile func(string) ([]byte, error)
	getenv   func(string) string
}

var osSecrets = secretSource{readFile: os.ReadFile, getenv: os.Getenv}

// secret resolves one password reference: the file, the variable, or else
// the local file's own secret (inline, its own file, or its environment).
func (s secretSource) secret(cluster, key, file, env string, local config.Secret, problems *[]string) config.Secret {
	switch {
	case file != "":
		b, err := s.readFile(file)
		if err != nil {
			*problems = append(*problems, fmt.Sprintf("cluster %q: %s_file %s: %v (using this controller's own %s, if any)", cluster, key, file, err, key))
			return local
		}
		return config.Secret(strings.TrimSpace(string(b)))
	case env != "":
		v := s.getenv(env)
		if v == "" {
			*problems = append(*problems, fmt.Sprintf("cluster %q: %s_env %s is not set here (using this controller's own %s, if any)", cluster, key, env, key))
			return local
		}
		return config.Secret(v)
	}
	return local
}

// resolveTopology merges the replicated definitions with this controller's
// file. It is pure but for the secret source, so it is table-tested.
func resolveTopology(cfg *config.Config, defs []fsm.ClusterDef, removed []string, sec secretSource) *resolvedTopology {
	out := &resolvedTopology{}
	local := map[string]int{}
	for i, c := range cfg.Clusters {
		local[c.Name] = i
	}
	tlsOf := func(i int) (*tls.Config, error) {
		if i < 0 {
			return nil, nil
		}
		return cfg.ClusterTLS(i)
	}
	for _, d := range defs {
		i, ok := local[d.Name]
		if !ok {
			i = -1
		}
		rc := resolvedCluster{Origin: originState, LocalIndex: i}
		if i >= 0 {
			rc.Cluster = cfg.Clusters[i]
		} else {
			rc.Source = "replicated state"
		}
		rc.TLS, rc.TLSErr = tlsOf(i)
		rc.Name, rc.User, rc.ReplUser = d.Name, d.User, d.ReplUser
		rc.SSHUser, rc.MasterBinlogDir, rc.MaxLag, rc.AutoAdd = d.SSHUser, d.MasterBinlogDir, d.MaxLag, d.AutoAdd
		rc.ReplicationMode = cmp.Or(d.ReplicationMode, config.ReplicationGTID)
		rc.Password = sec.secret(d.Name, "password", d.PasswordFile, d.PasswordEnv, rc.Password, &out.problems)
		rc.ReplPassword = sec.secret(d.Name, "repl_password", d.ReplPasswordFile, d.ReplPasswordEnv, rc.ReplPassword, &out.problems)
		rc.PasswordFile, rc.ReplPasswordFile = d.PasswordFile, d.ReplPasswordFile
		if i < 0 && d.PasswordFile == "" && d.PasswordEnv == "" {
			out.problems = append(out.problems, fmt.Sprintf("cluster %q: the replicated state names no password_file or password_env, "+
				"and this controller's file has no such cluster: it logs in with an empty password (set one with `quorumha cluster set %s --password-file ...`)", d.Name, d.Name))
		}
		rc.Instances = make([]config.Instance, 0, len(d.Instances))
		for _, in := range d.Instances {
			rc.Instances = append(rc.Instances, config.Instance{Address: in.Address, Zone: in.Zone,
				CandidateMaster: in.CandidateMaster, NoMaster: in.NoMaster, IgnoreFail: in.IgnoreFail,
				CheckReplDelay: in.CheckReplDelay, Agent: in.Agent})
		}
		out.clusters = append(out.clusters, rc)
	}
	for i, c := range cfg.Clusters {
		if !stateEmpty(defs, removed) {
			break // bootstrapped: the state alone says what is watched
		}
		rc := resolvedCluster{Cluster: c, Origin: originFile, LocalIndex: i}
		rc.TLS, rc.TLSErr = tlsOf(i)
		out.clusters = append(out.clusters, rc)
	}
	slices.SortFunc(out.clusters, func(a, b resolvedCluster) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// topoSource keeps this controller's resolved topology current: refresh
// re-resolves it when the replicated definitions changed; readers take the
// latest immutable view.
type topoSource struct {
	cfg   *config.Config
	state *fsm.FSM
	log   *slog.Logger
	sec   secretSource

	cur atomic.Pointer[resolvedTopology]

	mu          sync.Mutex // serialises refresh
	lastDefs    []fsm.ClusterDef
	lastRemoved []string
	resolved    bool
}

func newTopoSource(cfg *config.Config, state *fsm.FSM, logger *slog.Logger) *topoSource {
	t := &topoSource{cfg: cfg, state: state, log: logger, sec: osSecrets}
	t.refresh()
	return t
}

// current returns the latest resolved topology.
func (t *topoSource) current() *resolvedTopology { return t.cur.Load() }

// refresh re-resolves the topology when the replicated definitions changed
// since the last call, logs what differs from this controller's file (the
// state wins), and returns the current view.
func (t *topoSource) refresh() *resolvedTopology {
	t.mu.Lock()
	defer t.mu.Unlock()
	defs, removed := t.state.Topology()
	if t.resolved && reflect.DeepEqual(defs, t.lastDefs) && slices.Equal(removed, t.lastRemoved) {
		return t.cur.Load()
	}
	t.resolved, t.lastDefs, t.lastRemoved = true, defs, removed
	r := resolveTopology(t.cfg, defs, removed, t.sec)
	t.cur.Store(r)
	for _, p := range r.problems {
		t.log.Warn("topology: "+p, "pkg", "topology")
	}
	for _, d := range DiffTopology(t.cfg.Clusters, defs, removed) {
		t.log.Warn("config file differs from the replicated state; the state wins", "pkg", "topology", "difference", d)
	}
	return r
}

// fileTopology is the topology of cfg's file alone (tests, and tools that
// have no replicated state).
func fileTopology(cfg *config.Config) func() *resolvedTopology {
	r := resolveTopology(cfg, nil, nil, osSecrets)
	return func() *resolvedTopology { return r }
}

// knownInstance reports whether an address is one of the instances of the
// current topology: gossiped verdicts about anything else are dropped.
func (t *topoSource) knownInstance(addr string) bool { return t.current().anyInstance(addr) }

// instanceAddrs lists a cluster's instance addresses in order.
func instanceAddrs(rc resolvedCluster) []string {
	out := make([]string, 0, len(rc.Instances))
	for _, in := range rc.Instances {
		out = append(out, in.Address)
	}
	return out
}

// clusterSpec is what the detector watches of a resolved cluster.
func clusterSpec(rc resolvedCluster, master string) detector.ClusterSpec {
	addrs := instanceAddrs(rc)
	var replicas []string
	for _, a := range addrs {
		if !strings.EqualFold(a, master) {
			replicas = append(replicas, a)
		}
	}
	return detector.ClusterSpec{Name: rc.Name, Master: master, Replicas: replicas, Instances: addrs, TLS: rc.TLS,
		User: rc.User, Password: rc.Password.Reveal(), Agents: agentURLs(rc.Cluster)}
}

// topologyDiff is how this controller's file differs from the replicated
// topology, for GET /v1/topology and `quorumha status`.
func (c *Controller) topologyDiff() []string {
	defs, removed := c.state.Topology()
	return DiffTopology(c.cfg.Clusters, defs, removed)
}

// agentOf names the agent beside a cluster's instance in the current
// topology ("" when none).
func (t *topoSource) agentOf(cluster, addr string) string {
	c, ok := t.current().cluster(cluster)
	if !ok {
		return ""
	}
	for _, in := range c.Instances {
		if strings.EqualFold(in.Address, addr) {
			return in.Agent
		}
	}
	return ""
}
