package sandbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/quorumha/quorumha/topology"
)

// waitReplicatingDefault bounds WaitReplicating when ctx has no deadline.
const waitReplicatingDefault = 60 * time.Second

// BinlogPos is a binary log coordinate of a master.
type BinlogPos struct {
	File string // e.g. mysql-bin.000001
	Pos  uint64
}

// less orders coordinates; binlog file names are zero-padded, so they sort.
func (p BinlogPos) less(q BinlogPos) bool {
	if p.File != q.File {
		return p.File < q.File
	}
	return p.Pos < q.Pos
}

// String returns "file:pos".
func (p BinlogPos) String() string { return p.File + ":" + strconv.FormatUint(p.Pos, 10) }

// adminTimeouts are the timeouts of every connection the sandbox opens or
// hands out (adminConn, DSN).
var adminTimeouts = topology.Timeouts{Connect: 2 * time.Second, Read: 5 * time.Second, Write: 5 * time.Second}

// adminConn connects to instance i as AdminUser through topology, the one
// package that speaks each server version's replication SQL: the sandbox
// reads and changes replication with the statements the controllers use.
// The caller closes it.
func (s *Sandbox) adminConn(ctx context.Context, i int) (*topology.Conn, error) {
	inst := s.Instance(i)
	c, err := topology.Open(ctx, inst.Addr(), topology.Credentials{User: AdminUser, Password: AdminPassword}, adminTimeouts, nil)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %s: %w", inst.Name, err)
	}
	return c, nil
}

// setupReplication points every replica at instance 0 and starts it.
func (s *Sandbox) setupReplication(ctx context.Context) error {
	n := len(s.Instances())
	if n < 2 {
		return nil
	}
	master := s.Instance(0)
	var from BinlogPos
	if !s.opts.GTID {
		c, err := s.adminConn(ctx, 0)
		if err != nil {
			return err
		}
		from, err = masterStatus(ctx, c)
		_ = c.Close()
		if err != nil {
			return fmt.Errorf("sandbox: %s: %w", master.Name, err)
		}
	}
	for i := 1; i < n; i++ {
		if err := s.attachReplica(ctx, i, master, from); err != nil {
			return err
		}
	}
	return nil
}

// attachReplica points instance i at master (CHANGE MASTER TO) and starts
// both replication threads.
func (s *Sandbox) attachReplica(ctx context.Context, i int, master Instance, from BinlogPos) error {
	inst := s.Instance(i)
	c, err := s.adminConn(ctx, i)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	opts := topology.ChangeMasterOptions{Host: master.host(), Port: master.Port, User: ReplUser, Password: ReplPassword,
		ConnectRetry: 1, HeartbeatPeriod: s.opts.HeartbeatPeriod.Seconds(), UseGTID: s.opts.GTID, File: from.File, Pos: from.Pos}
	if err := c.ChangeMaster(ctx, opts); err != nil {
		return fmt.Errorf("sandbox: %s: %w", inst.Name, err)
	}
	if err := c.StartReplica(ctx, topology.BothThreads); err != nil {
		return fmt.Errorf("sandbox: %s: %w", inst.Name, err)
	}
	return nil
}

// masterStatus reads the instance's own binary log position.
func masterStatus(ctx context.Context, c *topology.Conn) (BinlogPos, error) {
	mc, err := c.MasterStatus(ctx)
	if err != nil {
		return BinlogPos{}, err
	}
	if mc == nil {
		return BinlogPos{}, errors.New("binary log is off")
	}
	return BinlogPos{File: mc.File, Pos: mc.Pos}, nil
}

// ReplicaStatus is the part of the replica status the sandbox looks at,
// with the threads' states spelt as the server does ("Yes", "No",
// "Connecting").
type ReplicaStatus struct {
	MasterHost   string
	MasterPort   int
	IORunning    string // "Yes", "No", "Connecting"
	SQLRunning   string // "Yes", "No"
	LastIOError  string
	LastSQLError string
	Lag          sql.NullInt64 // Seconds_Behind_Master; invalid when NULL
	Read         BinlogPos     // Master_Log_File / Read_Master_Log_Pos
	Exec         BinlogPos     // Relay_Master_Log_File / Exec_Master_Log_Pos
	GTIDIOPos    string
}

// ReplicaStatus returns instance i's replication status, or nil when it is
// not a replica.
func (s *Sandbox) ReplicaStatus(ctx context.Context, i int) (*ReplicaStatus, error) {
	c, err := s.adminConn(ctx, i)
	if err != nil {
		return nil, err
	}
	defer func() { _ = c.Close() }()
	return replicaStatus(ctx, c)
}

func replicaStatus(ctx context.Context, c *topology.Conn) (*ReplicaStatus, error) {
	rs, err := c.ReplicaStatus(ctx)
	if err != nil || rs == nil {
		return nil, err
	}
	sqlRunning := "No"
	if rs.SQLRunning {
		sqlRunning = "Yes"
	}
	st := &ReplicaStatus{
		MasterHost:   rs.MasterHost,
		MasterPort:   rs.MasterPort,
		IORunning:    rs.IORunning.String(),
		SQLRunning:   sqlRunning,
		LastIOError:  rs.LastIOError,
		LastSQLError: rs.LastSQLError,
		Read:         BinlogPos{File: rs.MasterLogFile, Pos: rs.ReadMasterLogPos},
		Exec:         BinlogPos{File: rs.RelayMasterLogFile, Pos: rs.ExecMasterLogPos},
		GTIDIOPos:    rs.GTIDIOPos,
	}
	if rs.SecondsBehind != nil {
		st.Lag = sql.NullInt64{Int64: *rs.SecondsBehind, Valid: true}
	}
	return st, nil
}

// WaitReplicating waits until every running replica has its IO and SQL
// threads running and has executed its master's binary log up to the
// master's position when the wait began. Replicas are found from the
// replica status of the running instances, so it also works after a failover;
// instances whose process is not running are skipped. Without a deadline
// in ctx it gives up after a minute.
func (s *Sandbox) WaitReplicating(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, waitReplicatingDefault)
		defer cancel()
	}
	insts := s.Instances()
	conns := make([]*topology.Conn, len(insts)) // opened on first use: stopped instances are never asked
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	targets := map[int]BinlogPos{} // master's index -> position to reach
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		pending, err := s.replicationPending(ctx, insts, conns, targets)
		if err != nil {
			return err
		}
		if pending == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sandbox: replication not caught up: %s: %w", pending, ctx.Err())
		case <-tick.C:
		}
	}
}

// replicationPending checks every running instance once. It returns why
// replication is not yet caught up ("" when it is), or an error that
// waiting will not fix (a stopped SQL thread).
func (s *Sandbox) replicationPending(ctx context.Context, insts []Instance, conns []*topology.Conn, targets map[int]BinlogPos) (string, error) {
	byPort, byAddr := map[int]int{}, map[string]int{}
	for i, inst := range insts {
		byPort[inst.Port] = i
		byAddr[inst.Addr()] = i
	}
	var pending []string
	for i, inst := range insts {
		if !s.alive(i) {
			continue
		}
		c, err := s.connOnce(ctx, conns, i)
		if err != nil {
			pending = append(pending, err.Error())
			continue
		}
		st, err := replicaStatus(ctx, c)
		if err != nil {
			pending = append(pending, fmt.Sprintf("%s: %v", inst.Name, err))
			continue
		}
		if st == nil {
			continue // not a replica
		}
		if st.SQLRunning == "No" && st.LastSQLError != "" {
			return "", fmt.Errorf("sandbox: %s: SQL thread stopped: %s", inst.Name, st.LastSQLError)
		}
		if st.IORunning != "Yes" || st.SQLRunning != "Yes" {
			pending = append(pending, fmt.Sprintf("%s: io=%s sql=%s %s", inst.Name, st.IORunning, st.SQLRunning, st.LastIOError))
			continue
		}
		// Placed instances may share a port on different addresses; a
		// master configured under an alias (tests that reach loopback
		// servers through a bridge address) is found by its port.
		m, ok := byAddr[net.JoinHostPort(st.MasterHost, strconv.Itoa(st.MasterPort))]
		if !ok {
			m, ok = byPort[st.MasterPort]
		}
		if !ok {
			return "", fmt.Errorf("sandbox: %s replicates from %s:%d, not in this sandbox", inst.Name, st.MasterHost, st.MasterPort)
		}
		target, ok := targets[m]
		if !ok {
			if !s.alive(m) {
				pending = append(pending, fmt.Sprintf("%s: master %s is not running", inst.Name, insts[m].Name))
				continue
			}
			mc, err := s.connOnce(ctx, conns, m)
			if err == nil {
				target, err = masterStatus(ctx, mc)
			}
			if err != nil {
				pending = append(pending, fmt.Sprintf("%s: master %s: %v", inst.Name, insts[m].Name, err))
				continue
			}
			targets[m] = target
		}
		if st.Exec.less(target) {
			pending = append(pending, fmt.Sprintf("%s: executed %s < master %s at %s", inst.Name, st.Exec, insts[m].Name, target))
		}
	}
	return strings.Join(pending, "; "), nil
}

// connOnce returns conns[i], connecting it first if need be.
func (s *Sandbox) connOnce(ctx context.Context, conns []*topology.Conn, i int) (*topology.Conn, error) {
	if conns[i] == nil {
		c, err := s.adminConn(ctx, i)
		if err != nil {
			return nil, err
		}
		conns[i] = c
	}
	return conns[i], nil
}
