package controller

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/quorumha/quorumha/config"
)

// tlsSetup is the TLS material run wires into the API and raft, built once
// from the config (ValidateForRun has already loaded every file once, so a
// failure here means a file changed in between).
type tlsSetup struct {
	apiServer *tls.Config // nil: plain HTTP
	apiClient *tls.Config // verifies the leader's HTTPS when forwarding
	raft      *tls.Config // nil: plain TCP
}

func loadTLS(cfg *config.Config) (tlsSetup, error) {
	var s tlsSetup
	var err error
	if s.apiServer, err = cfg.APIServerTLS(); err != nil {
		return s, err
	}
	if s.apiClient, err = cfg.APIClientTLS(); err != nil {
		return s, err
	}
	if s.raft, err = cfg.RaftTLSConfig(); err != nil {
		return s, err
	}
	return s, nil
}

// advertisedHTTP is the API address this controller records in the
// replicated state for followers to forward writes to: host:port for plain
// HTTP (as before TLS existed), https://host:port when it serves HTTPS, so
// the scheme travels with the address.
func advertisedHTTP(cfg *config.Config) string {
	if cfg.API.TLS() {
		return "https://" + cfg.Node.HTTPAddr
	}
	return cfg.Node.HTTPAddr
}

// forwardClient is the HTTP client followers forward writes with; it
// trusts api.tls_ca (or the system roots).
func forwardClient(conf *tls.Config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = conf
	tr.Proxy = nil // HTTP_PROXY must never see the forwarded token
	return &http.Client{Timeout: 30 * time.Second, Transport: tr}
}

// warnInsecure logs, once at start, every protection the config turned off
// where it matters: ValidateForRun refused these unless an insecure_* key
// said so, and the log is where an auditor will look.
func warnInsecure(cfg *config.Config, logger *slog.Logger) {
	n, a := cfg.Node, cfg.API
	if a.Token == "" && !config.IsLoopback(n.HTTPAddr) {
		logger.Warn("api.insecure_no_token: the HTTP API accepts writes (failover, switchover) from anyone who reaches it",
			"http_addr", n.HTTPAddr)
	}
	if n.GossipAddr != "" && n.GossipKeyFile == "" && !config.IsLoopback(n.GossipAddr) {
		logger.Warn("node.insecure_no_gossip_key: gossip is unencrypted and unauthenticated; anyone on the network can send verdicts",
			"gossip_addr", n.GossipAddr)
	}
	if !a.TLS() && !config.IsLoopback(n.HTTPAddr) {
		logger.Warn("the HTTP API is plain HTTP on a network address: tokens cross the network in clear; set api.tls_cert and api.tls_key",
			"http_addr", n.HTTPAddr)
	}
	if !n.RaftTLS() && !config.IsLoopback(n.RaftAddr) {
		logger.Warn("node.insecure_no_raft_tls: raft runs over plain TCP on a network address: anyone who reaches it can read the replicated state and speak raft to the group; set node.raft_tls_cert, node.raft_tls_key and node.raft_tls_ca",
			"raft_addr", n.RaftAddr)
	}
}

// tlsSummary is the "tls" attribute of the start-up log line.
func tlsSummary(s tlsSetup) string {
	return fmt.Sprintf("api=%t raft=%t", s.apiServer != nil, s.raft != nil)
}
