package agent

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
)

// mariaGreeting is the start of a MariaDB 10.11 handshake packet: protocol
// 10, the version string, a connection id and the first salt bytes.
func mariaGreeting() []byte {
	payload := append([]byte{10}, "5.5.5-10.11.6-MariaDB-0+deb12u1-log\x00"...)
	payload = append(payload, 0x2a, 0, 0, 0, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 0)
	return packet(0, payload)
}

func packet(seq byte, payload []byte) []byte {
	n := len(payload)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}, payload...)
}

// fakeMySQL listens on loopback and answers every connection with first
// (nil: accepts and never says anything), until the test ends.
func fakeMySQL(t *testing.T, first []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				if first != nil {
					_, _ = c.Write(first)
				}
				<-done
			})
		}
	})
	return ln.Addr().String()
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestParseGreeting(t *testing.T) {
	errPkt := append([]byte{0xff, 0x10, 0x04}, "Too many connections"...)
	errPkt41 := append([]byte{0xff, 0x69, 0x04, '#', 'H', 'Y', '0', '0', '0'}, "Host is blocked"...)
	tests := []struct {
		name    string
		in      []byte
		version string
		code    int
		wantErr bool
	}{
		{"mariadb", mariaGreeting()[4:], "5.5.5-10.11.6-MariaDB-0+deb12u1-log", 0, false},
		{"mysql", append([]byte{10}, "8.0.36\x00rest"...), "8.0.36", 0, false},
		{"too many connections", errPkt, "", 1040, false},
		{"error with sql state", errPkt41, "", 1129, false},
		{"protocol 9", append([]byte{9}, "4.0\x00"...), "", 0, true},
		{"no terminator", append([]byte{10}, "8.0.36"...), "", 0, true},
		{"empty version", []byte{10, 0, 1}, "", 0, true},
		{"http", []byte("HTTP/1.1 400"), "", 0, true},
		{"empty", nil, "", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := parseGreeting(tc.in)
			if (err != nil) != tc.wantErr || g.version != tc.version || g.errCode != tc.code {
				t.Errorf("parseGreeting = %+v, %v; want version %q code %d err %t", g, err, tc.version, tc.code, tc.wantErr)
			}
		})
	}
}

func TestServer_Reach(t *testing.T) {
	d := newTestDir(t)
	_, ts := newTestServer(t, d, nil)
	c := newTestClient(t, ts.URL)
	ctx := context.Background()

	greets := fakeMySQL(t, mariaGreeting())
	silent := fakeMySQL(t, nil)
	busy := fakeMySQL(t, packet(0, append([]byte{0xff, 0x10, 0x04}, "Too many connections"...)))
	garbage := fakeMySQL(t, []byte("SSH-2.0-OpenSSH_9.2\r\n"))
	closed := closedPort(t)

	tests := []struct {
		name      string
		addr      string
		reachable bool
		stage     string
		version   string
	}{
		{"greeting", greets, true, ReachStageOK, "5.5.5-10.11.6-MariaDB-0+deb12u1-log"},
		{"error packet is a live server", busy, true, ReachStageOK, ""},
		{"accepts but never greets", silent, false, ReachStageGreeting, ""},
		{"not mysql", garbage, false, ReachStageGreeting, ""},
		{"nothing listening", closed, false, ReachStageConnect, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := c.Reach(ctx, tc.addr, 300*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if r.Reachable != tc.reachable || r.Stage != tc.stage || r.ServerVersion != tc.version || r.Addr != tc.addr {
				t.Errorf("reach %s = %+v, want reachable=%t stage=%s version=%q", tc.addr, r, tc.reachable, tc.stage, tc.version)
			}
			if !r.Reachable && r.Error == "" {
				t.Errorf("unreachable without an error: %+v", r)
			}
		})
	}

	for _, q := range []string{"", "addr=nohost", "addr=:3306", "addr=h:0", "addr=h:99999", "addr=h:x",
		"addr=h:3306&timeout=1ms", "addr=h:3306&timeout=1m", "addr=h:3306&timeout=soon"} {
		if code, body := get(t, ts.URL+"/v1/reach?"+q, testToken); code != 400 {
			t.Errorf("GET /v1/reach?%s = %d %s, want 400", q, code, body)
		}
	}
	if code, _ := get(t, ts.URL+"/v1/reach?addr="+greets, ""); code != 401 {
		t.Errorf("GET /v1/reach without a token = %d, want 401", code)
	}
}

func TestServer_ServerProcess(t *testing.T) {
	d := newTestDir(t)
	_, ts := newTestServer(t, d, nil)
	ctx := context.Background()
	if p, err := newTestClient(t, ts.URL).ServerProcess(ctx); err != nil || p.Known {
		t.Errorf("no pid file configured: %+v, %v; want known=false", p, err)
	}

	pidFile := filepath.Join(t.TempDir(), "mysqld.pid")
	_, ts = newTestServer(t, d, func(c *Config) { c.PIDFile = pidFile })
	c := newTestClient(t, ts.URL)
	read := func() ServerProcess {
		t.Helper()
		p, err := c.ServerProcess(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := read(); !p.Known || p.Running || p.Error != "" {
		t.Errorf("no pid file: %+v, want known, not running", p)
	}
	live := startNamed(t, "mariadbd")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(live.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	first := read()
	if !first.Running || first.PID != live.Process.Pid || first.Since.IsZero() {
		t.Errorf("live mariadbd: %+v, want running pid %d with a since", first, live.Process.Pid)
	}
	if again := read(); !again.Since.Equal(first.Since) {
		t.Errorf("since moved without a change: %v then %v", first.Since, again.Since)
	}
	if err := live.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = live.Wait() // killed: the error is the signal
	if p := read(); p.Running || p.PID != live.Process.Pid || p.Error != "" || p.Since.Before(first.Since) {
		t.Errorf("killed mariadbd: %+v, want not running, same pid, a later since", p)
	}
	if err := os.WriteFile(pidFile, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p := read(); !p.Known || p.Running || !strings.Contains(p.Error, "not a process id") {
		t.Errorf("bad pid file: %+v, want an error", p)
	}
}

// TestReach_RealMariaDB checks the greeting parser against a real server.
func TestReach_RealMariaDB(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a MariaDB server")
	}
	sb := sandbox.New(t, sandbox.Options{Replicas: -1})
	r := checkReach(context.Background(), &net.Dialer{}, sb.Instance(0).Addr(), 2*time.Second, DefaultReachUser)
	if !r.Reachable || r.Stage != ReachStageOK || !strings.Contains(r.ServerVersion, "MariaDB") {
		t.Errorf("reach of a live MariaDB = %+v, want ok with a MariaDB version", r)
	}
	if !strings.HasPrefix(r.Login, LoginDenied+": error 1045") {
		t.Errorf("reach of a live MariaDB: login %q, want the account denied (1045)", r.Login)
	}
	if err := sb.Kill(0); err != nil {
		t.Fatal(err)
	}
	if r := checkReach(context.Background(), &net.Dialer{}, sb.Instance(0).Addr(), 2*time.Second, DefaultReachUser); r.Reachable || r.Stage != ReachStageConnect {
		t.Errorf("reach of a killed MariaDB = %+v, want connect refused", r)
	}
}

// TestServerProcess_Zombie: a killed server its parent has not reaped yet
// is not running, though kill(pid, 0) still succeeds.
func TestServerProcess_Zombie(t *testing.T) {
	cmd := startNamed(t, "mariadbd")
	pidFile := filepath.Join(t.TempDir(), "mysqld.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, running, err := serverProcess(pidFile); err != nil || !running {
		t.Fatalf("live: running=%t err=%v", running, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Not waited for: a zombie until the cleanup reaps it. Poll /proc
	// until the kernel has made it one.
	deadline := time.Now().Add(10 * time.Second)
	for !zombie(cmd.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatal("the killed process never showed as a zombie")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, running, err := serverProcess(pidFile); err != nil || running {
		t.Errorf("zombie: running=%t err=%v, want not running", running, err)
	}
}
