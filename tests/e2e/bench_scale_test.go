package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
	"github.com/quorumha/quorumha/tests/harness"
)

// TestBenchScale runs one controller watching many clusters at a 1 s probe
// interval and prints its CPU use and resident memory. The clusters share
// three real MariaDB servers: each cluster reaches them through its own
// loopback address (127.0.x.y), so every cluster has its own connections,
// as separate servers would.
func TestBenchScale(t *testing.T) {
	skipUnlessBench(t)
	clusters := 500
	if n, err := strconv.Atoi(os.Getenv("QUORUMHA_BENCH_CLUSTERS")); err == nil && n > 0 {
		clusters = n
	}
	sb := sandbox.New(t, sandbox.Options{Replicas: 2, GTID: true,
		ExtraConfig: []string{"bind-address=0.0.0.0", "max_connections=4000", "thread_cache_size=200"}})
	var b strings.Builder
	for i := 0; i < clusters; i++ {
		host := fmt.Sprintf("127.0.%d.%d", 1+i/250, 1+i%250)
		fmt.Fprintf(&b, "  - name: s%d\n    user: %s\n    password: %s\n    instances:\n", i, sandbox.AdminUser, sandbox.AdminPassword)
		for _, in := range sb.Instances() {
			fmt.Fprintf(&b, "      - address: %s:%d\n", host, in.Port)
		}
	}
	g := harness.StartGroup(t, bin.Path(t), harness.GroupOptions{N: 1, ClustersYAML: b.String(), LogLevel: "warn"})
	c := g.Nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Warm up: every cluster assessed healthy.
	err := harness.Poll(ctx, time.Second, func() error {
		var resp struct {
			Clusters []struct {
				Topology struct {
					Assessment struct {
						State string `json:"state"`
					} `json:"assessment"`
				} `json:"topology"`
			} `json:"clusters"`
		}
		if _, err := harness.Do(ctx, http.MethodGet, c.URL("/v1/clusters"), nil, &resp); err != nil {
			return err
		}
		healthy := 0
		for _, cl := range resp.Clusters {
			if cl.Topology.Assessment.State == "healthy" {
				healthy++
			}
		}
		if !c.Running() {
			t.Fatalf("controller exited: see %s", c.LogPath)
		}
		if healthy < clusters {
			return fmt.Errorf("%d of %d clusters healthy", healthy, clusters)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	pid := c.PID()
	cpu0, wall0 := cpuTicks(t, pid), time.Now()
	window := 30 * time.Second
	select {
	case <-time.After(window): // measuring: the controller runs undisturbed
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	cpu := float64(cpuTicks(t, pid)-cpu0) / 100 // USER_HZ
	wall := time.Since(wall0).Seconds()
	fmt.Printf("BENCH scale: one controller, %d clusters x 3 instances, probe 1s: CPU %.1f%% of one core, RSS %d MiB\n",
		clusters, 100*cpu/wall, rssKiB(t, pid)/1024)
}

// cpuTicks is utime+stime of pid in clock ticks.
func cpuTicks(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return u + k
}

// rssKiB is the resident set size of pid.
func rssKiB(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			n, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return n
		}
	}
	return 0
}
