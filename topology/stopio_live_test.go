package topology_test

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
	"github.com/quorumha/quorumha/topology"
)

// TestLive_StopIOWhileReconnecting checks the premise of recovery's stop_io
// on a real server: with the master's packets dropped (no RST) and the IO
// thread reconnecting after slave_net_timeout, STOP SLAVE IO_THREAD does
// not return at once, and while it runs the server shows it in the
// "Killing slave" stage with the IO thread not connected; it returns in the
// end and leaves the IO thread stopped. It logs how long the STOP took.
func TestLive_StopIOWhileReconnecting(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("real MariaDB")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("iptables not found")
	}
	sb := sandbox.New(t, sandbox.Options{Replicas: 1, GTID: true, HeartbeatPeriod: time.Second, ExtraConfig: []string{"slave_net_timeout=2"}})
	m := sb.Instance(0)
	c := liveConns(t, sb)[1]
	ctx := liveCtx(t, 2*time.Minute)
	rule := func(op string) error {
		for _, dir := range []string{"--dport", "--sport"} {
			args := []string{op, "INPUT", "-i", "lo", "-p", "tcp", dir, fmt.Sprint(m.Port), "-j", "DROP"}
			if out, err := exec.Command("iptables", args...).CombinedOutput(); err != nil {
				return fmt.Errorf("iptables %v: %v %s", args, err, out)
			}
		}
		return nil
	}
	if err := rule("-I"); err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { _ = rule("-D") })
	waitFor := func(what string, ok func(*topology.Instance) bool) {
		t.Helper()
		for {
			in, err := c.Read(ctx)
			if err == nil && in.Replica != nil && ok(in) {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("never %s", what)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	waitFor("reconnecting", func(in *topology.Instance) bool {
		return strings.Contains(in.Replica.IOThreadState, "Reconnecting")
	})
	// A long connect timeout from here on, as with MariaDB's default of 60.
	if _, err := c.DB().ExecContext(ctx, "SET GLOBAL slave_net_timeout=60"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // let the next connect attempt start with it
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- c.StopReplica(ctx, topology.IOThread) }()
	sawKilling := false
	for !sawKilling {
		select {
		case err := <-done:
			t.Logf("STOP returned after %s before the killing stage was seen (err %v)", time.Since(start), err)
			return
		case <-time.After(50 * time.Millisecond):
		}
		ps, err := c.ProcessList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if strings.HasPrefix(p.Info, "STOP SLAVE") && strings.EqualFold(p.State, "Killing slave") {
				sawKilling = true
			}
		}
	}
	in, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if in.Replica.IORunning == topology.IOYes {
		t.Fatalf("IO thread connected while the STOP kills it: %+v", in.Replica)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Logf("STOP SLAVE IO_THREAD while reconnecting took %s", time.Since(start))
	waitFor("stopped", func(in *topology.Instance) bool { return in.Replica.IORunning == topology.IONo })
}
