package consensus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// errTestRejected is what testFSM returns for commands starting with "err:".
var errTestRejected = errors.New("test fsm: rejected")

// testFSM appends every command to a slice; "err:" commands are rejected with
// errTestRejected as the response (the way real FSMs reject business rules).
type testFSM struct {
	mu   sync.Mutex
	cmds []string
	gate chan struct{} // when set, a "block" command waits until it is closed
}

// armGate makes the next "block" command wait until the returned func runs.
func (f *testFSM) armGate() (release func()) {
	g := make(chan struct{})
	f.mu.Lock()
	f.gate = g
	f.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(g) }) }
}

func (f *testFSM) Apply(l *raft.Log) any {
	c := string(l.Data)
	f.mu.Lock()
	g := f.gate
	f.mu.Unlock()
	if c == "block" && g != nil {
		<-g
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, c)
	if strings.HasPrefix(c, "err:") {
		return errTestRejected
	}
	return len(f.cmds)
}

func (f *testFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &testSnapshot{cmds: slices.Clone(f.cmds)}, nil
}

func (f *testFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var cmds []string
	if err := json.NewDecoder(rc).Decode(&cmds); err != nil {
		return fmt.Errorf("test fsm restore: %w", err)
	}
	f.mu.Lock()
	f.cmds = cmds
	f.mu.Unlock()
	return nil
}

func (f *testFSM) Commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.cmds)
}

type testSnapshot struct{ cmds []string }

func (s *testSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(s.cmds); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *testSnapshot) Release() {}

// testTimings are the LAN profile's: elections take about a second, and
// a leader on a machine whose cores the e2e tests keep busy (make test
// runs packages side by side) does not miss its lease. At 50 ms a leader
// over real TCP stepped down between its election and the test's first
// Apply; at 100 ms an in-memory leader lost its lease mid-Apply (outcome
// unknown) when the package ran in a loop beside the e2e tests.
func testTimings() Timings {
	return Timings{
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
		ApplyTimeout:       2 * time.Second,
		BarrierTimeout:     2 * time.Second,
		SnapshotInterval:   time.Second,
		SnapshotThreshold:  1 << 20,
	}
}

// testLogger sends logs to t.Log only when -v is set, keeping output quiet.
func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// testNode is one member of a testCluster.
type testNode struct {
	id    string
	addr  raft.ServerAddress
	trans *raft.InmemTransport
	fsm   *testFSM
	node  *Node
}

// testCluster is an in-process raft group on in-memory transports.
type testCluster struct {
	t     testing.TB
	nodes []*testNode
}

// makeCluster starts n bootstrapped nodes, fully connected. cb may adjust
// each node's Config (e.g. OnLeader, Timings) before New; tn is the node
// being configured (its FSM is already set).
func makeCluster(t testing.TB, n int, cb func(*Config, *testNode)) *testCluster {
	t.Helper()
	c := &testCluster{t: t}
	var boot []Peer
	for i := range n {
		tn := c.newTestNode(fmt.Sprintf("n%d", i+1))
		boot = append(boot, Peer{ID: tn.id, RaftAddr: string(tn.addr)})
	}
	c.connectAll()
	for _, tn := range c.nodes {
		c.start(tn, boot, cb)
	}
	return c
}

// newTestNode creates a transport and FSM for id (not started).
func (c *testCluster) newTestNode(id string) *testNode {
	addr, trans := raft.NewInmemTransport(raft.ServerAddress(id))
	tn := &testNode{id: id, addr: addr, trans: trans, fsm: &testFSM{}}
	c.nodes = append(c.nodes, tn)
	return tn
}

// start runs New for tn and registers its shutdown.
func (c *testCluster) start(tn *testNode, boot []Peer, cb func(*Config, *testNode)) {
	c.t.Helper()
	cfg := Config{
		ID:        tn.id,
		Bootstrap: boot,
		Timings:   testTimings(),
		Transport: tn.trans,
		InMemory:  true,
		Logger:    testLogger(c.t),
	}
	if cb != nil {
		cb(&cfg, tn)
	}
	node, err := New(cfg, tn.fsm)
	if err != nil {
		c.t.Fatalf("New(%s): %v", tn.id, err)
	}
	tn.node = node
	c.t.Cleanup(func() {
		shutdownAtCleanup(c.t, tn.id, node)
		_ = tn.trans.Close()
	})
}

// shutdownAtCleanup shuts n down at the end of a test, unless the test
// did. A failure names the node and shows what raft's goroutines were
// doing: a shutdown that does not finish is a bug to find, not a flake.
func shutdownAtCleanup(t testing.TB, id string, n *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil && !errors.Is(err, ErrShutdown) {
		t.Errorf("Shutdown(%s): %v\nraft goroutines:\n%s", id, err, raftStacks())
	}
}

// connectAll connects every transport to every other.
func (c *testCluster) connectAll() {
	for _, a := range c.nodes {
		for _, b := range c.nodes {
			if a != b {
				a.trans.Connect(b.addr, b.trans)
			}
		}
	}
}

// isolate cuts tn off from every other node, both directions.
func (c *testCluster) isolate(tn *testNode) {
	tn.trans.DisconnectAll()
	for _, o := range c.nodes {
		if o != tn {
			o.trans.Disconnect(tn.addr)
		}
	}
}

// live returns nodes that were started and not shut down.
func (c *testCluster) live() []*testNode {
	var out []*testNode
	for _, tn := range c.nodes {
		if tn.node != nil && !tn.node.isClosed() {
			out = append(out, tn)
		}
	}
	return out
}

// Leader waits for exactly one live node to be leader and returns it.
func (c *testCluster) Leader() *testNode {
	c.t.Helper()
	var leader *testNode
	poll(c.t, 15*time.Second, "a single leader", func() bool {
		leader = nil
		for _, tn := range c.live() {
			if tn.node.IsLeader() {
				if leader != nil {
					return false
				}
				leader = tn
			}
		}
		return leader != nil
	})
	return leader
}

// Followers returns the live nodes other than the current leader.
func (c *testCluster) Followers() []*testNode {
	c.t.Helper()
	l := c.Leader()
	var out []*testNode
	for _, tn := range c.live() {
		if tn != l {
			out = append(out, tn)
		}
	}
	return out
}

// WaitForNewLeader waits until a live node other than old, connected to a
// majority, is leader, and returns it.
func (c *testCluster) WaitForNewLeader(old *testNode) *testNode {
	c.t.Helper()
	var leader *testNode
	poll(c.t, 15*time.Second, "a new leader", func() bool {
		for _, tn := range c.live() {
			if tn != old && tn.node.IsLeader() {
				leader = tn
				return true
			}
		}
		return false
	})
	return leader
}

// waitFSMsEqual waits until every given node's FSM holds want.
func waitFSMsEqual(t testing.TB, nodes []*testNode, want []string) {
	t.Helper()
	poll(t, 5*time.Second, "FSMs to converge", func() bool {
		for _, tn := range nodes {
			if !slices.Equal(tn.fsm.Commands(), want) {
				return false
			}
		}
		return true
	})
}

// poll calls cond until it is true or the deadline passes.
func poll(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		<-tick.C
	}
}

// ctxT returns a context bounded by d and cancelled at test end.
func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
