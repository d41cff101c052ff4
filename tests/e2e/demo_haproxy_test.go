package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
	"github.com/quorumha/quorumha/tests/harness"
)

// The sandbox's HAProxy (issue 18): `sandbox up` starts haproxy in front of
// the servers when it is on PATH, from the config `proxy-config haproxy`
// renders, and records it in DIR/haproxy.json. These helpers let the demo
// test write through its write port before and after the failover.

// demoHAProxy is DIR/haproxy.json.
type demoHAProxy struct {
	Write string `json:"write"`
	Read  string `json:"read"`
	PID   int    `json:"pid"`
}

// sandboxHAProxy returns the haproxy `sandbox up` started in dir, or nil
// when haproxy is not installed (a failure under CI=true). Installed but
// missing from dir is a failure.
func sandboxHAProxy(t *testing.T, dir string) *demoHAProxy {
	t.Helper()
	if _, err := exec.LookPath("haproxy"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("haproxy not on PATH (%v): apt-get install haproxy", err)
		}
		t.Logf("haproxy not on PATH: the sandbox has no proxy to check")
		return nil
	}
	var h demoHAProxy
	readJSON(t, filepath.Join(dir, "haproxy.json"), &h)
	if h.Write == "" || h.Read == "" || h.PID == 0 {
		t.Fatalf("haproxy.json: %+v", h)
	}
	return &h
}

// writeThroughProxy inserts row id through addr as the application user and
// returns the port of the server that took it (@@port, read in the same
// connection, hence the same backend). The connection is fresh: HAProxy
// picks the server when it is opened.
func writeThroughProxy(ctx context.Context, addr string, id int) (int, error) {
	dsn := fmt.Sprintf("%s:%s@tcp(%s)/%s?timeout=3s&readTimeout=5s&writeTimeout=5s", sandbox.AppUser, sandbox.AppPassword, addr, sandbox.TestDB)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS via_proxy (id INT PRIMARY KEY)"); err != nil {
		return 0, err
	}
	if _, err := conn.ExecContext(ctx, "INSERT INTO via_proxy VALUES (?)", id); err != nil {
		return 0, err
	}
	var port int
	if err := conn.QueryRowContext(ctx, "SELECT @@port").Scan(&port); err != nil {
		return 0, err
	}
	return port, nil
}

// requireWriteLandsOn writes row id through the proxy until a write
// succeeds (clients reconnect after a failover) and checks the server that
// took it is master (host:port).
func requireWriteLandsOn(ctx context.Context, t *testing.T, h *demoHAProxy, id int, master string) {
	t.Helper()
	_, p, err := net.SplitHostPort(master)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := strconv.Atoi(p)
	var got int
	err = harness.Poll(ctx, 200*time.Millisecond, func() error {
		port, err := writeThroughProxy(ctx, h.Write, id)
		if err != nil {
			return err
		}
		got = port
		return nil
	})
	if err != nil {
		t.Fatalf("write %d through haproxy %s: %v", id, h.Write, err)
	}
	if got != want {
		t.Fatalf("write %d through haproxy %s landed on port %d, want the master %s", id, h.Write, got, master)
	}
	t.Logf("write %d through haproxy %s landed on the master %s", id, h.Write, master)
}

// requireProxyRowOn checks that row id of via_proxy (writeThroughProxy's
// table) is on the server at addr (host:port).
func requireProxyRowOn(ctx context.Context, t *testing.T, addr string, id int) {
	t.Helper()
	dsn := fmt.Sprintf("%s:%s@tcp(%s)/%s?timeout=3s&readTimeout=5s", sandbox.AppUser, sandbox.AppPassword, addr, sandbox.TestDB)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM via_proxy WHERE id = ?", id).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%s: row %d written through the proxy before the failover: count %d (%v), want 1", addr, id, n, err)
	}
}
