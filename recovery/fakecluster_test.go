package recovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/quorumha/quorumha/topology"
)

// fakeNode is one simulated MariaDB server in GTID domain 0: seq is how far
// it has applied (its binlog too, with log_slave_updates), recv how far its
// IO thread received.
type fakeNode struct {
	up        bool
	readOnly  bool
	failRO    bool // SetReadOnly fails (a fence that does not take)
	semiRepl  bool // rpl_semi_sync_slave_enabled
	semiMast  bool // rpl_semi_sync_master_enabled
	noBin     bool
	seq, recv int
	master    string // "" = not a replica
	io, sql   bool
	killed    int
	// slowWaits is how many relay-log waits time out before the SQL
	// thread has applied what it received (a big backlog).
	slowWaits int
	delay     int64 // MASTER_DELAY seconds
	// file replicates by binlog file/position (Using_Gtid=No); the fake's
	// coordinates are 4+100*seq in one file for every server.
	file bool
	// errant is a GTID list the node wrote itself (e.g. "1-9-3"), on top
	// of domain 0's gtid(seq).
	errant string
	// user and pass are the replication account CHANGE MASTER set; ioErr
	// is the IO thread's last error (a failed authentication).
	user, pass string
	ioErr      string
}

// fakeCluster simulates replication between fakeNodes: starting a replica
// fetches and applies everything its (live) master has, so waits succeed
// when the master holds the target.
type fakeCluster struct {
	mu    sync.Mutex
	nodes map[string]*fakeNode
	ops   []string
	// onOp, when set, is called (under the lock) after each statement is
	// recorded in ops, so a test can change the world mid-step.
	onOp func(n int, op string)
	// accounts, when set, are the replication accounts (user: password)
	// the masters accept: an IO thread with other credentials fails.
	accounts map[string]string
}

func newFakeCluster() *fakeCluster { return &fakeCluster{nodes: map[string]*fakeNode{}} }

func (f *fakeCluster) add(addr string, n *fakeNode) { f.nodes[addr] = n }

func (f *fakeCluster) node(addr string) *fakeNode {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nodes[addr]
}

// set changes a node under the lock.
func (f *fakeCluster) set(addr string, fn func(n *fakeNode)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.nodes[addr])
}

func (f *fakeCluster) opsSnapshot() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ops...)
}

// writable lists the nodes that are up and not read_only.
func (f *fakeCluster) writable() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for a, n := range f.nodes {
		if n.up && !n.readOnly {
			out = append(out, a)
		}
	}
	return out
}

func (f *fakeCluster) dial(_ context.Context, addr string, _ topology.Credentials) (Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.nodes[addr]
	if !ok || !n.up {
		return nil, fmt.Errorf("dial %s: connection refused", addr)
	}
	return &fakeConn{f: f, addr: addr}, nil
}

type fakeConn struct {
	f    *fakeCluster
	addr string
}

var errDown = errors.New("connection refused")

// do runs fn on the node under the lock, failing when it is down.
func (c *fakeConn) do(op string, fn func(n *fakeNode) error) error {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	n := c.f.nodes[c.addr]
	if !n.up {
		return fmt.Errorf("%s: %s: %w", c.addr, op, errDown)
	}
	c.f.ops = append(c.f.ops, c.addr+" "+op)
	if c.f.onOp != nil {
		c.f.onOp(len(c.f.ops)-1, c.addr+" "+op)
	}
	return fn(n)
}

func gtid(seq int) string {
	if seq == 0 {
		return ""
	}
	return "0-1-" + strconv.Itoa(seq)
}

func (c *fakeConn) Read(context.Context) (*topology.Instance, error) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	n := c.f.nodes[c.addr]
	if !n.up {
		return nil, fmt.Errorf("%s: read: %w", c.addr, errDown)
	}
	in := &topology.Instance{Key: c.addr, Version: topology.Version{Flavor: topology.MariaDB, Major: 10, Minor: 11},
		ReadOnly: n.readOnly, LogBin: !n.noBin, LogSlaveUpdates: !n.noBin,
		GTIDCurrentPos: gtid(n.seq), GTIDSlavePos: gtid(n.seq), GTIDBinlogPos: gtid(n.seq),
		MasterStatus: &topology.BinlogCoord{File: "bin.000001", Pos: uint64(4 + 100*n.seq)}}
	if n.errant != "" {
		own := n.errant
		if n.seq > 0 {
			own = gtid(n.seq) + "," + n.errant
		}
		in.GTIDCurrentPos, in.GTIDBinlogPos, in.GTIDBinlogState = own, own, own
	}
	if n.master != "" {
		h, p, _ := net.SplitHostPort(n.master)
		port, _ := strconv.Atoi(p)
		io := topology.IONo
		if n.io {
			io = topology.IOYes
		}
		user := n.user
		if user == "" {
			user = "repl"
		}
		in.Replica = &topology.ReplicaStatus{MasterHost: h, MasterPort: port, MasterServerID: 1, MasterUser: user, IORunning: io,
			SQLRunning: n.sql, UsingGTID: "Slave_Pos", GTIDIOPos: gtid(n.recv), SQLDelay: n.delay}
		if n.file {
			in.Replica.UsingGTID, in.Replica.GTIDIOPos = "No", ""
			in.Replica.MasterLogFile, in.Replica.ReadMasterLogPos = "bin.000001", uint64(4+100*n.recv)
			in.Replica.RelayMasterLogFile, in.Replica.ExecMasterLogPos = "bin.000001", uint64(4+100*n.seq)
		}
		if n.ioErr != "" {
			in.Replica.LastIOErrno, in.Replica.LastIOError = 1045, n.ioErr
		}
	}
	in.SemiSync = topology.SemiSyncState{ReplicaEnabled: n.semiRepl, MasterEnabled: n.semiMast}
	return in, nil
}

func (c *fakeConn) SetSemiSyncMaster(_ context.Context, on bool) error {
	return c.do(fmt.Sprintf("semi_sync_master=%t", on), func(n *fakeNode) error { n.semiMast = on; return nil })
}

func (c *fakeConn) SetReadOnly(_ context.Context, on bool) error {
	return c.do(fmt.Sprintf("read_only=%t", on), func(n *fakeNode) error {
		if n.failRO {
			return errors.New("read_only refused")
		}
		n.readOnly = on
		return nil
	})
}

func (c *fakeConn) KillClientSessions(context.Context, ...uint64) ([]topology.Process, error) {
	return nil, c.do("kill", func(n *fakeNode) error { n.killed++; return nil })
}

func (c *fakeConn) FenceWrites(ctx context.Context, spare ...uint64) ([]topology.Process, error) {
	if err := c.SetReadOnly(ctx, true); err != nil {
		return nil, err
	}
	return c.KillClientSessions(ctx, spare...)
}

func (c *fakeConn) StopReplica(_ context.Context, t topology.ReplicaThreads) error {
	return c.do("stop "+t.String(), func(n *fakeNode) error {
		n.io = false
		if t == topology.BothThreads || t == topology.SQLThread {
			n.sql = false
		}
		return nil
	})
}

func (c *fakeConn) StartReplica(_ context.Context, t topology.ReplicaThreads) error {
	return c.do("start "+t.String(), func(n *fakeNode) error {
		if n.master == "" {
			return errors.New("not a replica")
		}
		if t == topology.SQLThread {
			n.sql = true
			if n.slowWaits == 0 {
				n.seq = max(n.seq, n.recv)
			}
			return nil
		}
		if pw, ok := c.f.accounts[n.user]; c.f.accounts != nil && (!ok || pw != n.pass) {
			n.io, n.sql, n.ioErr = false, true, fmt.Sprintf("Access denied for user '%s' (using password: %t)", n.user, n.pass != "")
			return nil
		}
		n.io, n.sql, n.ioErr = true, true, ""
		if m := c.f.nodes[n.master]; m != nil && m.up {
			n.recv = max(n.recv, m.seq)
		}
		n.seq = max(n.seq, n.recv)
		return nil
	})
}

func (c *fakeConn) ChangeMaster(_ context.Context, o topology.ChangeMasterOptions) error {
	return c.do("change master "+net.JoinHostPort(o.Host, strconv.Itoa(o.Port)), func(n *fakeNode) error {
		if err := o.Validate(); err != nil {
			return err
		}
		// CHANGE MASTER to another master purges the relay log: what was
		// received and not applied is gone.
		n.master, n.io, n.sql, n.recv = net.JoinHostPort(o.Host, strconv.Itoa(o.Port)), false, false, n.seq
		if o.User != "" { // CHANGE MASTER keeps the account it is not given
			n.user, n.pass = o.User, o.Password
		}
		return nil
	})
}

func (c *fakeConn) ResetReplicaAll(context.Context) error {
	return c.do("reset replica all", func(n *fakeNode) error {
		n.master, n.io, n.sql, n.recv, n.user, n.pass = "", false, false, n.seq, "", ""
		return nil
	})
}

func (c *fakeConn) WaitForPosition(_ context.Context, p topology.Position) error {
	return c.do("wait "+p.String(), func(n *fakeNode) error {
		// A replica whose threads run fetches and applies what its live
		// master has while it is waited for.
		if m := c.f.nodes[n.master]; n.master != "" && n.io && m != nil && m.up {
			n.recv = max(n.recv, m.seq)
		}
		if n.sql && n.slowWaits == 0 {
			n.seq = max(n.seq, n.recv)
		}
		want, _ := topology.ParseMariaDBPos(gtid(n.seq))
		if o, err := topology.ComparePositions(topology.MariaDBGTIDPosition(want), p); err != nil || o == topology.Behind {
			return fmt.Errorf("at %s, want %s: %w", gtid(n.seq), p, topology.ErrWaitTimeout)
		}
		return nil
	})
}

func (c *fakeConn) WaitRelayLogApplied(context.Context) error {
	return c.do("wait relay", func(n *fakeNode) error {
		if !n.sql && n.seq < n.recv {
			return topology.ErrReplicationStopped
		}
		if n.slowWaits > 0 && n.seq < n.recv {
			n.slowWaits--
			return fmt.Errorf("exec %s, read %s: %w", gtid(n.seq), gtid(n.recv), topology.ErrWaitTimeout)
		}
		n.seq = max(n.seq, n.recv)
		return nil
	})
}

func (c *fakeConn) Close() error { return nil }
