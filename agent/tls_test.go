package agent

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/tests/testpki"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, as PEM files in a temp dir; other is a client certificate
// from a CA the server does not trust.
type testPKI struct {
	caFile, serverCert, serverKey, clientCert, clientKey string
	otherCert, otherKey                                  string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	ca, other := testpki.NewCA(t, "test CA"), testpki.NewCA(t, "other CA")
	server := testpki.WriteFiles(t, dir, "server", ca, ca.Issue(t, "agent", "127.0.0.1"))
	client := testpki.WriteFiles(t, dir, "client", ca, ca.Issue(t, "controller"))
	foreign := testpki.WriteFiles(t, dir, "other", other, other.Issue(t, "intruder"))
	return testPKI{caFile: server.CA, serverCert: server.Cert, serverKey: server.Key,
		clientCert: client.Cert, clientKey: client.Key, otherCert: foreign.Cert, otherKey: foreign.Key}
}

// TestServer_MutualTLS serves through Serve on a real listener with
// tls_cert, tls_key and client_ca (no token): a client without a
// certificate, or with one from another CA, is refused in the handshake;
// one with a certificate from client_ca is served. Cancelling the context
// stops Serve.
func TestServer_MutualTLS(t *testing.T) {
	d := newTestDir(t)
	pki := newTestPKI(t)
	s, err := New(Config{BinlogDir: d.dir, BinlogIndex: d.index,
		TLSCert: pki.serverCert, TLSKey: pki.serverKey, ClientCA: pki.caFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	url := "https://" + ln.Addr().String()

	good, err := NewClient(url, ClientOptions{CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: pki.clientKey, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if files, err := good.Files(ctx); err != nil || len(files) != 2 {
		t.Errorf("client with a certificate from client_ca: %v, %v", files, err)
	}
	for name, o := range map[string]ClientOptions{
		"no certificate":              {CAFile: pki.caFile},
		"certificate from another CA": {CAFile: pki.caFile, CertFile: pki.otherCert, KeyFile: pki.otherKey},
	} {
		o.Timeout = 5 * time.Second
		c, err := NewClient(url, o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Files(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("%s: err = %v, want a TLS refusal", name, err)
		}
	}
	// Plain HTTP to the TLS port is not served either.
	if resp, err := http.Get("http://" + ln.Addr().String() + "/v1/binlogs"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP was served")
		}
	}
	// TLS below 1.2 is refused.
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11})
	if err == nil {
		conn.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not stop after its context ended")
	}
}
