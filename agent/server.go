package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"
)

// Config is what the agent needs, as plain values (config.Agent, once
// loaded and validated, converts to it).
type Config struct {
	// Listen is the TCP address to serve on, e.g. 10.0.1.20:7080.
	Listen string
	// BinlogDir is the directory holding the server's binlog files.
	BinlogDir string
	// BinlogIndex is the binlog index file; "" means the single *.index
	// file in BinlogDir.
	BinlogIndex string
	// Token, when set, must come as "Authorization: Bearer TOKEN" on every
	// /v1 request.
	Token string
	// TLSCert and TLSKey serve HTTPS; with ClientCA, clients must present a
	// certificate signed by it (mutual TLS).
	TLSCert, TLSKey, ClientCA string
	// PIDFile is the database server's pid file; when set, Tail says
	// whether the server is running.
	PIDFile string
	// ReachUser is the account GET /v1/reach's check logs in as, with no
	// password, after the greeting; "" means DefaultReachUser. It need
	// not exist (reach_login.go says why the check logs in).
	ReachUser string
	// InsecureNoAuth allows serving with neither a token nor mutual TLS,
	// for tests and demos only.
	InsecureNoAuth bool
	// Fence, when set, makes the agent hold its master's quorum lease and
	// fence the server when it lapses (lease.go, fence.go).
	Fence *FenceConfig
}

// ErrNoAuth means a Config with neither a token nor mutual TLS, and without
// InsecureNoAuth: anyone who reaches the port could read every binlog.
var ErrNoAuth = errors.New("no authentication configured: set a token file or tls_cert, tls_key and client_ca (or insecure_no_auth for tests)")

// shutdownTimeout bounds how long Run lets requests in flight (a large raw
// download) finish once its context ends.
const shutdownTimeout = 10 * time.Second

// Server is the agent's HTTP server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	dir     *binlogDir
	tls     *tls.Config
	handler http.Handler
	// fence is nil without Config.Fence.
	fence *fenceState
	proc  processWatch // GET /v1/server's memory of the process state
}

// New checks cfg (the binlog directory and index exist, some form of
// authentication is configured, the TLS files load) and builds the server.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mtls := cfg.TLSCert != "" && cfg.TLSKey != "" && cfg.ClientCA != ""
	if cfg.Token == "" && !mtls && !cfg.InsecureNoAuth {
		return nil, ErrNoAuth
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, errors.New("agent: tls_cert and tls_key must be set together")
	}
	if cfg.ClientCA != "" && cfg.TLSCert == "" {
		return nil, errors.New("agent: client_ca needs tls_cert and tls_key")
	}
	dir, err := newBinlogDir(cfg.BinlogDir, cfg.BinlogIndex, log)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if cfg.ReachUser == "" {
		cfg.ReachUser = DefaultReachUser
	}
	s := &Server{cfg: cfg, log: log, dir: dir}
	if cfg.TLSCert != "" {
		if s.tls, err = serverTLS(cfg); err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
	}
	if cfg.Token != "" && s.tls == nil {
		log.Warn("the bearer token travels in clear text without tls_cert/tls_key")
	}
	if cfg.Fence != nil {
		f := &sqlFencer{cfg: *cfg.Fence, log: log}
		if s.fence, err = newFenceState(*cfg.Fence, cfg.PIDFile, f, log.With("part", "fence")); err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
	}
	s.handler = s.routes()
	return s, nil
}

// serverTLS builds the TLS config: TLS 1.2 at least, and when a client CA
// is given, a client certificate it signed is required.
func serverTLS(cfg Config) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("tls_cert %s / tls_key %s: %w", cfg.TLSCert, cfg.TLSKey, err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if cfg.ClientCA != "" {
		pool, err := certPool(cfg.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("client_ca: %w", err)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// certPool reads PEM certificates from file.
func certPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", file)
	}
	return pool, nil
}

// Handler returns the HTTP handler (authentication included; TLS is the
// listener's), for tests and for embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// TLSConfig returns the server's TLS config, nil when it serves plain HTTP.
// Tests hand it to httptest.Server.
func (s *Server) TLSConfig() *tls.Config {
	if s.tls == nil {
		return nil
	}
	return s.tls.Clone()
}

// Run listens on cfg.Listen and serves until ctx ends, then shuts down
// gracefully.
func (s *Server) Run(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("agent: listen %s: %w", s.cfg.Listen, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln (wrapped in TLS when configured) until ctx ends, then
// lets requests in flight finish for up to shutdownTimeout. With fencing
// configured it runs the lease's enforcement loop meanwhile and waits for
// it before returning.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.fence != nil {
		fctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.fence.run(fctx)
		}()
		defer func() {
			cancel()
			<-done
		}()
	}
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		// No WriteTimeout: a raw range of a 1 GiB binlog over a slow link
		// takes as long as it takes; the client bounds it with its context.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:    func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	s.log.Info("agent listening", "addr", ln.Addr().String(), "tls", s.tls != nil,
		"mtls", s.tls != nil && s.tls.ClientCAs != nil, "token", s.cfg.Token != "",
		"binlog_dir", s.dir.dir, "binlog_index", s.dir.index)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("agent: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("agent: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("agent: serve: %w", err)
	}
	s.log.Info("agent stopped")
	return nil
}
