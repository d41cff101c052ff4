package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumha/quorumha/detector"
	"github.com/quorumha/quorumha/tests/harness"
)

// TestSecurity_ForgedVerdictsAndAddresses replays the security review's
// loopback attack (issue 16, items 1 and 4): two programs that never joined
// the raft group speak gossip as "ghost1" and "ghost2", vote the master
// down, and advertise an HTTP address. With quorum 3 and one real
// controller, their votes must not count (no record is opened), and
// neither the controller nor `quorumha status` may send anything to the
// advertised address.
func TestSecurity_ForgedVerdictsAndAddresses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a controller process")
	}
	parallel(t)
	g := harness.StartGroup(t, bin.Path(t), harness.GroupOptions{N: 1, ClustersYAML: clustersYAML,
		ExtraYAML: "detector:\n  probe_interval: 200ms\n  quorum: 3\n  replica_check: false\n"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := g.WaitLeader(ctx, g.Nodes); err != nil {
		t.Fatal(err)
	}
	c1 := g.Nodes[0]

	var stolen atomic.Int64
	evil := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stolen.Add(1)
		w.WriteHeader(http.StatusOK)
	}), ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = evil.Serve(ln) }()
	defer evil.Close()

	for _, name := range []string{"ghost1", "ghost2"} {
		ghost, err := detector.NewGossip(detector.GossipConfig{NodeName: name, Zone: "zone-" + name,
			HTTPAddr: "http://" + ln.Addr().String(), BindAddr: "127.0.0.1:0", Join: []string{c1.GossipAddr}, Profile: "local"})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = ghost.Shutdown(context.Background()) }()
		go func() { // publishes "down" until the test ends; owned by ctx
			for seq := uint64(1); ctx.Err() == nil; seq++ {
				ghost.Publish([]detector.Verdict{{Instance: "127.0.0.1:1", Cluster: "app1", State: detector.StateDown,
					Failures: 10, Reason: detector.ReasonRefused, ObservedAt: time.Now(), Seq: seq}})
				select {
				case <-ctx.Done():
				case <-time.After(200 * time.Millisecond):
				}
			}
		}()
	}

	// The controller hears the ghosts (and drops their verdicts) ...
	err = harness.Poll(ctx, 200*time.Millisecond, func() error {
		b, err := os.ReadFile(c1.LogPath)
		if err != nil {
			return err
		}
		for _, name := range []string{"ghost1", "ghost2"} {
			if !strings.Contains(string(b), `claimed_from=`+name) {
				return fmt.Errorf("no verdict from %s received yet", name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ghost verdicts never reached c1: %v", err)
	}
	// ... and for the next several probe rounds neither counts them nor
	// opens a record (before the fix the decision came within a second).
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var hist struct {
			Records []json.RawMessage `json:"records"`
		}
		if _, err := g.Do(ctx, http.MethodGet, c1.URL("/v1/history"), nil, &hist); err != nil {
			t.Fatal(err)
		}
		if len(hist.Records) != 0 {
			t.Fatalf("forged votes opened a record: %s", hist.Records[0])
		}
		var cl json.RawMessage
		if _, err := g.Do(ctx, http.MethodGet, c1.URL("/v1/clusters/app1"), nil, &cl); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(cl), "ghost") {
			t.Fatalf("ghost verdicts counted: %s", cl)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}

	// `quorumha status` asks raft peers only: the ghosts' address gets nothing.
	out, _ := cli(ctx, t, "status", "--addr", c1.URL(""), "--token", harness.DefaultToken)
	if n := stolen.Load(); n != 0 {
		t.Fatalf("the advertised address got %d requests; status said:\n%s", n, out)
	}
	var peers struct {
		Peers []struct {
			ID string `json:"id"`
		} `json:"peers"`
	}
	if _, err := g.Do(ctx, http.MethodGet, c1.URL("/v1/raft/peers"), nil, &peers); err != nil {
		t.Fatal(err)
	}
	if len(peers.Peers) != 1 {
		t.Fatalf("peers %+v", peers.Peers)
	}
}
