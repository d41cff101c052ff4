package config

import (
	"crypto/tls"
	"fmt"
)

// DBTLS is TLS towards a cluster's MySQL/MariaDB servers
// (clusters[].tls). Every connection the controllers make to the cluster
// (probes, discovery, failover, switchover) then verifies the server's
// certificate against CA (the system roots when empty) and the name
// ServerName (the address's host when empty), and presents Cert/Key when
// set (servers that require X509).
type DBTLS struct {
	// Enabled turns TLS on with the system roots when no CA is given.
	Enabled bool `mapstructure:"enabled" json:"enabled,omitempty"`
	// CA is a PEM bundle the server certificates must chain to.
	CA string `mapstructure:"ca" json:"ca,omitempty"`
	// Cert and Key are this controller's client certificate and key.
	Cert string `mapstructure:"cert" json:"cert,omitempty"`
	Key  string `mapstructure:"key" json:"key,omitempty"`
	// ServerName overrides the name checked in the server certificates
	// (one name for every instance, e.g. a wildcard's).
	ServerName string `mapstructure:"server_name" json:"server_name,omitempty"`
}

// On reports whether TLS is configured for the cluster.
func (t DBTLS) On() bool { return t.Enabled || t.CA != "" || t.Cert != "" || t.ServerName != "" }

// ClusterTLS returns the TLS config for cluster i's database connections, or
// nil when clusters[i].tls is not set. Errors are FieldErrors naming the key
// and the file. The config never skips verification.
func (c *Config) ClusterTLS(i int) (*tls.Config, error) {
	t := c.Clusters[i].TLS
	if !t.On() {
		return nil, nil
	}
	key := fmt.Sprintf("clusters[%d].tls", i)
	conf := &tls.Config{MinVersion: MinTLSVersion, ServerName: t.ServerName}
	if t.CA != "" {
		pool, err := LoadCA(t.CA)
		if err != nil {
			return nil, c.fileProblem(key+".ca", t.CA, err)
		}
		conf.RootCAs = pool
	}
	if (t.Cert == "") != (t.Key == "") {
		return nil, &FieldError{File: c.Source, Key: key + ".cert", Value: t.Cert + t.Key, Message: "cert and key go together", Err: ErrConflict}
	}
	if t.Cert != "" {
		pair, err := c.loadKeyPair(key+".cert", t.Cert, key+".key", t.Key)
		if err != nil {
			return nil, err
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	return conf, nil
}
