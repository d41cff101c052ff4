package topology

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"
)

// Security review item 3: discovery followed report_host and logged in to
// whatever server it named with the admin account.
func TestOnlyConfigured_NeverDialsOthers(t *testing.T) {
	var dialled []string
	inner := func(_ context.Context, addr string) (*Conn, error) {
		dialled = append(dialled, addr)
		return nil, errors.New("test: no server")
	}
	dial := OnlyConfigured([]string{"10.0.0.1:3306", "DB2:3306"}, inner)
	for _, addr := range []string{"127.0.0.1:17999", "evil.example:3306", "10.0.0.1:3307"} {
		if _, err := dial(context.Background(), addr); !errors.Is(err, ErrNotConfigured) {
			t.Fatalf("%s: %v", addr, err)
		}
	}
	if len(dialled) != 0 {
		t.Fatalf("dialled unconfigured %v", dialled)
	}
	for _, addr := range []string{"10.0.0.1:3306", "db2:3306"} {
		if _, err := dial(context.Background(), addr); errors.Is(err, ErrNotConfigured) {
			t.Fatalf("configured %s refused", addr)
		}
	}
	if len(dialled) != 2 {
		t.Fatalf("dialled %v", dialled)
	}
	// Discover reports a refused address as unreachable, without dialling it.
	dialled = nil
	topo, err := Discover(context.Background(), []string{"evil.example:3306"}, dial, nil)
	if err != nil || len(dialled) != 0 || len(topo.Unreachable) != 1 || !errors.Is(topo.Unreachable[0].Err, ErrNotConfigured) {
		t.Fatalf("discover: %v dialled %v unreachable %+v", err, dialled, topo.Unreachable)
	}
}

func TestDriverConfig_NeverHandsOutMore(t *testing.T) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: "db.example"}
	c := driverConfig("10.0.0.1:3306", Credentials{User: "admin", Password: "pw", TLS: conf}, DefaultTimeouts())
	if c.AllowAllFiles || c.AllowCleartextPasswords || c.ServerPubKey != "" || c.TLS != conf || c.TLSConfig != "" {
		t.Fatalf("driver config: allowAllFiles=%t cleartext=%t pubkey=%q tls=%v tlsConfig=%q",
			c.AllowAllFiles, c.AllowCleartextPasswords, c.ServerPubKey, c.TLS, c.TLSConfig)
	}
	if plain := driverConfig("10.0.0.1:3306", Credentials{User: "admin"}, DefaultTimeouts()); plain.TLS != nil {
		t.Fatal("TLS without a config")
	}
}
