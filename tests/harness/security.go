package harness

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/quorumha/quorumha/tests/testpki"
)

// securityFiles are the secret and TLS files shared by a group's
// controllers; empty fields are not configured.
type securityFiles struct {
	gossipKey, readToken string
	tls                  testpki.Files
	// raft is raft-only mutual TLS for groups on network namespaces
	// without GroupOptions.TLS: run refuses plain raft on a network address.
	raft testpki.Files
}

// writeSecurityFiles writes the token, gossip key and TLS files the options
// ask for, mode 0600 as run requires, and prepares the group's client.
func (g *Group) writeSecurityFiles() {
	write := func(name string, data []byte) string {
		p := filepath.Join(g.base, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			g.t.Fatalf("write %s: %v", name, err)
		}
		return p
	}
	if g.opts.Token != "" {
		g.TokenFile = write("api.token", []byte(g.opts.Token+"\n"))
	}
	if g.opts.ReadToken != "" {
		g.sec.readToken = write("read.token", []byte(g.opts.ReadToken+"\n"))
	}
	if g.opts.Net != nil {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			g.t.Fatalf("gossip key: %v", err)
		}
		g.sec.gossipKey = write("gossip.key", []byte(base64.StdEncoding.EncodeToString(key)+"\n"))
	}
	if !g.opts.TLS {
		if g.opts.Net != nil {
			hosts := []string{"127.0.0.1"}
			for _, z := range g.opts.Net.Zones {
				hosts = append(hosts, z.IP)
			}
			ca := testpki.NewCA(g.t, "quorumha test raft CA")
			g.sec.raft = testpki.WriteFiles(g.t, g.base, "raft", ca, ca.Issue(g.t, "controller", hosts...))
		}
		return
	}
	hosts := []string{"127.0.0.1"}
	for _, c := range g.Nodes {
		if c.zone != nil {
			hosts = append(hosts, c.zone.IP)
		}
	}
	ca := testpki.NewCA(g.t, "quorumha test group CA")
	g.sec.tls = testpki.WriteFiles(g.t, g.base, "controller", ca, ca.Issue(g.t, "controller", hosts...))
	g.CAFile = g.sec.tls.CA
	g.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12},
	}}
}

// securityYAML is the node-section lines (gossip key, raft TLS) and the
// api section the group's security options produce.
func (g *Group) securityYAML() string {
	var node, api strings.Builder
	if g.sec.gossipKey != "" {
		fmt.Fprintf(&node, "  gossip_key_file: %s\n", g.sec.gossipKey)
	}
	if g.TokenFile != "" {
		fmt.Fprintf(&api, "  token_file: %s\n", g.TokenFile)
	}
	if g.sec.readToken != "" {
		fmt.Fprintf(&api, "  read_token_file: %s\n", g.sec.readToken)
	}
	if f := g.sec.raft; f.CA != "" {
		fmt.Fprintf(&node, "  raft_tls_cert: %s\n  raft_tls_key: %s\n  raft_tls_ca: %s\n", f.Cert, f.Key, f.CA)
	}
	if f := g.sec.tls; f.CA != "" {
		fmt.Fprintf(&node, "  raft_tls_cert: %s\n  raft_tls_key: %s\n  raft_tls_ca: %s\n", f.Cert, f.Key, f.CA)
		fmt.Fprintf(&api, "  tls_cert: %s\n  tls_key: %s\n  tls_ca: %s\n", f.Cert, f.Key, f.CA)
	}
	out := node.String()
	if api.Len() > 0 {
		out += "api:\n" + api.String()
	}
	return out
}

// Client is the HTTP client that trusts the group's CA (the default client
// without TLS).
func (g *Group) Client() *http.Client { return g.client }
