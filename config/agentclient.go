package config

import (
	"fmt"
	"net/url"
	"os"
)

// AgentClient is how controllers reach a cluster's binlog agents (see
// `quorumha agent`): the agent of a dead master serves its binlog so a
// failover can apply what no replica received.
type AgentClient struct {
	// TokenFile holds the agents' bearer token.
	TokenFile string `mapstructure:"token_file" json:"token_file,omitempty"`
	// CAFile verifies the agents' HTTPS certificates (system roots if empty).
	CAFile string `mapstructure:"ca_file" json:"ca_file,omitempty"`
	// CertFile and KeyFile are this controller's client certificate when
	// the agents require mutual TLS.
	CertFile string `mapstructure:"cert_file" json:"cert_file,omitempty"`
	KeyFile  string `mapstructure:"key_file" json:"key_file,omitempty"`
	// InsecureHTTP lets run accept agent URLs of the form http:// on a
	// non-loopback host: the token and the salvaged binlog (which is then
	// applied to the new master with the admin account) would cross the
	// network in clear, and anyone in the path could inject transactions.
	InsecureHTTP bool `mapstructure:"insecure_http" json:"insecure_http,omitempty"`
	// Token is the content of TokenFile.
	Token Secret `mapstructure:"-" json:"token,omitempty"`
}

// readAgentSecrets resolves a cluster's agent paths and reads its token.
func (l *loader) readAgentSecrets(file, key string, cl *Cluster) {
	a := &cl.Agent
	for _, p := range []*string{&a.CAFile, &a.CertFile, &a.KeyFile} {
		*p = l.resolve(*p)
	}
	if a.TokenFile == "" {
		return
	}
	a.TokenFile = l.resolve(a.TokenFile)
	tok, err := readSecretFile(a.TokenFile)
	if err != nil {
		l.p.addIn(file, key+".agent.token_file", a.TokenFile, fileSentinel(err), "cluster %q: %v", cl.Name, err)
		return
	}
	a.Token = tok
}

// validateAgents checks the agent URLs of a cluster's instances and the
// files its agent client needs.
func validateAgents(p *problems, file, key string, cl Cluster) {
	for j, in := range cl.Instances {
		if in.Agent == "" {
			continue
		}
		ikey := fmt.Sprintf("%s.instances[%d].agent", key, j)
		u, err := url.Parse(in.Agent)
		switch {
		case err != nil:
			p.addIn(file, ikey, in.Agent, ErrInvalidValue, "not a URL: %v", err)
		case u.Scheme != "http" && u.Scheme != "https":
			p.addIn(file, ikey, in.Agent, ErrInvalidValue, "want http://host:port or https://host:port")
		case u.Port() == "" || u.Hostname() == "":
			p.addIn(file, ikey, in.Agent, ErrInvalidValue, "want host and port, e.g. https://10.0.1.20:7080")
		case u.Path != "" && u.Path != "/":
			p.addIn(file, ikey, in.Agent, ErrInvalidValue, "no path: the agent serves /v1/... at its root")
		}
	}
	a := cl.Agent
	if (a.CertFile == "") != (a.KeyFile == "") {
		p.addIn(file, key+".agent.cert_file", a.CertFile+a.KeyFile, ErrConflict, "cluster %q: agent cert_file and key_file go together", cl.Name)
	}
	for _, f := range []struct{ name, path string }{{"ca_file", a.CAFile}, {"cert_file", a.CertFile}, {"key_file", a.KeyFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			p.addIn(file, key+".agent."+f.name, f.path, ErrFile, "cluster %q: %v", cl.Name, unwrapPathErr(err))
		}
	}
	if a.KeyFile != "" {
		if err := checkSecretPerm(a.KeyFile); err != nil {
			p.addIn(file, key+".agent.key_file", a.KeyFile, fileSentinel(err), "cluster %q: %v", cl.Name, err)
		}
	}
}
