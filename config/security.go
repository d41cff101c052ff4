package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// validateRunSecurity adds what run refuses for security's sake: TLS files
// that do not load, an API or gossip port reachable from the network with
// no authentication (unless an insecure_* key accepts that), and a config
// file holding a password while its group or others can read it.
func (c *Config) validateRunSecurity(p *problems) {
	for _, build := range []func() error{
		func() error { _, err := c.APIServerTLS(); return err },
		func() error { _, err := c.APIClientTLS(); return err },
		func() error { _, err := c.RaftTLSConfig(); return err },
	} {
		if err := build(); err != nil {
			p.errs = append(p.errs, err)
		}
	}
	n, a := c.Node, c.API
	if n.HTTPAddr != "" && !IsLoopback(n.HTTPAddr) && a.Token == "" && !a.InsecureNoToken {
		p.add("node.http_addr", n.HTTPAddr, ErrInsecure,
			"not a loopback address and api.token_file is not set: anyone who reaches this port could fail a cluster over; set api.token_file (or api.insecure_no_token: true to accept the risk)")
	}
	if n.GossipAddr != "" && !IsLoopback(n.GossipAddr) && n.GossipKeyFile == "" && !n.InsecureNoGossipKey {
		p.add("node.gossip_addr", n.GossipAddr, ErrInsecure,
			"not a loopback address and node.gossip_key_file is not set: anyone on the network could send \"master down\" verdicts; set node.gossip_key_file (or node.insecure_no_gossip_key: true to accept the risk)")
	}
	if n.RaftAddr != "" && !IsLoopback(n.RaftAddr) && !n.RaftTLS() && !n.InsecureNoRaftTLS {
		p.add("node.raft_addr", n.RaftAddr, ErrInsecure,
			"not a loopback address and node.raft_tls_cert/key/ca are not set: anyone who reaches this port could read the replicated state and speak raft to the group; set node.raft_tls_cert, node.raft_tls_key and node.raft_tls_ca (or node.insecure_no_raft_tls: true to accept the risk)")
	}
	for i, cl := range c.Clusters {
		file := cl.Source
		if file == "" {
			file = c.Source
		}
		for j, in := range cl.Instances {
			u, err := url.Parse(in.Agent)
			if in.Agent == "" || err != nil || u.Scheme != "http" || cl.Agent.InsecureHTTP || isLoopbackHost(u.Hostname()) {
				continue
			}
			p.addIn(file, fmt.Sprintf("clusters[%d].instances[%d].agent", i, j), in.Agent, ErrInsecure,
				"cluster %q: plain http:// agent on a network address: the agent token and the salvaged binlog, which is applied to the new master with the admin account, would cross the network in clear; use https:// (or clusters[%d].agent.insecure_http: true to accept the risk)", cl.Name, i)
		}
		if _, err := c.ClusterTLS(i); err != nil {
			p.errs = append(p.errs, err)
		}
	}
	c.validateInlineSecrets(p)
}

// isLoopbackHost is IsLoopback for a bare host.
func isLoopbackHost(host string) bool {
	return IsLoopback(net.JoinHostPort(host, "0"))
}

// validateInlineSecrets refuses a password written in a config file that
// its group or others can read: the file is then a secret file too.
func (c *Config) validateInlineSecrets(p *problems) {
	for i, cl := range c.Clusters {
		file := cl.Source
		if file == "" {
			file = c.Source
		}
		if file == "" || len(cl.InlineSecrets) == 0 {
			continue
		}
		err := checkSecretPerm(file)
		if err == nil {
			continue
		}
		key := fmt.Sprintf("clusters[%d].%s", i, cl.InlineSecrets[0])
		p.addIn(file, key, file, ErrSecretPerm,
			"cluster %q: %s written in the config file, which is a %v; or move it to %s_file or $%sCLUSTERS_%s_%s",
			cl.Name, strings.Join(cl.InlineSecrets, " and "), err, cl.InlineSecrets[0],
			EnvPrefix, envClusterName(cl.Name), strings.ToUpper(cl.InlineSecrets[0]))
	}
}

// IsLoopback reports whether host:port names this machine only
// (127.0.0.0/8, ::1 or localhost), where no other machine can connect.
func IsLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
