package consensus

import (
	"crypto/tls"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/quorumha/quorumha/tests/testpki"
)

// mutualTLS is the raft TLS config a controller builds from
// node.raft_tls_*: its certificate, the CA for both directions, and
// client certificates required.
func mutualTLS(t *testing.T, ca *testpki.CA, cert testpki.Pair) *tls.Config {
	t.Helper()
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert.TLS(t)},
		RootCAs:      ca.Pool(),
		ClientCAs:    ca.Pool(),
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
}

// tlsTimings are testTimings relaxed for real TCP plus TLS handshakes on a
// busy machine.
func tlsTimings() Timings {
	t := testTimings()
	t.HeartbeatTimeout, t.ElectionTimeout, t.LeaderLeaseTimeout = time.Second, time.Second, 500*time.Millisecond
	return t
}

// onTLSLeader runs op on the group's leader, and again on the leader of
// the moment when op found its node no longer leading before anything
// reached the log (ErrNotLeader without ErrOutcomeUnknown): on a machine
// whose cores other tests keep busy a leader can lose its lease between
// being found and being asked, which is not what these tests are about.
// Any other error, an unknown outcome included, is returned.
func onTLSLeader(t *testing.T, nodes []*Node, op func(*Node) error) error {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := op(waitTLSLeader(t, nodes))
		if err == nil || !errors.Is(err, ErrNotLeader) || errors.Is(err, ErrOutcomeUnknown) || time.Now().After(deadline) {
			return err
		}
		t.Logf("leader changed under the test (%v): asking the new one", err)
	}
}

// startTLSNode runs a node with in-memory stores on a real TLS transport.
func startTLSNode(t *testing.T, id, addr string, boot []Peer, conf *tls.Config, fsm *testFSM) *Node {
	t.Helper()
	n, err := New(Config{ID: id, RaftAddr: addr, Bootstrap: boot, Timings: tlsTimings(), InMemory: true,
		TLS: conf, Logger: testLogger(t)}, fsm)
	if err != nil {
		t.Fatalf("New(%s): %v", id, err)
	}
	t.Cleanup(func() { shutdownAtCleanup(t, id, n) })
	return n
}

// tlsGroup starts three bootstrapped voters over mutual TLS on loopback.
func tlsGroup(t *testing.T, ca *testpki.CA) ([]*Node, []*testFSM) {
	t.Helper()
	cert := ca.Issue(t, "raft", "127.0.0.1")
	var boot []Peer
	for _, id := range []string{"t1", "t2", "t3"} {
		boot = append(boot, Peer{ID: id, RaftAddr: freeAddr(t)})
	}
	var nodes []*Node
	var fsms []*testFSM
	for _, p := range boot {
		fsm := &testFSM{}
		nodes = append(nodes, startTLSNode(t, p.ID, p.RaftAddr, boot, mutualTLS(t, ca, cert), fsm))
		fsms = append(fsms, fsm)
	}
	return nodes, fsms
}

func waitTLSLeader(t *testing.T, nodes []*Node) *Node {
	t.Helper()
	var leader *Node
	poll(t, 10*time.Second, "a leader over TLS", func() bool {
		for _, n := range nodes {
			if n.IsLeader() {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

func TestTLS_ThreeNodesElectAndReplicate(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "raft CA")
	nodes, fsms := tlsGroup(t, ca)
	want := []string{"one", "two"}
	for _, c := range want {
		if err := onTLSLeader(t, nodes, func(l *Node) error { _, err := l.Apply(ctxT(t, 5*time.Second), []byte(c)); return err }); err != nil {
			t.Fatalf("Apply(%s): %v", c, err)
		}
	}
	poll(t, 10*time.Second, "every FSM to hold the commands", func() bool {
		for _, f := range fsms {
			if !slices.Equal(f.Commands(), want) {
				return false
			}
		}
		return true
	})
	id, addr := nodes[0].Leader()
	if id == "" || addr == "" {
		t.Fatalf("follower sees no leader address: %q %q", id, addr)
	}
}

// TestTLS_ForeignCertificateRefused checks that a server whose certificate
// another CA signed can neither talk raft to the group nor be given its log
// when an operator joins it.
func TestTLS_ForeignCertificateRefused(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "raft CA")
	nodes, fsms := tlsGroup(t, ca)
	waitTLSLeader(t, nodes)
	_, leaderAddr := nodes[0].Leader()

	rogueCA := testpki.NewCA(t, "rogue CA")
	rogueCert := rogueCA.Issue(t, "rogue", "127.0.0.1")

	// A client with a foreign certificate that trusts the group's CA: only
	// the group's client verification stands in its way.
	conf := mutualTLS(t, rogueCA, rogueCert)
	conf.RootCAs = ca.Pool()
	rogue, _, err := networkTransport(&Config{RaftAddr: freeAddr(t), TLS: conf}, newHCLogAdapter(testLogger(t), "rogue"))
	if err != nil {
		t.Fatal(err)
	}
	defer rogue.Close()
	var resp raft.RequestVoteResponse
	err = rogue.RequestVote("rogue", raft.ServerAddress(leaderAddr), &raft.RequestVoteRequest{
		RPCHeader: raft.RPCHeader{ID: []byte("rogue"), Addr: []byte(rogue.LocalAddr())}, Term: 1 << 40,
	}, &resp)
	if err == nil {
		t.Fatalf("RequestVote with a foreign certificate succeeded: %+v", resp)
	}

	// Without any client certificate the handshake fails too.
	conn, err := tls.Dial("tcp", leaderAddr, &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12})
	if err == nil {
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = conn.Write([]byte{0})
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil {
		t.Fatal("a client without a certificate got a raft connection")
	}

	// Joined by an operator, a rogue node still gets nothing: the leader
	// cannot complete a handshake with it.
	rogueFSM := &testFSM{}
	rogueAddr := freeAddr(t)
	startTLSNode(t, "rogue", rogueAddr, nil, mutualTLS(t, rogueCA, rogueCert), rogueFSM)
	if err := onTLSLeader(t, nodes, func(l *Node) error { return l.Join(ctxT(t, 5*time.Second), "rogue", rogueAddr) }); err != nil {
		t.Fatalf("Join: %v", err)
	}
	if err := onTLSLeader(t, nodes, func(l *Node) error { _, err := l.Apply(ctxT(t, 5*time.Second), []byte("after-join")); return err }); err != nil {
		t.Fatalf("Apply after join: %v", err)
	}
	poll(t, 10*time.Second, "members to apply", func() bool {
		for _, f := range fsms {
			if !slices.Contains(f.Commands(), "after-join") {
				return false
			}
		}
		return true
	})
	time.Sleep(time.Second) // give replication to the rogue node every chance
	if got := rogueFSM.Commands(); len(got) != 0 {
		t.Fatalf("rogue node received the log: %v", got)
	}
}
