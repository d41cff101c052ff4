// Package config loads, defaults and validates the quorumha configuration.
//
// A config comes from a YAML, TOML or JSON file (read through viper), from an
// MHA .cnf file (imported as one cluster), or from both (mha_configs), and
// every scalar key can be overridden from the environment as
// QUORUMHA_<SECTION>_<KEY>. The result is a typed Config: other packages get
// plain values and never see viper. Validation names the file, the key and
// the offending value of every problem, so an operator can fix them all in one
// pass. Passwords are kept in Secret values that never print.
package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
)

// Config is the whole configuration of one controller. The same file is
// normally deployed to every controller of a Raft group with only the node
// section differing.
type Config struct {
	// Node identifies this controller and its listeners.
	Node Node `mapstructure:"node" json:"node"`
	// API configures the HTTP server (auth and TLS).
	API API `mapstructure:"api" json:"api"`
	// Detector tunes failure detection.
	Detector Detector `mapstructure:"detector" json:"detector"`
	// Recovery tunes failover and switchover.
	Recovery Recovery `mapstructure:"recovery" json:"recovery"`
	// Log selects the slog level and format.
	Log Log `mapstructure:"log" json:"log"`
	// Clusters are the replication clusters this controller group protects.
	// Clusters imported from MHAConfigs are appended after the ones listed
	// here.
	Clusters []Cluster `mapstructure:"clusters" json:"clusters"`
	// MHAConfigs are paths of MHA .cnf files, each imported as one more
	// cluster named after the file, so an MHA deployment can be moved over
	// without rewriting its application configs.
	MHAConfigs []string `mapstructure:"mha_configs" json:"mha_configs,omitempty"`
	// Source is the file the config was loaded from (not a key); errors and
	// warnings name it.
	Source string `mapstructure:"-" json:"source,omitempty"`
}

// Node identifies this controller: its Raft identity, its zone (the vantage
// point it represents) and the addresses it listens on.
type Node struct {
	// ID is this controller's Raft server ID; unique in the group.
	ID string `mapstructure:"id" json:"id"`
	// Zone names the failure domain this controller probes from.
	Zone string `mapstructure:"zone" json:"zone"`
	// DataDir holds the Raft log, stable store and snapshots.
	DataDir string `mapstructure:"data_dir" json:"data_dir"`
	// RaftAddr is the host:port Raft binds to and advertises.
	RaftAddr string `mapstructure:"raft_addr" json:"raft_addr"`
	// GossipAddr is the host:port memberlist binds to and advertises.
	GossipAddr string `mapstructure:"gossip_addr" json:"gossip_addr"`
	// HTTPAddr is the host:port of the HTTP API.
	HTTPAddr string `mapstructure:"http_addr" json:"http_addr"`
	// Bootstrap lists the initial voters as "id=host:port"; empty means
	// join an existing group instead of bootstrapping one.
	Bootstrap []string `mapstructure:"bootstrap" json:"bootstrap,omitempty"`
	// GossipJoin lists host:port addresses of other controllers' gossip
	// listeners to join at start.
	GossipJoin []string `mapstructure:"gossip_join" json:"gossip_join,omitempty"`
	// GossipKeyFile is an optional file holding the memberlist encryption key.
	GossipKeyFile string `mapstructure:"gossip_key_file" json:"gossip_key_file,omitempty"`
	// RaftProfile picks Raft timeouts: "lan" (default) or "wan" for
	// controllers in distant regions.
	RaftProfile string `mapstructure:"raft_profile" json:"raft_profile"`
	// RaftTLSCert, RaftTLSKey and RaftTLSCA (all three or none) turn the
	// raft transport into mutual TLS: this controller serves and presents
	// RaftTLSCert, and accepts only peers whose certificate RaftTLSCA
	// signed, so only holders of such a certificate can join the group.
	RaftTLSCert string `mapstructure:"raft_tls_cert" json:"raft_tls_cert,omitempty"`
	// RaftTLSKey is the private key matching RaftTLSCert.
	RaftTLSKey string `mapstructure:"raft_tls_key" json:"raft_tls_key,omitempty"`
	// RaftTLSCA is the CA bundle peers' raft certificates must chain to.
	RaftTLSCA string `mapstructure:"raft_tls_ca" json:"raft_tls_ca,omitempty"`
	// InsecureNoGossipKey lets run start with a non-loopback gossip_addr
	// and no gossip_key_file: anyone on the network could then inject
	// "master down" verdicts. Set it only on a network you trust.
	InsecureNoGossipKey bool `mapstructure:"insecure_no_gossip_key" json:"insecure_no_gossip_key,omitempty"`
	// InsecureNoRaftTLS lets run start with a non-loopback raft_addr and
	// no node.raft_tls_*: anyone who reaches the port could then read the
	// replicated state and, speaking raft, disturb the group. Set it only
	// on a network you trust.
	InsecureNoRaftTLS bool `mapstructure:"insecure_no_raft_tls" json:"insecure_no_raft_tls,omitempty"`
}

// RaftTLS reports whether the raft transport runs mutual TLS.
func (n Node) RaftTLS() bool { return n.RaftTLSCert != "" }

// Peer is one parsed node.bootstrap entry.
type Peer struct {
	// ID is the Raft server ID.
	ID string `json:"id"`
	// Addr is the Raft host:port.
	Addr string `json:"addr"`
}

// BootstrapPeers parses node.bootstrap ("id=host:port" each) so consensus
// gets typed peers instead of re-parsing strings.
func (n Node) BootstrapPeers() ([]Peer, error) {
	peers := make([]Peer, 0, len(n.Bootstrap))
	for i, entry := range n.Bootstrap {
		p, err := parsePeer(entry)
		if err != nil {
			return nil, fmt.Errorf("node.bootstrap[%d]: %q: %w", i, entry, err)
		}
		peers = append(peers, p)
	}
	return peers, nil
}

func parsePeer(entry string) (Peer, error) {
	id, addr, ok := strings.Cut(entry, "=")
	id, addr = strings.TrimSpace(id), strings.TrimSpace(addr)
	if !ok || id == "" {
		return Peer{}, fmt.Errorf("%w: want id=host:port", ErrInvalidValue)
	}
	if err := checkHostPort(addr); err != nil {
		return Peer{}, err
	}
	return Peer{ID: id, Addr: addr}, nil
}

// API configures the HTTP server.
type API struct {
	// TokenFile holds the bearer token required for write endpoints; no
	// file means writes are open (run allows that only on loopback, or
	// with InsecureNoToken).
	TokenFile string `mapstructure:"token_file" json:"token_file,omitempty"`
	// ReadTokenFile holds a second token that, when set, every GET under
	// /v1/ requires (the write token is accepted too). It never
	// authorises a write, so dashboards and scripts can read without
	// being able to fail a cluster over.
	ReadTokenFile string `mapstructure:"read_token_file" json:"read_token_file,omitempty"`
	// MetricsAuth makes /metrics require a token too (read or write);
	// off by default because Prometheus scrapers often cannot send one.
	MetricsAuth bool `mapstructure:"metrics_auth" json:"metrics_auth,omitempty"`
	// LeaderContactWindow is how recent this controller's contact with the
	// raft leader must be for GET /v1/clusters/{name}/master to name a
	// master (safety rule 6): a follower that has not heard from the leader
	// for longer answers 503, so a controller cut off from the group stops
	// routing applications to a master the group may have replaced.
	LeaderContactWindow time.Duration `mapstructure:"leader_contact_window" json:"leader_contact_window"`
	// InsecureNoToken lets run start with a non-loopback http_addr and no
	// token: anyone who reaches the port could then trigger a failover.
	InsecureNoToken bool `mapstructure:"insecure_no_token" json:"insecure_no_token,omitempty"`
	// TLSCert and TLSKey enable HTTPS when both are set.
	TLSCert string `mapstructure:"tls_cert" json:"tls_cert,omitempty"`
	// TLSKey is the private key matching TLSCert.
	TLSKey string `mapstructure:"tls_key" json:"tls_key,omitempty"`
	// TLSCA is the CA bundle this controller trusts when it forwards a
	// write to the leader over HTTPS; empty means the system roots.
	TLSCA string `mapstructure:"tls_ca" json:"tls_ca,omitempty"`
	// Token is the content of TokenFile (trimmed), read at load time so a
	// missing file fails the load rather than the first write request.
	Token Secret `mapstructure:"-" json:"token,omitempty"`
	// ReadToken is the content of ReadTokenFile (trimmed).
	ReadToken Secret `mapstructure:"-" json:"read_token,omitempty"`
}

// TLS reports whether the API serves HTTPS.
func (a API) TLS() bool { return a.TLSCert != "" && a.TLSKey != "" }

// Detector tunes failure detection. See design.md safety rule 2.
type Detector struct {
	// ProbeInterval is the time between two probes of one instance.
	ProbeInterval time.Duration `mapstructure:"probe_interval" json:"probe_interval"`
	// ProbeTimeout bounds one probe (connect plus query).
	ProbeTimeout time.Duration `mapstructure:"probe_timeout" json:"probe_timeout"`
	// FailureThreshold is the number of consecutive failed probes before
	// this vantage point reports the instance down.
	FailureThreshold int `mapstructure:"failure_threshold" json:"failure_threshold"`
	// Quorum is "majority" or a positive number of vantage points that must
	// agree a master is down.
	Quorum string `mapstructure:"quorum" json:"quorum"`
	// ReplicaCheck also requires the replicas' IO threads to have lost the
	// master before it is declared dead.
	ReplicaCheck bool `mapstructure:"replica_check" json:"replica_check"`
	// FreshnessWindow is how old another controller's verdict may be and
	// still count towards the quorum.
	FreshnessWindow time.Duration `mapstructure:"freshness_window" json:"freshness_window"`
	// ReplicaHeartbeat is the MASTER_HEARTBEAT_PERIOD quorumha sets
	// whenever it points a replica at a master: a replica that has
	// received neither events nor heartbeats for two periods counts as
	// having lost its master, without waiting for slave_net_timeout. 0
	// leaves the servers' period alone.
	ReplicaHeartbeat time.Duration `mapstructure:"replica_heartbeat" json:"replica_heartbeat"`
}

// QuorumSize returns how many vantage points must agree, given the number of
// live controllers: live/2+1 for "majority", else the configured number.
// Validate guarantees Quorum is one of the two forms; an unparsable value
// falls back to majority so a caller never gets 0 (which would mean "no
// agreement needed").
func (d Detector) QuorumSize(live int) int {
	if n, err := strconv.Atoi(strings.TrimSpace(d.Quorum)); err == nil && n > 0 {
		return n
	}
	return live/2 + 1
}

// Recovery tunes failover and switchover.
type Recovery struct {
	// AntiFlap refuses an automatic failover of a cluster within this long
	// after the previous one. MHA uses 8h (last_failover_minute=480), which
	// in practice means the second failure of a day is never handled
	// automatically (see mha-reference.md); 1h still stops a flapping
	// master from bouncing the cluster while an operator looks at it.
	AntiFlap time.Duration `mapstructure:"anti_flap" json:"anti_flap"`
	// MaxReplicaLag is the replication lag above which a replica is not a
	// promotion candidate (when CheckReplDelay) and a switchover is
	// refused; MHA uses 30s for its online switch.
	MaxReplicaLag time.Duration `mapstructure:"max_replica_lag" json:"max_replica_lag"`
	// ApplyTimeout bounds waiting for relay logs to be applied on the new
	// master during a failover.
	ApplyTimeout time.Duration `mapstructure:"apply_timeout" json:"apply_timeout"`
	// SalvageTimeout bounds how long a failover talks to the dead master's
	// binlog agent before it goes on without the salvage.
	SalvageTimeout time.Duration `mapstructure:"salvage_timeout" json:"salvage_timeout"`
	// SalvageConnectTimeout bounds connecting (TCP) to the dead master's
	// binlog agent: an agent whose host does not accept a connection for
	// that long is given up at once, with the possible loss recorded,
	// instead of after SalvageTimeout, which stays the bound for an agent
	// that connects but is slow (a big binlog).
	SalvageConnectTimeout time.Duration `mapstructure:"salvage_connect_timeout" json:"salvage_connect_timeout"`
	// CheckReplDelay excludes lagging replicas from promotion (MHA's
	// check_repl_delay); instances may override it.
	CheckReplDelay bool `mapstructure:"check_repl_delay" json:"check_repl_delay"`
	// Fence is "required" (default: promote only after a proven fence of the
	// old master, otherwise the record waits in awaiting_fence) or
	// "best_effort" (promote anyway and say so in the record).
	Fence string `mapstructure:"fence" json:"fence"`
	// LeaseTTL is how long one controller's renewal of a master's quorum
	// lease counts at that host's agent. Keep it well below the servers'
	// rpl_semi_sync_master_timeout, so a cut-off master is fenced before
	// semi-sync falls back to async and acknowledges writes on its own.
	LeaseTTL time.Duration `mapstructure:"lease_ttl" json:"lease_ttl"`
	// LeaseDrift is the margin added to the TTL before the leader takes a
	// lapsed lease as a fence proof: clock rate differences between the
	// controllers and the agent, and request latency.
	LeaseDrift time.Duration `mapstructure:"lease_drift" json:"lease_drift"`
}

// Fence modes (recovery.fence).
const (
	FenceRequired   = "required"
	FenceBestEffort = "best_effort"
)

// Log selects how the controller logs (slog on stderr).
type Log struct {
	// Level is debug, info, warn or error.
	Level string `mapstructure:"level" json:"level"`
	// Format is text or json.
	Format string `mapstructure:"format" json:"format"`
}

// SlogLevel converts Level to a slog.Level; Validate guarantees it parses,
// anything else yields info.
func (l Log) SlogLevel() slog.Level {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(l.Level)); err != nil {
		return slog.LevelInfo
	}
	return lv
}

// Replication modes of a cluster.
const (
	// ReplicationGTID repoints replicas by GTID (MASTER_USE_GTID /
	// MASTER_AUTO_POSITION); the default, as MHA's use_gtid_auto_pos=1.
	ReplicationGTID = "gtid"
	// ReplicationFile repoints replicas by binlog file and position.
	ReplicationFile = "file"
)

// Cluster is one replication cluster: one master and its replicas.
type Cluster struct {
	// Name identifies the cluster in the API, the CLI and the Raft state.
	Name string `mapstructure:"name" json:"name"`
	// User is the account controllers probe and administer with.
	User string `mapstructure:"user" json:"user"`
	// Password of User; prefer PasswordFile or the environment.
	Password Secret `mapstructure:"password" json:"password,omitempty"`
	// PasswordFile holds Password (trimmed); exclusive with Password.
	PasswordFile string `mapstructure:"password_file" json:"password_file,omitempty"`
	// ReplUser is the replication account the replicas are pointed with; empty
	// means keep the replicas' current Master_User.
	ReplUser string `mapstructure:"repl_user" json:"repl_user,omitempty"`
	// ReplPassword of ReplUser.
	ReplPassword Secret `mapstructure:"repl_password" json:"repl_password,omitempty"`
	// ReplPasswordFile holds ReplPassword; exclusive with ReplPassword.
	ReplPasswordFile string `mapstructure:"repl_password_file" json:"repl_password_file,omitempty"`
	// SSHUser is passed to hooks as --ssh_user, as MHA does.
	SSHUser string `mapstructure:"ssh_user" json:"ssh_user,omitempty"`
	// MasterBinlogDir is passed to hooks that need it (MHA compatibility).
	MasterBinlogDir string `mapstructure:"master_binlog_dir" json:"master_binlog_dir,omitempty"`
	// ReplicationMode is "gtid" (default) or "file".
	ReplicationMode string `mapstructure:"replication_mode" json:"replication_mode"`
	// MaxLag overrides recovery.max_replica_lag for this cluster; 0 means
	// use the global value.
	MaxLag time.Duration `mapstructure:"max_lag" json:"max_lag,omitempty"`
	// Hooks are MHA-compatible scripts called during recovery.
	Hooks Hooks `mapstructure:"hooks" json:"hooks"`
	// Agent holds the credentials for the instances' binlog agents.
	Agent AgentClient `mapstructure:"agent" json:"agent,omitzero"`
	// TLS, when set, makes every connection to the cluster's servers use
	// TLS with certificate verification.
	TLS DBTLS `mapstructure:"tls" json:"tls,omitzero"`
	// AutoAdd lets the leader add the replicas it discovers replicating
	// from the master (SHOW SLAVE HOSTS, binlog dump threads) to the
	// replicated state as no_master instances; without it they are only
	// reported.
	AutoAdd bool `mapstructure:"auto_add" json:"auto_add,omitempty"`
	// Instances are the cluster's servers, in preference order.
	Instances []Instance `mapstructure:"instances" json:"instances"`
	// Source is the file this cluster was defined in (not a key).
	Source string `mapstructure:"-" json:"source,omitempty"`
	// InlineSecrets names the keys ("password", "repl_password") whose
	// value is written in Source itself rather than in a file or the
	// environment (not a key): run then requires Source to be private.
	InlineSecrets []string `mapstructure:"-" json:"-"`
}

// LagLimit returns the replication lag limit for this cluster: MaxLag when
// set, else the global recovery.max_replica_lag.
func (c Cluster) LagLimit(r Recovery) time.Duration {
	if c.MaxLag > 0 {
		return c.MaxLag
	}
	return r.MaxReplicaLag
}

// Hooks are paths of executables called with MHA's arguments, so existing
// MHA scripts keep working unchanged.
type Hooks struct {
	// IPFailover moves the writer address (MHA master_ip_failover_script).
	IPFailover string `mapstructure:"ip_failover" json:"ip_failover,omitempty"`
	// IPOnlineChange moves it during a switchover
	// (master_ip_online_change_script).
	IPOnlineChange string `mapstructure:"ip_online_change" json:"ip_online_change,omitempty"`
	// Shutdown powers off or stops the dead master (shutdown_script).
	Shutdown string `mapstructure:"shutdown" json:"shutdown,omitempty"`
	// Report is told the outcome (report_script).
	Report string `mapstructure:"report" json:"report,omitempty"`
	// SecondaryCheck is an extra "is it really dead" script; rarely needed
	// since several controllers already probe from several zones.
	SecondaryCheck string `mapstructure:"secondary_check" json:"secondary_check,omitempty"`
}

// Instance is one MySQL/MariaDB server of a cluster.
type Instance struct {
	// Address is host:port.
	Address string `mapstructure:"address" json:"address"`
	// Zone is the failure domain the server lives in (informational, and
	// for candidate ordering).
	Zone string `mapstructure:"zone" json:"zone,omitempty"`
	// CandidateMaster prefers this server as the new master.
	CandidateMaster bool `mapstructure:"candidate_master" json:"candidate_master,omitempty"`
	// NoMaster never promotes this server.
	NoMaster bool `mapstructure:"no_master" json:"no_master,omitempty"`
	// IgnoreFail lets a failover proceed when this replica is down.
	IgnoreFail bool `mapstructure:"ignore_fail" json:"ignore_fail,omitempty"`
	// CheckReplDelay overrides recovery.check_repl_delay for this server;
	// nil means use the global value.
	CheckReplDelay *bool `mapstructure:"check_repl_delay" json:"check_repl_delay,omitempty"`
	// Agent is the URL of the binlog agent on this server's host
	// (https://host:port); a failover of this server salvages its binlog
	// through it. Empty: no salvage.
	Agent string `mapstructure:"agent" json:"agent,omitempty"`
}

// ChecksReplDelay reports whether lag disqualifies this instance from
// promotion: its own setting when present, else the global one.
func (i Instance) ChecksReplDelay(r Recovery) bool {
	if i.CheckReplDelay != nil {
		return *i.CheckReplDelay
	}
	return r.CheckReplDelay
}

// Host returns the host part of Address ("" when it does not parse).
func (i Instance) Host() string {
	h, _, err := net.SplitHostPort(i.Address)
	if err != nil {
		return ""
	}
	return h
}

// Port returns the port of Address (0 when it does not parse).
func (i Instance) Port() int {
	_, p, err := net.SplitHostPort(i.Address)
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return 0
	}
	return n
}

// Cluster returns the cluster with the given name, for commands that take
// --cluster.
func (c *Config) Cluster(name string) (Cluster, bool) {
	for _, cl := range c.Clusters {
		if cl.Name == name {
			return cl, true
		}
	}
	return Cluster{}, false
}

// masked is what every printed form of a non-empty Secret shows.
const masked = "****"

// Secret holds a password or token. Every way of printing it (fmt verbs,
// JSON, text marshalling, slog) shows "****" so a Config can be logged or
// dumped safely; Reveal returns the value for the one place that needs it.
type Secret string

// Reveal returns the secret's value; call it only where the value is used
// (a DSN, an Authorization comparison), never to print it.
func (s Secret) Reveal() string { return string(s) }

// String masks the secret for %s and %v.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return masked
}

// GoString masks the secret for %#v.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// Format masks the secret for every fmt verb, including %q and %x, which
// would otherwise bypass String.
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		fmt.Fprint(f, strconv.Quote(s.String()))
	case 'v':
		if f.Flag('#') {
			fmt.Fprint(f, s.GoString())
			return
		}
		fmt.Fprint(f, s.String())
	default:
		fmt.Fprint(f, s.String())
	}
}

// MarshalJSON masks the secret in JSON output.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText masks the secret for text encoders (YAML, TOML, slog's text
// handler).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue masks the secret in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
