package fsm

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Topology commands: the clusters and instances every controller watches
// live in the replicated state, so adding a replica or a cluster changes
// every controller at once instead of one config file at a time. None of
// them is ignorable: a controller that skipped one would watch a different
// topology from its peers, which is the divergence they exist to end.
const (
	// ClusterDefineType adds a cluster definition or changes its fields.
	ClusterDefineType MessageType = 13
	// ClusterRemoveType removes a cluster definition (a tombstone stays,
	// so a config file that still lists it does not seed it again).
	ClusterRemoveType MessageType = 14
	// InstanceSetType adds an instance to a defined cluster or changes its
	// fields.
	InstanceSetType MessageType = 15
	// InstanceRemoveType removes an instance from a defined cluster.
	InstanceRemoveType MessageType = 16
)

// Topology operations of ClusterDefine and InstanceSet.
const (
	OpAdd = "add" // fails when it exists already
	OpSet = "set" // fails when it does not exist
)

// ClusterDef is a cluster definition as replicated. It holds no secret:
// PasswordFile/PasswordEnv (and the repl_ pair) name where each controller
// reads the password locally; with neither set, a controller uses the
// password of the cluster of the same name in its own config file.
// Hooks, database TLS and agent credentials are local to each controller's
// file too (they name local files).
type ClusterDef struct {
	Name             string        `json:"name"`
	User             string        `json:"user"`
	PasswordFile     string        `json:"password_file,omitempty"`
	PasswordEnv      string        `json:"password_env,omitempty"`
	ReplUser         string        `json:"repl_user,omitempty"`
	ReplPasswordFile string        `json:"repl_password_file,omitempty"`
	ReplPasswordEnv  string        `json:"repl_password_env,omitempty"`
	SSHUser          string        `json:"ssh_user,omitempty"`
	MasterBinlogDir  string        `json:"master_binlog_dir,omitempty"`
	ReplicationMode  string        `json:"replication_mode,omitempty"`
	MaxLag           time.Duration `json:"max_lag,omitempty"`
	// AutoAdd lets the leader add replicas it discovers (SHOW SLAVE HOSTS,
	// binlog dump threads) as no_master instances.
	AutoAdd   bool          `json:"auto_add,omitempty"`
	Instances []InstanceDef `json:"instances"`
	// By and At say who last changed the definition (from the command).
	By string    `json:"by,omitempty"`
	At time.Time `json:"at,omitzero"`
}

// InstanceDef is one server of a cluster as replicated.
type InstanceDef struct {
	Address         string `json:"address"`
	Zone            string `json:"zone,omitempty"`
	CandidateMaster bool   `json:"candidate_master,omitempty"`
	NoMaster        bool   `json:"no_master,omitempty"`
	IgnoreFail      bool   `json:"ignore_fail,omitempty"`
	CheckReplDelay  *bool  `json:"check_repl_delay,omitempty"`
	// Agent is the URL of the host agent beside the server.
	Agent string `json:"agent,omitempty"`
	// AddedBy says who added it: an operator, "seed:<controller>" or
	// "discovery:<controller>".
	AddedBy string `json:"added_by,omitempty"`
}

// Flags lists the instance's role flags and zone as the CLI spells them
// (candidate_master, no_master, ignore_fail, zone=Z), for display.
func (in InstanceDef) Flags() []string {
	var f []string
	if in.CandidateMaster {
		f = append(f, "candidate_master")
	}
	if in.NoMaster {
		f = append(f, "no_master")
	}
	if in.IgnoreFail {
		f = append(f, "ignore_fail")
	}
	if in.Zone != "" {
		f = append(f, "zone="+in.Zone)
	}
	return f
}

// Clone returns a deep copy.
func (d *ClusterDef) Clone() *ClusterDef {
	if d == nil {
		return nil
	}
	c := *d
	c.Instances = make([]InstanceDef, len(d.Instances))
	for i, in := range d.Instances {
		if in.CheckReplDelay != nil {
			v := *in.CheckReplDelay
			in.CheckReplDelay = &v
		}
		c.Instances[i] = in
	}
	return &c
}

// Instance returns the named instance (address compared case-insensitively).
func (d *ClusterDef) Instance(addr string) (InstanceDef, bool) {
	if d == nil {
		return InstanceDef{}, false
	}
	for _, in := range d.Instances {
		if strings.EqualFold(in.Address, addr) {
			return in, true
		}
	}
	return InstanceDef{}, false
}

// ClusterPatch is the set of cluster fields a "set" changes: nil leaves a
// field as it is.
type ClusterPatch struct {
	User             *string        `json:"user,omitempty"`
	PasswordFile     *string        `json:"password_file,omitempty"`
	PasswordEnv      *string        `json:"password_env,omitempty"`
	ReplUser         *string        `json:"repl_user,omitempty"`
	ReplPasswordFile *string        `json:"repl_password_file,omitempty"`
	ReplPasswordEnv  *string        `json:"repl_password_env,omitempty"`
	SSHUser          *string        `json:"ssh_user,omitempty"`
	MasterBinlogDir  *string        `json:"master_binlog_dir,omitempty"`
	ReplicationMode  *string        `json:"replication_mode,omitempty"`
	MaxLag           *time.Duration `json:"max_lag,omitempty"`
	AutoAdd          *bool          `json:"auto_add,omitempty"`
}

// ClusterDefine is the payload of ClusterDefineType. Op add takes Def
// (with at least one instance); op set takes Name and Patch.
type ClusterDefine struct {
	Op    string        `json:"op"`
	Name  string        `json:"name"`
	Def   *ClusterDef   `json:"def,omitempty"`
	Patch *ClusterPatch `json:"patch,omitempty"`
	By    string        `json:"by,omitempty"`
	At    time.Time     `json:"at"`
}

// ClusterRemove is the payload of ClusterRemoveType.
type ClusterRemove struct {
	Name string    `json:"name"`
	By   string    `json:"by,omitempty"`
	At   time.Time `json:"at"`
}

// InstancePatch is the set of instance fields a "set" (or an "add") gives:
// nil leaves a field as it is (or at its default on add).
type InstancePatch struct {
	Zone            *string `json:"zone,omitempty"`
	CandidateMaster *bool   `json:"candidate_master,omitempty"`
	NoMaster        *bool   `json:"no_master,omitempty"`
	IgnoreFail      *bool   `json:"ignore_fail,omitempty"`
	CheckReplDelay  *bool   `json:"check_repl_delay,omitempty"`
	Agent           *string `json:"agent,omitempty"`
}

// InstanceSet is the payload of InstanceSetType.
type InstanceSet struct {
	Op      string        `json:"op"`
	Cluster string        `json:"cluster"`
	Address string        `json:"address"`
	Patch   InstancePatch `json:"patch"`
	By      string        `json:"by,omitempty"`
	At      time.Time     `json:"at"`
}

// InstanceRemove is the payload of InstanceRemoveType.
type InstanceRemove struct {
	Cluster string    `json:"cluster"`
	Address string    `json:"address"`
	By      string    `json:"by,omitempty"`
	At      time.Time `json:"at"`
}

// Replication modes a definition may name ("" means gtid).
var replicationModes = []string{"", "gtid", "file"}

// ValidAddress checks a host:port address as the FSM does, so the API and
// the CLI can refuse the same input before it reaches the log.
func ValidAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: want host:port", addr)
	}
	if host == "" {
		return fmt.Errorf("address %q: empty host", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("address %q: port %q is not 1..65535", addr, port)
	}
	return nil
}

// ValidateClusterDef checks a whole definition; the error names the cluster,
// the field and the value.
func ValidateClusterDef(d ClusterDef) error {
	if d.Name == "" {
		return invalid("cluster definition: empty name")
	}
	if err := validateFields(d); err != nil {
		return err
	}
	if len(d.Instances) == 0 {
		return invalid("cluster %q: instances: at least one instance is required", d.Name)
	}
	for i, in := range d.Instances {
		if err := validateInstance(d.Name, in); err != nil {
			return err
		}
		for _, prev := range d.Instances[:i] {
			if strings.EqualFold(prev.Address, in.Address) {
				return invalid("cluster %q: instance %s listed twice", d.Name, in.Address)
			}
		}
	}
	return nil
}

// validateFields checks the cluster-level fields of d.
func validateFields(d ClusterDef) error {
	switch {
	case d.User == "":
		return invalid("cluster %q: user: empty", d.Name)
	case d.PasswordFile != "" && d.PasswordEnv != "":
		return invalid("cluster %q: password_file %q and password_env %q: give at most one", d.Name, d.PasswordFile, d.PasswordEnv)
	case d.ReplPasswordFile != "" && d.ReplPasswordEnv != "":
		return invalid("cluster %q: repl_password_file %q and repl_password_env %q: give at most one", d.Name, d.ReplPasswordFile, d.ReplPasswordEnv)
	case !slices.Contains(replicationModes, d.ReplicationMode):
		return invalid("cluster %q: replication_mode %q: want gtid or file", d.Name, d.ReplicationMode)
	case d.MaxLag < 0:
		return invalid("cluster %q: max_lag %s: negative", d.Name, d.MaxLag)
	}
	return nil
}

func validateInstance(cluster string, in InstanceDef) error {
	if err := ValidAddress(in.Address); err != nil {
		return invalid("cluster %q: instance: %v", cluster, err)
	}
	if in.CandidateMaster && in.NoMaster {
		return invalid("cluster %q: instance %s: candidate_master and no_master are both true", cluster, in.Address)
	}
	return nil
}

// topologyLocked returns the rejection of an instance change while a
// failover or switchover of the cluster is open: the runner chose its
// candidates from the instances as they were.
func (s *state) topologyLocked(cluster, what string) error {
	id, ok := s.open[cluster]
	if !ok {
		return nil
	}
	r := s.byID[id]
	if r.Kind != KindFailover && r.Kind != KindSwitchover {
		return nil
	}
	return fmt.Errorf("cluster %q: %s: %s record %d is open: %w", cluster, what, r.Kind, id, ErrTopologyLocked)
}

// applyClusterDefine adds a definition or patches its fields.
func (f *FSM) applyClusterDefine(payload []byte, index uint64) any {
	p := decodePayload[ClusterDefine](ClusterDefineType, payload, index)
	if p.At.IsZero() {
		return invalid("cluster define %q: zero time", p.Name)
	}
	switch p.Op {
	case OpAdd:
		if p.Def == nil {
			return invalid("cluster add %q: no definition", p.Name)
		}
		d := p.Def.Clone()
		if p.Name != "" && p.Name != d.Name {
			return invalid("cluster add: name %q and definition name %q differ", p.Name, d.Name)
		}
		if err := ValidateClusterDef(*d); err != nil {
			return err
		}
		if c, ok := f.s.clusters[d.Name]; ok && c.Topology != nil {
			return fmt.Errorf("cluster %q: %w", d.Name, ErrClusterExists)
		}
		d.By, d.At = p.By, p.At
		c := f.s.cluster(d.Name)
		c.Topology, c.TopologyRemoved, c.TopologyIndex = d, false, index
	case OpSet:
		c, ok := f.s.clusters[p.Name]
		if !ok || c.Topology == nil {
			return fmt.Errorf("cluster %q: %w", p.Name, ErrNoSuchCluster)
		}
		if p.Patch == nil {
			return invalid("cluster set %q: nothing to change", p.Name)
		}
		d := c.Topology.Clone()
		patchCluster(d, *p.Patch)
		if err := validateFields(*d); err != nil {
			return err
		}
		d.By, d.At = p.By, p.At
		c.Topology, c.TopologyIndex = d, index
	default:
		return invalid("cluster define %q: op %q: want add or set", p.Name, p.Op)
	}
	f.topologyChanged()
	return nil
}

func patchCluster(d *ClusterDef, p ClusterPatch) {
	setIf(&d.User, p.User)
	setIf(&d.PasswordFile, p.PasswordFile)
	setIf(&d.PasswordEnv, p.PasswordEnv)
	setIf(&d.ReplUser, p.ReplUser)
	setIf(&d.ReplPasswordFile, p.ReplPasswordFile)
	setIf(&d.ReplPasswordEnv, p.ReplPasswordEnv)
	setIf(&d.SSHUser, p.SSHUser)
	setIf(&d.MasterBinlogDir, p.MasterBinlogDir)
	setIf(&d.ReplicationMode, p.ReplicationMode)
	setIf(&d.MaxLag, p.MaxLag)
	setIf(&d.AutoAdd, p.AutoAdd)
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// applyClusterRemove removes a definition, leaving a tombstone.
func (f *FSM) applyClusterRemove(payload []byte, index uint64) any {
	p := decodePayload[ClusterRemove](ClusterRemoveType, payload, index)
	if p.At.IsZero() {
		return invalid("cluster remove %q: zero time", p.Name)
	}
	c, ok := f.s.clusters[p.Name]
	if !ok || c.Topology == nil {
		return fmt.Errorf("cluster %q: %w", p.Name, ErrNoSuchCluster)
	}
	if id, open := f.s.open[p.Name]; open {
		return fmt.Errorf("cluster %q: remove: %s record %d is open: %w", p.Name, f.s.byID[id].Kind, id, ErrTopologyLocked)
	}
	c.Topology, c.TopologyRemoved, c.TopologyIndex = nil, true, index
	f.topologyChanged()
	return nil
}

// applyInstanceSet adds an instance or patches its fields.
func (f *FSM) applyInstanceSet(payload []byte, index uint64) any {
	p := decodePayload[InstanceSet](InstanceSetType, payload, index)
	if p.At.IsZero() {
		return invalid("instance %s %s of cluster %q: zero time", p.Op, p.Address, p.Cluster)
	}
	c, ok := f.s.clusters[p.Cluster]
	if !ok || c.Topology == nil {
		return fmt.Errorf("instance %s: cluster %q: %w", p.Address, p.Cluster, ErrNoSuchCluster)
	}
	if err := f.s.topologyLocked(p.Cluster, "instance "+p.Op+" "+p.Address); err != nil {
		return err
	}
	d := c.Topology.Clone()
	i := slices.IndexFunc(d.Instances, func(in InstanceDef) bool { return strings.EqualFold(in.Address, p.Address) })
	switch p.Op {
	case OpAdd:
		if i >= 0 {
			return fmt.Errorf("cluster %q: instance %s: %w", p.Cluster, p.Address, ErrInstanceExists)
		}
		in := InstanceDef{Address: p.Address, AddedBy: p.By}
		patchInstance(&in, p.Patch)
		if err := validateInstance(p.Cluster, in); err != nil {
			return err
		}
		d.Instances = append(d.Instances, in)
	case OpSet:
		if i < 0 {
			return fmt.Errorf("cluster %q: instance %s: %w", p.Cluster, p.Address, ErrNoSuchInstance)
		}
		patchInstance(&d.Instances[i], p.Patch)
		if err := validateInstance(p.Cluster, d.Instances[i]); err != nil {
			return err
		}
	default:
		return invalid("instance %s of cluster %q: op %q: want add or set", p.Address, p.Cluster, p.Op)
	}
	d.By, d.At = p.By, p.At
	c.Topology, c.TopologyIndex = d, index
	f.topologyChanged()
	return nil
}

func patchInstance(in *InstanceDef, p InstancePatch) {
	setIf(&in.Zone, p.Zone)
	setIf(&in.CandidateMaster, p.CandidateMaster)
	setIf(&in.NoMaster, p.NoMaster)
	setIf(&in.IgnoreFail, p.IgnoreFail)
	setIf(&in.Agent, p.Agent)
	if p.CheckReplDelay != nil {
		v := *p.CheckReplDelay
		in.CheckReplDelay = &v
	}
}

// applyInstanceRemove removes an instance. The cluster's recorded master
// and its last instance cannot be removed.
func (f *FSM) applyInstanceRemove(payload []byte, index uint64) any {
	p := decodePayload[InstanceRemove](InstanceRemoveType, payload, index)
	if p.At.IsZero() {
		return invalid("instance remove %s of cluster %q: zero time", p.Address, p.Cluster)
	}
	c, ok := f.s.clusters[p.Cluster]
	if !ok || c.Topology == nil {
		return fmt.Errorf("instance remove %s: cluster %q: %w", p.Address, p.Cluster, ErrNoSuchCluster)
	}
	if err := f.s.topologyLocked(p.Cluster, "instance remove "+p.Address); err != nil {
		return err
	}
	d := c.Topology.Clone()
	i := slices.IndexFunc(d.Instances, func(in InstanceDef) bool { return strings.EqualFold(in.Address, p.Address) })
	switch {
	case i < 0:
		return fmt.Errorf("cluster %q: instance %s: %w", p.Cluster, p.Address, ErrNoSuchInstance)
	case strings.EqualFold(c.Master, p.Address):
		return fmt.Errorf("cluster %q: instance %s: %w", p.Cluster, p.Address, ErrRemoveMaster)
	case len(d.Instances) == 1:
		return invalid("cluster %q: instance %s is its last instance; remove the cluster instead", p.Cluster, p.Address)
	}
	d.Instances = slices.Delete(d.Instances, i, i+1)
	d.By, d.At = p.By, p.At
	c.Topology, c.TopologyIndex = d, index
	f.topologyChanged()
	return nil
}

// TopologyChanged returns a channel closed at the next change of any
// cluster definition or recorded master, or at a Restore. Like
// MasterChanged, callers take the channel, read the state, then wait.
func (f *FSM) TopologyChanged() <-chan struct{} {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.topoCh
}

// topologyChanged wakes every TopologyChanged waiter; f.mu must be held
// for writing.
func (f *FSM) topologyChanged() {
	close(f.topoCh)
	f.topoCh = make(chan struct{})
}

// Topology returns a copy of every defined cluster, sorted by name, and
// the names of clusters whose definition was removed (tombstones).
func (f *FSM) Topology() (defs []ClusterDef, removed []string) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, c := range f.s.sortedClusters() {
		switch {
		case c.Topology != nil:
			defs = append(defs, *c.Topology)
		case c.TopologyRemoved:
			removed = append(removed, c.Name)
		}
	}
	return defs, removed
}
