package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const testToken = "s3cret-token"

// testDir is a binlog directory of two synthetic files, an index naming
// them (one relative, one absolute entry, as servers write both), and a
// secret file next to the directory that must never be served.
type testDir struct {
	dir, index, secret string
	f1                 mariaFile
	f2                 []byte
}

const secretText = "root:x:0:0:do-not-serve"

func newTestDir(t *testing.T) testDir {
	t.Helper()
	base := t.TempDir()
	d := testDir{dir: filepath.Join(base, "binlogs"), secret: filepath.Join(base, "secret.txt")}
	if err := os.Mkdir(d.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d.f1 = newMariaFile(t)
	b := newBinlog(t, "10.11.19-MariaDB-log", true)
	b.mariaGTIDList([3]uint64{0, 1, 102}, [3]uint64{1, 2, 6})
	b.mariaGTID(0, 103, false)
	b.rows(19, 20)
	b.rows(23, 20)
	b.xid(9)
	b.mariaGTID(0, 104, false) // unterminated: the server is mid-write
	b.rows(19, 20)
	d.f2 = b.bytes()
	write := func(p string, data []byte) {
		t.Helper()
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(d.dir, "mysql-bin.000001"), d.f1.data)
	write(filepath.Join(d.dir, "mysql-bin.000002"), d.f2)
	write(filepath.Join(d.dir, "unlisted.000009"), d.f2)
	write(d.secret, []byte(secretText))
	// A link out of the directory, listed in the index: still refused.
	if err := os.Symlink(d.secret, filepath.Join(d.dir, "mysql-bin.000003")); err != nil {
		t.Fatal(err)
	}
	d.index = filepath.Join(d.dir, "mysql-bin.index")
	write(d.index, []byte("./mysql-bin.000001\n./mysql-bin.000003\n"+filepath.Join(d.dir, "mysql-bin.000002")+"\n"))
	return d
}

// newTestServer serves d with a token over plain HTTP.
func newTestServer(t *testing.T, d testDir, mod func(*Config)) (*Server, *httptest.Server) {
	t.Helper()
	cfg := Config{Listen: "127.0.0.1:0", BinlogDir: d.dir, BinlogIndex: d.index, Token: testToken}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts
}

func newTestClient(t *testing.T, url string) *Client {
	t.Helper()
	c, err := NewClient(url, ClientOptions{Token: testToken, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// get sends a GET with the given bearer token ("" for none) and returns
// the status and body.
func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestServer_TokenAuth(t *testing.T) {
	_, ts := newTestServer(t, newTestDir(t), nil)
	for _, path := range []string{"/v1/binlogs", "/v1/tail", "/v1/binlogs/mysql-bin.000001/scan", "/v1/binlogs/mysql-bin.000001/raw"} {
		for _, tc := range []struct {
			token string
			want  int
		}{{"", 401}, {"wrong", 401}, {testToken + "x", 401}, {testToken, 200}} {
			code, body := get(t, ts.URL+path, tc.token)
			if code != tc.want {
				t.Errorf("%s with token %q: %d %s, want %d", path, tc.token, code, body, tc.want)
			}
			if code == 401 && !strings.Contains(body, `"error"`) {
				t.Errorf("%s: 401 body %q is not a JSON error", path, body)
			}
		}
	}
	if code, body := get(t, ts.URL+"/healthz", ""); code != 200 || body != "ok\n" {
		t.Errorf("/healthz without a token: %d %q", code, body)
	}
	c, err := NewClient(ts.URL, ClientOptions{Token: "wrong"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Files(context.Background())
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 401 || !strings.Contains(err.Error(), "invalid bearer token") {
		t.Errorf("client with a wrong token: %v", err)
	}
}

func TestServer_Files(t *testing.T) {
	d := newTestDir(t)
	_, ts := newTestServer(t, d, nil)
	code, body := get(t, ts.URL+"/v1/binlogs", testToken)
	var list FileList
	if code != 200 || json.Unmarshal([]byte(body), &list) != nil {
		t.Fatalf("%d %s", code, body)
	}
	want := []FileInfo{{"mysql-bin.000001", int64(len(d.f1.data))}, {"mysql-bin.000002", int64(len(d.f2))}}
	if list.Dir == "" || len(list.Files) != 2 || list.Files[0] != want[0] || list.Files[1] != want[1] {
		t.Errorf("list = %+v, want %+v (the link out of the dir left out)", list, want)
	}
	files, err := newTestClient(t, ts.URL).Files(context.Background())
	if err != nil || len(files) != 2 {
		t.Errorf("client Files: %v, %v", files, err)
	}
}

// TestServer_Traversal tries to read files other than the listed binlogs:
// relative paths, URL-encoded slashes and dots, absolute paths, a link out
// of the directory, a file in the directory the index does not list.
func TestServer_Traversal(t *testing.T) {
	d := newTestDir(t)
	_, ts := newTestServer(t, d, nil)
	rel, err := filepath.Rel(d.dir, d.secret)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		want int
	}{
		{"..%2Fsecret.txt", 400},
		{strings.ReplaceAll(rel, "/", "%2F"), 400},
		{"%2E%2E%2Fsecret.txt", 400},
		{"%2E%2E", 400},
		{"mysql-bin.000001%2F..%2F..%2Fsecret.txt", 400},
		{strings.ReplaceAll(d.secret, "/", "%2F"), 400},
		{"..%5Csecret.txt", 400},
		{"mysql-bin.000003", 404}, // listed link to the secret
		{"unlisted.000009", 404},
		{"secret.txt", 404},
		{"mysql-bin.index", 404},
	} {
		for _, ep := range []string{"raw", "scan"} {
			code, body := get(t, ts.URL+"/v1/binlogs/"+tc.name+"/"+ep, testToken)
			if code != tc.want {
				t.Errorf("%s/%s: %d %s, want %d", tc.name, ep, code, body, tc.want)
			}
			if strings.Contains(body, "do-not-serve") {
				t.Fatalf("%s/%s served the secret file", tc.name, ep)
			}
		}
	}
	// An index entry outside the directory is not listed, so not served,
	// and does not stop the others from being served.
	if err := os.WriteFile(d.index, []byte("./mysql-bin.000001\n"+d.secret+"\n../secret.txt\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/binlogs/secret.txt/raw", "/v1/binlogs/secret.txt/scan"} {
		if code, body := get(t, ts.URL+path, testToken); code != 404 || strings.Contains(body, "do-not-serve") {
			t.Errorf("%s with the secret in the index: %d %s, want 404", path, code, body)
		}
	}
	if code, body := get(t, ts.URL+"/v1/binlogs", testToken); code != 200 || strings.Contains(body, "secret") || !strings.Contains(body, "mysql-bin.000001") {
		t.Errorf("/v1/binlogs with the secret in the index: %d %s", code, body)
	}
	// Unencoded dot segments are cleaned by the router and never reach a
	// binlog handler.
	code, body := get(t, ts.URL+"/v1/binlogs/../../secret.txt/raw", testToken)
	if code == 200 || strings.Contains(body, "do-not-serve") {
		t.Errorf("dot segments: %d %s", code, body)
	}
	_, err = newTestClient(t, ts.URL).Raw(context.Background(), "../secret.txt", 0, 0, io.Discard)
	if !IsStatus(err, 400) {
		t.Errorf("client Raw(../secret.txt): %v, want a 400", err)
	}
}

func TestServer_Raw(t *testing.T) {
	d := newTestDir(t)
	_, ts := newTestServer(t, d, nil)
	data := d.f1.data
	size := int64(len(data))
	base := ts.URL + "/v1/binlogs/mysql-bin.000001/raw"
	for _, tc := range []struct {
		query    string
		want     int
		from, to int64
	}{
		{"", 200, 0, size},
		{"?from=4&to=100", 200, 4, 100},
		{"?from=" + strconv.FormatInt(d.f1.s2, 10), 200, d.f1.s2, size},
		{"?from=" + strconv.FormatInt(size, 10), 200, size, size},
		{"?from=7&to=7", 200, 7, 7},
		{"?from=10&to=5", 400, 0, 0},
		{"?from=-1", 400, 0, 0},
		{"?from=abc", 400, 0, 0},
		{"?to=" + strconv.FormatInt(size+1, 10), 416, 0, 0},
		{"?from=" + strconv.FormatInt(size+1, 10), 416, 0, 0},
	} {
		code, body := get(t, base+tc.query, testToken)
		if code != tc.want {
			t.Errorf("raw%s: %d %s, want %d", tc.query, code, body, tc.want)
			continue
		}
		if code == 200 && body != string(data[tc.from:tc.to]) {
			t.Errorf("raw%s: %d bytes, want bytes [%d,%d)", tc.query, len(body), tc.from, tc.to)
		}
	}
	c := newTestClient(t, ts.URL)
	var buf bytes.Buffer
	n, err := c.Raw(context.Background(), "mysql-bin.000001", d.f1.s2, d.f1.e2, &buf)
	if err != nil || n != d.f1.e2-d.f1.s2 || !bytes.Equal(buf.Bytes(), data[d.f1.s2:d.f1.e2]) {
		t.Errorf("client Raw: n=%d err=%v", n, err)
	}
	buf.Reset()
	if n, err := c.Raw(context.Background(), "mysql-bin.000001", 0, 0, &buf); err != nil || n != size {
		t.Errorf("client Raw to the end: n=%d err=%v", n, err)
	}
	if _, err := c.Raw(context.Background(), "mysql-bin.000001", 0, size+5, io.Discard); !IsStatus(err, 416) {
		t.Errorf("client Raw past the end: %v, want 416", err)
	}
}

func TestServer_Scan(t *testing.T) {
	d := newTestDir(t)
	_, ts := newTestServer(t, d, nil)
	c := newTestClient(t, ts.URL)
	ctx := context.Background()
	res, err := c.Scan(ctx, "mysql-bin.000001", 0)
	if err != nil || len(res.Transactions) != 3 || res.GTIDList != "0-1-100,1-2-5" || res.HeaderEnd != d.f1.header {
		t.Fatalf("scan: %+v, %v", res, err)
	}
	res, err = c.Scan(ctx, "mysql-bin.000001", d.f1.s3)
	if err != nil || len(res.Transactions) != 1 || res.Transactions[0].GTID != "1-2-6" || res.CompleteEnd != d.f1.e3 {
		t.Errorf("scan from %d: %+v, %v", d.f1.s3, res, err)
	}
	_, err = c.Scan(ctx, "mysql-bin.000001", d.f1.s3+3)
	if !IsStatus(err, 400) || !strings.Contains(err.Error(), strconv.FormatInt(d.f1.s3+3, 10)) {
		t.Errorf("scan from a non-boundary: %v, want 400 naming the offset", err)
	}
	res, err = c.Scan(ctx, "mysql-bin.000002", 0)
	if err != nil || len(res.Transactions) != 1 || res.IncompleteBytes == 0 {
		t.Errorf("scan of a file mid-write: %+v, %v", res, err)
	}
	code, body := get(t, ts.URL+"/v1/binlogs/mysql-bin.000001/scan?from=x", testToken)
	if code != 400 || !strings.Contains(body, `"error"`) {
		t.Errorf("from=x: %d %s", code, body)
	}
	// An empty transaction list is [] in JSON, not null.
	code, body = get(t, ts.URL+"/v1/binlogs/mysql-bin.000001/scan?from="+strconv.FormatInt(d.f1.e3, 10), testToken)
	if code != 200 || !strings.Contains(body, `"transactions":[]`) {
		t.Errorf("scan from the end: %d %s", code, body)
	}
	code, body = get(t, ts.URL+"/v1/nothing", testToken)
	if code != 404 || !strings.Contains(body, `"error"`) {
		t.Errorf("unknown endpoint: %d %s", code, body)
	}
	// missing_for keeps what the asker's position lacks.
	all, err := c.Scan(ctx, "mysql-bin.000001", 0)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, tr := range all.Transactions[1:] {
		want = append(want, tr.GTID)
	}
	res, err = c.ScanMissing(ctx, "mysql-bin.000001", 0, all.Transactions[0].GTID)
	var got []string
	for _, tr := range res.Transactions {
		got = append(got, tr.GTID)
	}
	if err != nil || strings.Join(got, ",") != strings.Join(want, ",") || res.Omitted != 1 {
		t.Errorf("missing_for=%s: %v omitted %d (%v), want %v", all.Transactions[0].GTID, got, res.Omitted, err, want)
	}
	if _, err := c.ScanMissing(ctx, "mysql-bin.000001", 0, "not-a-position"); !IsStatus(err, 400) {
		t.Errorf("bad missing_for: %v, want 400", err)
	}
}

func TestServer_Tail(t *testing.T) {
	d := newTestDir(t)
	_, ts := newTestServer(t, d, nil)
	tail, err := newTestClient(t, ts.URL).Tail(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	scan, _ := ScanBinlog(bytes.NewReader(d.f2), "mysql-bin.000002", int64(len(d.f2)), 0)
	want := Tail{File: "mysql-bin.000002", Pos: scan.CompleteEnd, GTID: "0-1-103", IncompleteBytes: scan.IncompleteBytes}
	if tail != want || tail.IncompleteBytes == 0 {
		t.Errorf("tail = %+v, want %+v", tail, want)
	}

	pidFile := filepath.Join(t.TempDir(), "mysqld.pid")
	_, ts = newTestServer(t, d, func(c *Config) { c.PIDFile = pidFile })
	c := newTestClient(t, ts.URL)
	running := func() *bool {
		t.Helper()
		tail, err := c.Tail(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return tail.ServerRunning
	}
	writePID := func(pid int) {
		t.Helper()
		if err := os.WriteFile(pidFile, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if r := running(); r == nil || *r {
		t.Errorf("no pid file: server_running %v, want false", r)
	}
	live := startNamed(t, "mariadbd")
	writePID(live.Process.Pid)
	if r := running(); r == nil || !*r {
		t.Errorf("pid %d of a live mariadbd: server_running %v, want true", live.Process.Pid, r)
	}
	other := startNamed(t, "sleep")
	writePID(other.Process.Pid)
	if r := running(); r == nil || *r {
		t.Errorf("pid of a live process that is no server (reused pid): server_running %v, want false", r)
	}
	dead := startNamed(t, "mariadbd")
	pid := dead.Process.Pid
	if err := dead.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = dead.Wait() // killed: the error is the signal
	writePID(pid)
	if r := running(); r == nil || *r {
		t.Errorf("pid %d of a dead process: server_running %v, want false", pid, r)
	}
}

// startNamed runs `sleep 60` under the given command name (a symbolic link
// to sleep), so /proc/PID/comm shows that name.
func startNamed(t *testing.T, name string) *exec.Cmd {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), name)
	if err := os.Symlink(sleep, link); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(link, "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // may be dead already
		_ = cmd.Wait()
	})
	return cmd
}

func TestNew_Refusals(t *testing.T) {
	d := newTestDir(t)
	notDir := filepath.Join(d.dir, "mysql-bin.000001")
	twoIndexes := t.TempDir()
	for _, n := range []string{"a.index", "b.index"} {
		if err := os.WriteFile(filepath.Join(twoIndexes, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no auth", Config{BinlogDir: d.dir, BinlogIndex: d.index}, "no authentication"},
		{"missing dir", Config{BinlogDir: d.dir + "-nope", Token: "t"}, "no such file"},
		{"not a dir", Config{BinlogDir: notDir, Token: "t"}, "not a directory"},
		{"no index", Config{BinlogDir: t.TempDir(), Token: "t"}, "found 0"},
		{"two indexes", Config{BinlogDir: twoIndexes, Token: "t"}, "found 2"},
		{"cert without key", Config{BinlogDir: d.dir, BinlogIndex: d.index, Token: "t", TLSCert: "c.pem"}, "together"},
		{"bad cert", Config{BinlogDir: d.dir, BinlogIndex: d.index, Token: "t", TLSCert: "/nope/c.pem", TLSKey: "/nope/k.pem"}, "/nope/c.pem"},
	} {
		_, err := New(tc.cfg, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := New(Config{BinlogDir: d.dir, BinlogIndex: d.index, InsecureNoAuth: true}, nil); err != nil {
		t.Errorf("insecure_no_auth: %v", err)
	}
}

func TestNewClient_Refusals(t *testing.T) {
	for _, tc := range []struct {
		url  string
		o    ClientOptions
		want string
	}{
		{"10.0.1.20:7080", ClientOptions{}, "10.0.1.20:7080"},
		{"ftp://h:1", ClientOptions{}, "want http://host:port"},
		{"http://h:1/v1", ClientOptions{}, "want http://host:port"},
		{"http://h:1", ClientOptions{CAFile: "/ca.pem"}, "use https"},
		{"https://h:1", ClientOptions{CAFile: "/nope/ca.pem"}, "/nope/ca.pem"},
		{"https://h:1", ClientOptions{CertFile: "/nope/c.pem"}, "together"},
		{"https://h:1", ClientOptions{CertFile: "/nope/c.pem", KeyFile: "/nope/k.pem"}, "/nope/c.pem"},
	} {
		_, err := NewClient(tc.url, tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewClient(%q, %+v): %v, want %q", tc.url, tc.o, err, tc.want)
		}
	}
	if _, err := NewClient("https://10.0.1.20:7080/", ClientOptions{}); err != nil {
		t.Errorf("a trailing slash: %v", err)
	}
}
