package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/tests/harness"
)

// TestReload_SIGHUP runs a real controller, edits its config file and sends
// SIGHUP: the log level and probe_interval apply at once, log.format is
// reported as needing a restart, and a file that does not validate is
// refused with the controller still running on the config it had.
func TestReload_SIGHUP(t *testing.T) {
	skipShort(t)
	parallel(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	g := harness.StartGroup(t, bin.Path(t), harness.GroupOptions{N: 1, ClustersYAML: clustersYAML, LogLevel: "info",
		ExtraYAML: "detector:\n  probe_interval: 500ms\n"})
	c := g.Nodes[0]
	if _, err := g.WaitLeader(ctx, g.Nodes); err != nil {
		t.Fatal(err)
	}
	waitLog(ctx, t, c.LogPath, 0, "controller started")

	// At info, a GET is not logged (the API logs reads at debug).
	orig, err := os.ReadFile(c.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(orig), "level: info", "level: debug\n  format: json", 1)
	edited = strings.Replace(edited, "probe_interval: 500ms", "probe_interval: 300ms", 1)
	if edited == string(orig) || !strings.Contains(edited, "probe_interval: 300ms") {
		t.Fatalf("config did not have the expected keys:\n%s", orig)
	}
	writeConfig(t, c.ConfigPath, edited)
	off := logSize(t, c.LogPath)
	if err := g.Reload(c); err != nil {
		t.Fatal(err)
	}
	log := waitLog(ctx, t, c.LogPath, off, "config reloaded")
	for _, want := range []string{
		`key=log.level old=info new=debug note="applied`,
		`key=detector.probe_interval old=500ms new=300ms note="applied`,
		`key=log.format old=text new=json why="needs a restart`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("reload log lacks %q:\n%s", want, log)
		}
	}
	// The new level is in force: a read is now logged, still as text.
	off = logSize(t, c.LogPath)
	getStatus(ctx, t, g, c)
	line := waitLog(ctx, t, c.LogPath, off, "path=/v1/status")
	if !strings.Contains(line, "level=DEBUG") {
		t.Errorf("read not logged at debug in text:\n%s", line)
	}

	// A file that does not validate: refused whole, naming file, key and
	// value; log.level info in the same file is not applied either.
	bad := strings.Replace(edited, "level: debug", "level: info", 1)
	bad = strings.Replace(bad, "probe_interval: 300ms", "probe_interval: -2s", 1)
	writeConfig(t, c.ConfigPath, bad)
	off = logSize(t, c.LogPath)
	if err := g.Reload(c); err != nil {
		t.Fatal(err)
	}
	log = waitLog(ctx, t, c.LogPath, off, "config reload refused")
	for _, want := range []string{c.ConfigPath, "detector.probe_interval", "-2s"} {
		if !strings.Contains(log, want) {
			t.Errorf("refusal does not name %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "config reload: applied") {
		t.Errorf("a refused file applied something:\n%s", log)
	}
	if !c.Running() {
		t.Fatal("controller exited after a bad reload")
	}
	// Still at debug: the refused file's info level did not apply.
	off = logSize(t, c.LogPath)
	getStatus(ctx, t, g, c)
	waitLog(ctx, t, c.LogPath, off, "path=/v1/status")
}

func writeConfig(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func logSize(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}

func getStatus(ctx context.Context, t *testing.T, g *harness.Group, c *harness.Controller) {
	t.Helper()
	if code, err := g.Do(ctx, "GET", c.URL("/v1/status"), nil, nil); err != nil || code != 200 {
		t.Fatalf("GET /v1/status: %d %v", code, err)
	}
}

// waitLog polls the log from byte offset off until a line contains want,
// and returns everything logged from off up to that line.
func waitLog(ctx context.Context, t *testing.T, path string, off int, want string) string {
	t.Helper()
	var got string
	err := harness.Poll(ctx, 100*time.Millisecond, func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if len(b) < off {
			off = 0
		}
		s := string(b[off:])
		if i := strings.Index(s, want); i >= 0 {
			end := strings.IndexByte(s[i:], '\n')
			if end < 0 {
				return fmt.Errorf("line with %q not finished", want)
			}
			got = s[:i+end]
			return nil
		}
		return fmt.Errorf("no %q in the log yet", want)
	})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return got
}
