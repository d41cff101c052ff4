package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"time"
)

// MinTLSVersion is the oldest TLS version a controller accepts or offers,
// on the API and on raft.
const MinTLSVersion = tls.VersionTLS12

// APIServerTLS returns the HTTPS config built from api.tls_cert and
// api.tls_key, or nil when the API serves plain HTTP. Errors are
// FieldErrors naming the key and the file.
func (c *Config) APIServerTLS() (*tls.Config, error) {
	if !c.API.TLS() {
		return nil, nil
	}
	cert, err := c.loadKeyPair("api.tls_cert", c.API.TLSCert, "api.tls_key", c.API.TLSKey)
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: MinTLSVersion, Certificates: []tls.Certificate{cert}}, nil
}

// APIClientTLS returns the config this controller uses to verify another
// controller's HTTPS when it forwards a write to the leader: api.tls_ca as
// the trusted roots, or the system roots when it is not set.
func (c *Config) APIClientTLS() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: MinTLSVersion}
	if c.API.TLSCA == "" {
		return cfg, nil
	}
	pool, err := LoadCA(c.API.TLSCA)
	if err != nil {
		return nil, c.fileProblem("api.tls_ca", c.API.TLSCA, err)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// RaftTLSConfig returns the mutual TLS config of the raft transport, or nil
// when node.raft_tls_* are not set. The same certificate is served to
// peers that dial in and presented to peers this node dials; both sides
// must chain to node.raft_tls_ca, so a server without such a certificate
// can neither join the group nor receive its log.
func (c *Config) RaftTLSConfig() (*tls.Config, error) {
	n := c.Node
	if !n.RaftTLS() {
		return nil, nil
	}
	cert, err := c.loadKeyPair("node.raft_tls_cert", n.RaftTLSCert, "node.raft_tls_key", n.RaftTLSKey)
	if err != nil {
		return nil, err
	}
	pool, err := LoadCA(n.RaftTLSCA)
	if err != nil {
		return nil, c.fileProblem("node.raft_tls_ca", n.RaftTLSCA, err)
	}
	return &tls.Config{
		MinVersion:   MinTLSVersion,
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}, nil
}

// LoadCA reads a PEM CA bundle. The error names the file and says whether
// it could not be read or holds no certificate.
func LoadCA(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CA bundle %s: %w", path, unwrapPathErr(err))
	}
	certs, err := parseCerts(data)
	if err != nil {
		return nil, fmt.Errorf("CA bundle %s: %w", path, err)
	}
	pool := x509.NewCertPool()
	for _, cert := range certs {
		pool.AddCert(cert)
	}
	return pool, nil
}

// loadKeyPair reads a certificate and its key, naming the file at fault:
// an unreadable or malformed certificate or key, an expired certificate,
// or a key that does not match.
func (c *Config) loadKeyPair(certKey, certPath, keyKey, keyPath string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return tls.Certificate{}, c.fileProblem(certKey, certPath, unwrapPathErr(err))
	}
	certs, err := parseCerts(certPEM)
	if err != nil {
		return tls.Certificate{}, c.fileProblem(certKey, certPath, err)
	}
	if now := time.Now(); now.After(certs[0].NotAfter) {
		return tls.Certificate{}, c.fileProblem(certKey, certPath,
			fmt.Errorf("certificate expired on %s", certs[0].NotAfter.UTC().Format(time.RFC3339)))
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return tls.Certificate{}, c.fileProblem(keyKey, keyPath, unwrapPathErr(err))
	}
	if !hasPrivateKey(keyPEM) {
		return tls.Certificate{}, c.fileProblem(keyKey, keyPath, fmt.Errorf("no PEM private key found"))
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, c.fileProblem(keyKey, keyPath, fmt.Errorf("does not match %s %s: %w", certKey, certPath, err))
	}
	return pair, nil
}

// fileProblem is a FieldError for a TLS file of the run config.
func (c *Config) fileProblem(key, path string, err error) error {
	return &FieldError{File: c.Source, Key: key, Value: path, Message: err.Error(), Err: ErrFile}
}

// parseCerts returns every certificate in a PEM bundle; none is an error.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("invalid certificate: %w", err)
		}
		out = append(out, cert)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no PEM certificate found")
	}
	return out, nil
}

// hasPrivateKey reports whether data holds a PEM private key block (PKCS#1,
// PKCS#8 or SEC 1).
func hasPrivateKey(data []byte) bool {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return false
		}
		if strings.HasSuffix(block.Type, "PRIVATE KEY") {
			return true
		}
	}
}
