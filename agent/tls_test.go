package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	ca, caKey := newCA(t, "test CA")
	other, otherKey := newCA(t, "other CA")
	p := testPKI{caFile: filepath.Join(dir, "ca.pem")}
	writePEM(t, p.caFile, "CERTIFICATE", ca.Raw)
	p.serverCert, p.serverKey = issue(t, dir, "server", ca, caKey, x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = issue(t, dir, "client", ca, caKey, x509.ExtKeyUsageClientAuth)
	p.otherCert, p.otherKey = issue(t, dir, "other", other, otherKey, x509.ExtKeyUsageClientAuth)
	return p
}

func newCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// issue signs a leaf certificate for 127.0.0.1 and writes name.pem and
// name-key.pem.
func issue(t *testing.T, dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, usage x509.ExtKeyUsage) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
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
