package api

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/tests/testpki"
)

// httpsClient trusts only ca, as a controller with api.tls_ca does.
func httpsClient(ca *testpki.CA) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12},
	}}
}

// tlsLeader starts a fake leader API over HTTPS with a certificate ca signed.
func tlsLeader(t *testing.T, ca *testpki.CA, l *recordingLeader) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(l)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "c2", "127.0.0.1").TLS(t)}, MinVersion: tls.VersionTLS12}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts
}

func TestForward_OverHTTPS(t *testing.T) {
	ca := testpki.NewCA(t, "api CA")
	leader := &recordingLeader{}
	ts := tlsLeader(t, ca, leader)
	if !strings.HasPrefix(ts.URL, "https://") {
		t.Fatalf("leader URL %s", ts.URL)
	}
	f := newFixture(t, func(c *Config) { c.Token = "s3cret" }, func(d *Deps) { d.Client = httpsClient(ca) })
	f.raft.setLeader("c2", "10.0.2.10:7000", false)
	f.state.setNode(fsm.NodeMeta{ID: "c2", HTTPAddr: ts.URL})

	rec := do(f.srv.Handler(), "POST", "/v1/clusters/app1/maintenance", `{"duration":"1h"}`,
		map[string]string{"Authorization": "Bearer s3cret"})
	if rec.Code != 200 || rec.Header().Get(ForwardedToHeader) != "c2" {
		t.Fatalf("status %d forwarded-to %q: %s", rec.Code, rec.Header().Get(ForwardedToHeader), rec.Body)
	}
	if leader.count() != 1 || leader.requests[0].Header.Get("Authorization") != "Bearer s3cret" || leader.requests[0].TLS == nil {
		t.Fatalf("leader got %d requests (want 1 over TLS with the token)", leader.count())
	}
}

func TestForward_HTTPSLeaderNotTrusted(t *testing.T) {
	leader := &recordingLeader{}
	ts := tlsLeader(t, testpki.NewCA(t, "leader CA"), leader)
	f := newFixture(t, nil, func(d *Deps) { d.Client = httpsClient(testpki.NewCA(t, "another CA")) })
	f.raft.setLeader("c2", "10.0.2.10:7000", false)
	f.state.setNode(fsm.NodeMeta{ID: "c2", HTTPAddr: ts.URL})
	rec := do(f.srv.Handler(), "POST", "/v1/clusters/app1/ack", `{}`, nil)
	if rec.Code != http.StatusBadGateway || !strings.Contains(rec.Body.String(), "certificate") {
		t.Fatalf("status %d, want 502 naming the certificate problem: %s", rec.Code, rec.Body)
	}
	if leader.count() != 0 {
		t.Fatalf("untrusted leader got %d requests", leader.count())
	}
}

func TestServe_HTTPS(t *testing.T) {
	ca := testpki.NewCA(t, "api CA")
	f := newFixture(t, func(c *Config) {
		c.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "c1", "127.0.0.1").TLS(t)}}
	}, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.srv.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	base := "https://" + ln.Addr().String()
	resp, err := httpsClient(ca).Get(base + "/healthz")
	if err != nil {
		t.Fatalf("GET over HTTPS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("status %d TLS %+v", resp.StatusCode, resp.TLS)
	}
	// TLS 1.1 and older are refused even though the config did not say so.
	old := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: ca.Pool(), MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}}}
	if resp, err := old.Get(base + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("a TLS 1.1 client was served")
	}
	// Plain HTTP gets no API answer.
	if resp, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP was served")
		}
	}
}
