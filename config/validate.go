package config

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Validate checks everything that does not depend on which command runs:
// durations, addresses, cluster and instance rules, hooks, quorum, logging.
// It returns every problem joined (see Problems), each a *FieldError naming
// the file, key and value.
func (c *Config) Validate() error {
	p := &problems{file: c.Source}
	c.validateNode(p)
	c.validateAPI(p)
	c.validateDetector(p)
	c.validateRecovery(p)
	c.validateLog(p)
	c.validateClusters(p)
	return p.err()
}

// ValidateForRun is Validate plus what running a controller needs: an
// identity, listeners, a data directory, and a bootstrap list that names
// this node. check-config without --for-run does not require them, so one
// shared cluster file can be checked on any machine.
func (c *Config) ValidateForRun() error {
	p := &problems{file: c.Source}
	if err := c.Validate(); err != nil {
		p.errs = append(p.errs, Problems(err)...)
	}
	n := c.Node
	for _, req := range []struct{ key, val string }{
		{"node.id", n.ID}, {"node.raft_addr", n.RaftAddr},
		{"node.http_addr", n.HTTPAddr}, {"node.data_dir", n.DataDir},
	} {
		if strings.TrimSpace(req.val) == "" {
			p.add(req.key, "", ErrMissing, "required to run a controller")
		}
	}
	if len(n.Bootstrap) > 0 && n.ID != "" {
		found := false
		for _, e := range n.Bootstrap {
			if peer, err := parsePeer(e); err == nil && peer.ID == n.ID {
				found = true
			}
		}
		if !found {
			p.add("node.bootstrap", strings.Join(n.Bootstrap, ","), ErrInvalidValue,
				"does not include this node's id %q", n.ID)
		}
	}
	if len(n.Bootstrap) > 1 && n.GossipAddr == "" && len(c.Clusters) > 0 {
		// Without gossip each controller would count only its own vote and
		// the leader alone could declare a master dead.
		p.add("node.gossip_addr", "", ErrMissing, "required when several controllers watch clusters (multi-vantage detection)")
	}
	if n.GossipKeyFile != "" {
		if _, err := os.Stat(n.GossipKeyFile); err != nil {
			p.add("node.gossip_key_file", n.GossipKeyFile, ErrFile, "%v", unwrapPathErr(err))
		}
	}
	c.validateRunSecurity(p)
	return p.err()
}

func (c *Config) validateNode(p *problems) {
	n := c.Node
	for _, a := range []struct{ key, val string }{
		{"node.raft_addr", n.RaftAddr}, {"node.gossip_addr", n.GossipAddr}, {"node.http_addr", n.HTTPAddr},
	} {
		if a.val != "" {
			if err := checkHostPort(a.val); err != nil {
				p.add(a.key, a.val, ErrInvalidValue, "%s", msgOf(err))
			} else if a.key == "node.gossip_addr" && !ipLiteralHost(a.val) {
				// memberlist v0.5 listens on every interface for a host name
				// and then advertises "::": peers could not reach us.
				p.add(a.key, a.val, ErrInvalidValue, "must be an IP address, not a host name (gossip advertises it as is)")
			} else if a.key != "node.gossip_addr" && unspecifiedHost(a.val) {
				// Both addresses are advertised to the other controllers (raft
				// peers, write forwarding), so they must be reachable ones.
				p.add(a.key, a.val, ErrInvalidValue, "must be an address other controllers can reach, not a wildcard")
			}
		}
	}
	ids := map[string]int{}
	for i, e := range n.Bootstrap {
		key := fmt.Sprintf("node.bootstrap[%d]", i)
		peer, err := parsePeer(e)
		if err != nil {
			p.add(key, e, ErrInvalidValue, "%s (want id=host:port)", msgOf(err))
			continue
		}
		if j, dup := ids[peer.ID]; dup {
			p.add(key, e, ErrDuplicate, "id %q already used by node.bootstrap[%d]", peer.ID, j)
			continue
		}
		ids[peer.ID] = i
	}
	for i, a := range n.GossipJoin {
		if err := checkHostPort(a); err != nil {
			p.add(fmt.Sprintf("node.gossip_join[%d]", i), a, ErrInvalidValue, "%s", msgOf(err))
		}
	}
	switch n.RaftProfile {
	case "lan", "wan":
	default:
		p.add("node.raft_profile", n.RaftProfile, ErrInvalidValue, "must be lan or wan")
	}
	raftTLS := []struct{ key, val string }{
		{"node.raft_tls_cert", n.RaftTLSCert}, {"node.raft_tls_key", n.RaftTLSKey}, {"node.raft_tls_ca", n.RaftTLSCA},
	}
	var set []string
	for _, k := range raftTLS {
		if k.val != "" {
			set = append(set, k.key)
		}
	}
	if len(set) > 0 && len(set) < len(raftTLS) {
		for _, k := range raftTLS {
			if k.val == "" {
				p.add(k.key, "", ErrMissing, "raft mutual TLS needs node.raft_tls_cert, node.raft_tls_key and node.raft_tls_ca together (set: %s)", strings.Join(set, ", "))
			}
		}
	}
}

func (c *Config) validateAPI(p *problems) {
	a := c.API
	if a.LeaderContactWindow < 0 { // 0 (a Config built in code) means the API's default
		p.add("api.leader_contact_window", a.LeaderContactWindow.String(), ErrInvalidValue, "must be a positive duration")
	}
	switch {
	case a.TLSCert != "" && a.TLSKey == "":
		p.add("api.tls_key", "", ErrMissing, "required when api.tls_cert is set (%s): HTTPS needs both", a.TLSCert)
	case a.TLSKey != "" && a.TLSCert == "":
		p.add("api.tls_cert", "", ErrMissing, "required when api.tls_key is set (%s): HTTPS needs both", a.TLSKey)
	}
	if a.ReadTokenFile != "" && a.TokenFile == "" && a.Token == "" {
		// Reads would need a token while writes needed none.
		p.add("api.token_file", "", ErrMissing, "required when api.read_token_file is set (%s)", a.ReadTokenFile)
	}
	if a.ReadToken != "" && a.ReadToken == a.Token {
		p.add("api.read_token_file", a.ReadTokenFile, ErrConflict, "holds the same token as api.token_file: the read token would authorise writes")
	}
	if a.MetricsAuth && a.TokenFile == "" && a.Token == "" {
		p.add("api.metrics_auth", "true", ErrMissing, "needs api.token_file (a token to check)")
	}
}

func (c *Config) validateDetector(p *problems) {
	d := c.Detector
	positive(p, "detector.probe_interval", d.ProbeInterval)
	positive(p, "detector.probe_timeout", d.ProbeTimeout)
	positive(p, "detector.freshness_window", d.FreshnessWindow)
	// 0 leaves the servers' period alone. The servers count the period in
	// milliseconds; an hour is far past any useful value.
	if d.ReplicaHeartbeat != 0 && (d.ReplicaHeartbeat < time.Millisecond || d.ReplicaHeartbeat > time.Hour) {
		p.add("detector.replica_heartbeat", d.ReplicaHeartbeat.String(), ErrInvalidValue, "must be 0 (leave the servers' period) or from 1ms to 1h")
	}
	if d.FailureThreshold < 1 {
		p.add("detector.failure_threshold", strconv.Itoa(d.FailureThreshold), ErrInvalidValue, "must be at least 1")
	}
	if err := checkQuorum(d.Quorum); err != nil {
		p.add("detector.quorum", d.Quorum, ErrInvalidValue, "%s", msgOf(err))
	}
}

func checkQuorum(q string) error {
	if q == "majority" {
		return nil
	}
	n, err := strconv.Atoi(q)
	if err != nil || n < 1 {
		return fmt.Errorf("%w: must be \"majority\" or a positive integer", ErrInvalidValue)
	}
	return nil
}

func (c *Config) validateRecovery(p *problems) {
	r := c.Recovery
	positive(p, "recovery.anti_flap", r.AntiFlap)
	positive(p, "recovery.max_replica_lag", r.MaxReplicaLag)
	positive(p, "recovery.apply_timeout", r.ApplyTimeout)
	positive(p, "recovery.salvage_timeout", r.SalvageTimeout)
	positive(p, "recovery.salvage_connect_timeout", r.SalvageConnectTimeout)
	if r.SalvageConnectTimeout > r.SalvageTimeout && r.SalvageTimeout > 0 {
		p.add("recovery.salvage_connect_timeout", r.SalvageConnectTimeout.String(), ErrInvalidValue,
			"must not exceed recovery.salvage_timeout (%s)", r.SalvageTimeout)
	}
	switch r.Fence {
	case FenceRequired, FenceBestEffort:
	default:
		p.add("recovery.fence", r.Fence, ErrInvalidValue, "must be required or best_effort")
	}
	if r.LeaseTTL < 100*time.Millisecond || r.LeaseTTL > time.Minute {
		p.add("recovery.lease_ttl", r.LeaseTTL.String(), ErrInvalidValue, "must be between 100ms and 1m")
	}
	if r.LeaseDrift < 0 || r.LeaseDrift > r.LeaseTTL {
		p.add("recovery.lease_drift", r.LeaseDrift.String(), ErrInvalidValue, "must be between 0 and recovery.lease_ttl")
	}
	// Controllers renew a master's lease once per probe interval: a TTL
	// that is not longer lapses between two renewals, and an agent that
	// enforces it would fence a healthy master.
	if c.hasAgents() && r.LeaseTTL > 0 && c.Detector.ProbeInterval > 0 && r.LeaseTTL <= c.Detector.ProbeInterval {
		p.add("recovery.lease_ttl", r.LeaseTTL.String(), ErrInvalidValue,
			"must be longer than detector.probe_interval (%s), the renewal period; twice as long or more is advised", c.Detector.ProbeInterval)
	}
}

// hasAgents reports whether any instance names a host agent.
func (c *Config) hasAgents() bool {
	for _, cl := range c.Clusters {
		for _, in := range cl.Instances {
			if in.Agent != "" {
				return true
			}
		}
	}
	return false
}

func (c *Config) validateLog(p *problems) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(c.Log.Level)); err != nil || c.Log.Level == "" {
		p.add("log.level", c.Log.Level, ErrInvalidValue, "must be debug, info, warn or error")
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		p.add("log.format", c.Log.Format, ErrInvalidValue, "must be text or json")
	}
}

func (c *Config) validateClusters(p *problems) {
	names := map[string]int{}
	for i, cl := range c.Clusters {
		file := cl.Source
		if file == "" {
			file = c.Source
		}
		key := fmt.Sprintf("clusters[%d]", i)
		switch {
		case cl.Name == "":
			p.addIn(file, key+".name", "", ErrMissing, "cluster name is required")
		case !validClusterName(cl.Name):
			p.addIn(file, key+".name", cl.Name, ErrInvalidValue, "may contain only letters, digits, '_', '.' and '-'")
		default:
			if j, dup := names[cl.Name]; dup {
				p.addIn(file, key+".name", cl.Name, ErrDuplicate, "cluster name already used by clusters[%d]", j)
			} else {
				names[cl.Name] = i
			}
		}
		validateCluster(p, file, key, cl)
	}
}

func validateCluster(p *problems, file, key string, cl Cluster) {
	switch cl.ReplicationMode {
	case ReplicationGTID, ReplicationFile:
	default:
		p.addIn(file, key+".replication_mode", cl.ReplicationMode, ErrInvalidValue, "must be gtid or file")
	}
	if cl.MaxLag < 0 {
		p.addIn(file, key+".max_lag", cl.MaxLag.String(), ErrInvalidValue, "must not be negative")
	}
	if len(cl.Instances) < 2 {
		p.addIn(file, key+".instances", strconv.Itoa(len(cl.Instances)), ErrInvalidValue,
			"cluster %q needs at least 2 instances (a master and a replica)", cl.Name)
	}
	seen := map[string]int{}
	for j, in := range cl.Instances {
		ikey := fmt.Sprintf("%s.instances[%d]", key, j)
		if in.Address == "" {
			p.addIn(file, ikey+".address", "", ErrMissing, "instance address is required")
		} else if err := checkHostPort(in.Address); err != nil {
			p.addIn(file, ikey+".address", in.Address, ErrInvalidValue, "%s", msgOf(err))
		} else {
			norm := strings.ToLower(in.Address)
			if k, dup := seen[norm]; dup {
				p.addIn(file, ikey+".address", in.Address, ErrDuplicate, "already listed as %s.instances[%d]", key, k)
			} else {
				seen[norm] = j
			}
		}
		if in.CandidateMaster && in.NoMaster {
			p.addIn(file, ikey+".no_master", "true", ErrConflict, "candidate_master and no_master are both set")
		}
	}
	validateAgents(p, file, key, cl)
	for _, h := range []struct{ name, path string }{
		{"ip_failover", cl.Hooks.IPFailover}, {"ip_online_change", cl.Hooks.IPOnlineChange},
		{"shutdown", cl.Hooks.Shutdown}, {"report", cl.Hooks.Report},
		{"secondary_check", cl.Hooks.SecondaryCheck},
	} {
		if h.path == "" {
			continue
		}
		if err := checkExecutable(h.path); err != nil {
			p.addIn(file, key+".hooks."+h.name, h.path, ErrFile, "cluster %q: %s", cl.Name, msgOf(err))
		}
	}
}

// checkExecutable checks that a hook's program (its first word: MHA hooks
// may carry arguments) is an executable regular file.
func checkExecutable(hook string) error {
	fields := strings.Fields(hook)
	if len(fields) == 0 {
		return fmt.Errorf("%w: empty hook", ErrFile)
	}
	st, err := os.Stat(fields[0])
	if err != nil {
		return fmt.Errorf("%w: %v", ErrFile, unwrapPathErr(err))
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%w: not a regular file", ErrFile)
	}
	if st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%w: not executable", ErrFile)
	}
	return nil
}

// checkHostPort requires host:port with a non-empty host and a numeric port
// in 1..65535.
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: want host:port", ErrInvalidValue)
	}
	if host == "" {
		return fmt.Errorf("%w: missing host (want host:port)", ErrInvalidValue)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%w: port must be a number in 1..65535", ErrInvalidValue)
	}
	return nil
}

func positive(p *problems, key string, d time.Duration) {
	if d <= 0 {
		p.add(key, d.String(), ErrInvalidValue, "must be a positive duration")
	}
}

// msgOf strips the sentinel prefix ("invalid value: ...") from errors built
// by the helpers above; the sentinel is already carried by FieldError.Err.
func msgOf(err error) string {
	s := err.Error()
	for _, sentinel := range []error{ErrInvalidValue, ErrFile} {
		if rest, ok := strings.CutPrefix(s, sentinel.Error()+": "); ok {
			return rest
		}
	}
	return s
}

// unwrapPathErr drops the path from an *os.PathError, since FieldError
// already shows it as the value.
func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// validClusterName limits cluster names to [a-zA-Z0-9_.-], characters safe
// in URLs, file names and Raft keys.
func validClusterName(name string) bool {
	for _, r := range name {
		ok := (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') ||
			r == '_' || r == '.' || r == '-'
		if !ok {
			return false
		}
	}
	return name != ""
}

// unspecifiedHost reports whether host:port has an empty or wildcard host.
func unspecifiedHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// ipLiteralHost reports whether host:port has an IP address as its host.
func ipLiteralHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	return err == nil && net.ParseIP(host) != nil
}
