package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/quorumha/quorumha/config"
)

// Defaults of `quorumha proxy-config haproxy` (the write and read ports
// are Patroni's HAProxy template's, which operators know).
const (
	defaultProxyListen      = ":5000"
	defaultProxyReadListen  = ":5001"
	defaultProxyCheckListen = "127.0.0.1:8409"
)

// newProxyConfigCmd builds `quorumha proxy-config`: print a proxy's
// configuration for one cluster, so applications follow the master the
// controllers record.
func newProxyConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "proxy-config",
		Short: "Print a proxy configuration that routes applications to the recorded master",
	}
	cmd.AddCommand(newProxyConfigHAProxyCmd())
	return cmd
}

func newProxyConfigHAProxyCmd() *cobra.Command {
	var (
		path string
		opts haproxyOptions
	)
	cmd := &cobra.Command{
		Use:   "haproxy --config FILE --cluster NAME [--listen ADDR] [--read-listen ADDR] [--controllers HOST:PORT,...]",
		Short: "Print a haproxy.cfg (HAProxy 2.6+) for one cluster",
		Long: `haproxy prints a complete, commented haproxy.cfg for one cluster: a write
listener whose servers are the cluster's instances, each up only while the
controllers say it is the master (GET /v1/clusters/NAME/primary/ADDRESS), and a
read listener whose servers are up while a controller says they replicate
within the lag limit (GET /v1/clusters/NAME/replica/ADDRESS).

HAProxy asks the controllers through a local HTTP listener (--check-listen)
that balances over every controller in --controllers and retries another one
on a failed connection or a 503, so one controller down or cut off from the
group does not mark the master down. List every controller's HTTP address;
without --controllers only node.http_addr of the config is used.

When api.read_token_file is set, the read token is written into the output:
keep the file readable by HAProxy only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if path == "" || opts.Cluster == "" {
				return exitError{code: 2, err: errors.New("proxy-config haproxy: --config FILE and --cluster NAME are required")}
			}
			cfg, err := loadConfig(cmd, path)
			if err != nil {
				return err
			}
			if len(opts.Controllers) == 0 {
				if cfg.Node.HTTPAddr == "" {
					return exitError{code: 2, err: fmt.Errorf("proxy-config haproxy: no --controllers and %s has no node.http_addr", path)}
				}
				opts.Controllers = []string{cfg.Node.HTTPAddr}
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: only %s (node.http_addr) checks the instances: list every controller with --controllers for redundancy\n", cfg.Node.HTTPAddr)
			}
			out, err := renderHAProxy(cfg, opts)
			if err != nil {
				return exitError{code: 2, err: err}
			}
			_, err = io.WriteString(cmd.OutOrStdout(), out)
			return err
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "controller config file (clusters, api.read_token_file, api TLS)")
	cmd.Flags().StringVar(&opts.Cluster, "cluster", "", "cluster name")
	cmd.Flags().StringVar(&opts.Listen, "listen", defaultProxyListen, "address applications connect to for writes (the master)")
	cmd.Flags().StringVar(&opts.ReadListen, "read-listen", defaultProxyReadListen, "address applications connect to for reads (healthy replicas); \"\" for none")
	cmd.Flags().StringVar(&opts.CheckListen, "check-listen", defaultProxyCheckListen, "local address of the listener HAProxy's checks ask the controllers through")
	cmd.Flags().StringSliceVar(&opts.Controllers, "controllers", nil, "every controller's HTTP API host:port (default: the config's node.http_addr)")
	return cmd
}

// haproxyOptions are proxy-config haproxy's inputs besides the config.
type haproxyOptions struct {
	Cluster     string
	Listen      string
	ReadListen  string
	CheckListen string
	Controllers []string
}

// haproxyToken matches a token HAProxy's config reads verbatim inside
// double quotes (no quote, backslash, $ or space to escape).
var haproxyToken = regexp.MustCompile(`^[A-Za-z0-9._~+/=:@%!*,;?^|-]+$`)

// haproxyName turns an address into an HAProxy server name.
func haproxyName(addr string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		}
		return '_'
	}, addr)
}

// renderHAProxy is the haproxy.cfg for one cluster of cfg. It is a pure
// function of its inputs (golden-file tested).
func renderHAProxy(cfg *config.Config, o haproxyOptions) (string, error) {
	var cl *config.Cluster
	for i := range cfg.Clusters {
		if cfg.Clusters[i].Name == o.Cluster {
			cl = &cfg.Clusters[i]
		}
	}
	if cl == nil {
		return "", fmt.Errorf("proxy-config haproxy: --cluster %q: not a cluster of %s", o.Cluster, cfg.Source)
	}
	if len(cl.Instances) == 0 {
		return "", fmt.Errorf("proxy-config haproxy: cluster %q has no instances", o.Cluster)
	}
	for flag, addr := range map[string]string{"--listen": o.Listen, "--check-listen": o.CheckListen} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return "", fmt.Errorf("proxy-config haproxy: %s %q: %w", flag, addr, err)
		}
	}
	if o.ReadListen != "" {
		if _, _, err := net.SplitHostPort(o.ReadListen); err != nil {
			return "", fmt.Errorf("proxy-config haproxy: --read-listen %q: %w", o.ReadListen, err)
		}
	}
	for _, c := range o.Controllers {
		if _, _, err := net.SplitHostPort(c); err != nil {
			return "", fmt.Errorf("proxy-config haproxy: --controllers %q: %w", c, err)
		}
	}
	auth := ""
	if tok := cfg.API.ReadToken.Reveal(); tok != "" {
		if !haproxyToken.MatchString(tok) {
			return "", fmt.Errorf("proxy-config haproxy: the read token in %s (api.read_token_file) has characters HAProxy's config would need escaped", cfg.API.ReadTokenFile)
		}
		auth = ` hdr Authorization "Bearer ` + tok + `"`
	}
	ssl := ""
	if cfg.API.TLS() {
		ca := cfg.API.TLSCA
		if ca == "" {
			ca = "/etc/ssl/certs/ca-certificates.crt"
		}
		ssl = " ssl verify required ca-file " + ca
	}
	name := cl.Name
	pfx := haproxyName(name)

	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# haproxy.cfg for the quorumha cluster %q (HAProxy 2.6 or later),", name)
	w("# generated by `quorumha proxy-config haproxy --cluster %s`.", name)
	w("#")
	w("# Applications connect to %s for writes and %s for reads.", o.Listen, orNone(o.ReadListen))
	w("# Each instance is up on the write listener only while a controller with")
	w("# leader contact says it is the master the group recorded")
	w("#   GET /v1/clusters/%s/primary/<address>  200 = the master, else 503", name)
	w("# and on the read listener while a controller says it replicates (IO and")
	w("# SQL threads running) within the cluster's lag limit")
	w("#   GET /v1/clusters/%s/replica/<address>  200 = a healthy replica, else 503", name)
	w("#")
	w("# HAProxy gives a server one health check, so the checks do not ask one")
	w("# controller: they go to a local listener (quorumha_checks, %s)", o.CheckListen)
	w("# that balances over every controller and, on a refused connection, a")
	w("# timeout or a 503, retries another one. One controller down, or cut off")
	w("# from the group (it answers 503 for every address), thus never marks the")
	w("# master down; a master is down only when no controller reached calls it")
	w("# the master. Each instance's check lives in a backend of its own (the")
	w("# URI names the instance) and the listeners' servers track it.")
	w("#")
	w("# A demoted master's clients are cut (on-marked-down shutdown-sessions):")
	w("# they reconnect and reach the new master. HAProxy only routes: the")
	w("# controllers fence an old master (read_only, the agents' lease), so a")
	w("# proxy that is late or wrong cannot make two servers writable.")
	if auth != "" {
		w("#")
		w("# This file holds the controllers' read token (api.read_token_file):")
		w("# keep it readable by HAProxy only (chmod 0600).")
	}
	w("")
	w("global")
	w("    maxconn 4096")
	w("    log stdout format raw local0 info")
	w("")
	w("defaults")
	w("    log global")
	w("    mode tcp")
	w("    timeout connect 2s")
	w("    # Database sessions may idle long: keep them, with TCP keepalives.")
	w("    timeout client 8h")
	w("    timeout server 8h")
	w("    option clitcpka")
	w("    option srvtcpka")
	w("    # One check must outlast the retries over the controllers below.")
	w("    timeout check 3s")
	w("")
	w("# The controllers, asked by the checks below. /healthz (open, no token)")
	w("# keeps a stopped controller out of the rotation (not /readyz: during a")
	w("# leader election every controller is unready, while the health")
	w("# endpoints keep answering within api.leader_contact_window). A 503 from")
	w("# one (no leader contact, or really not the master) is retried on another.")
	w("listen quorumha_checks")
	w("    bind %s", o.CheckListen)
	w("    mode http")
	w("    option httplog")
	w("    # Checks run every 500ms: log only the failed ones.")
	w("    option dontlog-normal")
	w("    timeout client 5s")
	w("    timeout connect 300ms")
	w("    timeout server 1s")
	w("    # Only the health endpoints of this cluster pass, so the token the")
	w("    # checks carry cannot be used for anything else through here.")
	w("    http-request deny deny_status 403 unless { path_beg /v1/clusters/%s/primary/ } || { path_beg /v1/clusters/%s/replica/ }", name, name)
	w("    balance roundrobin")
	w("    retries %d", max(len(o.Controllers)-1, 1))
	w("    option redispatch 1")
	w("    retry-on conn-failure empty-response response-timeout 503")
	w("    option httpchk")
	w("    http-check send meth GET uri /healthz")
	w("    http-check expect status 200")
	w("    default-server inter 1s fall 2 rise 1%s", ssl)
	for _, c := range o.Controllers {
		w("    server %s %s check", haproxyName(c), c)
	}
	check := func(role string, in config.Instance) string {
		be := pfx + "_" + role + "_" + haproxyName(in.Address)
		w("")
		w("backend %s", be)
		w("    option httpchk")
		w("    http-check send meth GET uri /v1/clusters/%s/%s/%s%s", name, role, in.Address, auth)
		w("    http-check expect status 200")
		w("    # Never carries traffic: its check asks the controllers about %s.", in.Address)
		w("    # Every 500ms; once a check disagrees, the next comes after 200ms")
		w("    # (fastinter): a demoted master is out after about 0.7s, while one")
		w("    # lost check does not cut its sessions.")
		w("    server check %s check inter 500ms fastinter 200ms fall 2 rise 1", o.CheckListen)
		return be + "/check"
	}
	primary := map[string]string{}
	replica := map[string]string{}
	w("")
	w("# ---- one check per instance and role ----")
	for _, in := range cl.Instances {
		primary[in.Address] = check("primary", in)
	}
	if o.ReadListen != "" {
		for _, in := range cl.Instances {
			replica[in.Address] = check("replica", in)
		}
	}
	w("")
	w("# Writes: the one instance the controllers call the master. balance first")
	w("# keeps every client on one server should two ever pass their checks at")
	w("# once (a follower's copy of the state a moment behind the leader's).")
	w("listen %s_write", pfx)
	w("    bind %s", o.Listen)
	w("    mode tcp")
	w("    balance first")
	w("    default-server on-marked-down shutdown-sessions")
	for _, in := range cl.Instances {
		w("    server %s %s track %s", haproxyName(in.Address), in.Address, primary[in.Address])
	}
	if o.ReadListen != "" {
		w("")
		w("# Reads: healthy replicas; the master serves them only while none is.")
		w("listen %s_read", pfx)
		w("    bind %s", o.ReadListen)
		w("    mode tcp")
		w("    balance leastconn")
		w("    default-server on-marked-down shutdown-sessions")
		for _, in := range cl.Instances {
			w("    server %s %s track %s", haproxyName(in.Address), in.Address, replica[in.Address])
		}
		for _, in := range cl.Instances {
			w("    server %s_master %s backup track %s", haproxyName(in.Address), in.Address, primary[in.Address])
		}
	}
	return b.String(), nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
