package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/tests/harness"
)

// readmeMetric is one row of the Metrics table of docs/http-api.md.
type readmeMetric struct {
	name, typ string
	labels    []string
}

// readmeMetrics parses the table under "## Metrics" in docs/http-api.md.
func readmeMetrics(t *testing.T) []readmeMetric {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "docs", "http-api.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []readmeMetric
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## Metrics"):
			in = true
		case in && strings.HasPrefix(line, "#"):
			in = false
		case in && strings.HasPrefix(line, "| `quorumha_"):
			cells := strings.Split(strings.Trim(line, "|"), "|")
			if len(cells) != 4 {
				t.Fatalf("docs metrics row has %d cells, want 4: %s", len(cells), line)
			}
			m := readmeMetric{name: strings.Trim(strings.TrimSpace(cells[0]), "`"), typ: strings.TrimSpace(cells[1])}
			for _, l := range strings.Split(cells[2], ",") {
				if l = strings.Trim(strings.TrimSpace(l), "`"); l != "" {
					m.labels = append(m.labels, l)
				}
			}
			out = append(out, m)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < 10 {
		t.Fatalf("found %d metrics in the docs' Metrics table; is the section of docs/http-api.md still called \"## Metrics\"?", len(out))
	}
	return out
}

// exposedFamily is one metric family of a /metrics answer.
type exposedFamily struct {
	typ    string
	labels map[string]bool
}

// parseExposition reads the TYPE lines and the label names of the samples.
func parseExposition(body string) map[string]*exposedFamily {
	out := map[string]*exposedFamily{}
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(rest, " ")
			out[name] = &exposedFamily{typ: typ, labels: map[string]bool{}}
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, labels, _ := strings.Cut(strings.Fields(line)[0], "{")
		fam := out[name]
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if fam == nil {
				fam = out[strings.TrimSuffix(name, suffix)]
			}
		}
		if fam == nil {
			continue
		}
		for _, kv := range strings.Split(strings.TrimSuffix(labels, "}"), ",") {
			if k, _, ok := strings.Cut(kv, "="); ok && k != "le" {
				fam.labels[k] = true
			}
		}
	}
	return out
}

// freeLoopback is a loopback address no other test of this process was
// given and nothing listens on (harness.FreePorts: below the ephemeral
// range, so bind(:0) here or elsewhere cannot hand the same port out twice).
func freeLoopback(t *testing.T) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(harness.FreePorts(t, 1)[0]))
}

// TestMetrics_ReadmeTable runs a real controller (one voter, gossip on, a
// cluster whose servers are down) and checks that its /metrics exposes every
// metric of the docs' table with the documented type and labels, and
// that the table documents every quorumha_* metric it exposes.
func TestMetrics_ReadmeTable(t *testing.T) {
	documented := readmeMetrics(t)
	// appearOnRenewal are documented metrics whose series appear only once
	// this controller renews a master's lease with its agent (the
	// controller below has none); the lease package's tests check them.
	appearOnRenewal := []string{"quorumha_lease_renewals_total", "quorumha_lease_renewal_age_seconds"}

	dir := t.TempDir()
	raftAddr, httpAddr, gossipAddr := freeLoopback(t), freeLoopback(t), freeLoopback(t)
	cfgPath := filepath.Join(dir, "c1.yaml")
	cfgText := fmt.Sprintf(`node:
  id: c1
  zone: zone-a
  data_dir: %s
  raft_addr: %s
  http_addr: %s
  gossip_addr: %s
  bootstrap: [c1=%s]
log:
  level: error
detector:
  probe_interval: 100ms
  probe_timeout: 200ms
clusters:
  - name: app1
    user: monitor
    instances:
      - address: %s
      - address: %s
`, filepath.Join(dir, "data"), raftAddr, httpAddr, gossipAddr, raftAddr, freeLoopback(t), freeLoopback(t))
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := newRootCmd()
	cmd.SetArgs([]string{"run", "--config", cfgPath})
	cmd.SetOut(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("controller did not stop within 30s")
		}
	})

	base := "http://" + httpAddr
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	poll(t, 30*time.Second, "a leader", func() (bool, string) {
		code, body := get("/readyz")
		return code == http.StatusOK, body
	})
	// A write through the API, so the apply histogram has a sample.
	if resp, err := http.Post(base+"/v1/clusters/app1/maintenance", "application/json", strings.NewReader(`{"duration":"1m","reason":"metrics test"}`)); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}

	var families map[string]*exposedFamily
	poll(t, 30*time.Second, "every documented metric on /metrics", func() (bool, string) {
		_, body := get("/metrics")
		families = parseExposition(body)
		var missing []string
		for _, m := range documented {
			if families[m.name] == nil && !slices.Contains(appearOnRenewal, m.name) {
				missing = append(missing, m.name)
			}
		}
		return len(missing) == 0, fmt.Sprint("missing ", missing)
	})
	for _, m := range documented {
		f := families[m.name]
		if f == nil {
			continue // one of appearOnRenewal
		}
		if f.typ != m.typ {
			t.Errorf("%s: docs say %s, /metrics says %s", m.name, m.typ, f.typ)
		}
		var got []string
		for l := range f.labels {
			got = append(got, l)
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(m.labels))
		if !slices.Equal(got, want) {
			t.Errorf("%s: docs labels %v, /metrics labels %v", m.name, want, got)
		}
	}
	for name := range families {
		if !strings.HasPrefix(name, "quorumha_") {
			continue
		}
		if !slices.ContainsFunc(documented, func(m readmeMetric) bool { return m.name == name }) {
			t.Errorf("%s is exposed but not in the Metrics table of docs/http-api.md", name)
		}
	}
}

// poll calls cond until it holds or timeout passes.
func poll(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
