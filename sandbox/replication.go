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

// setupReplication points every replica at instance 0 and starts it.
func (s *Sandbox) setupReplication(ctx context.Context) error {
	n := len(s.Instances())
	if n < 2 {
		return nil
	}
	master := s.Instance(0)
	var from BinlogPos
	if !s.opts.GTID {
		db, err := s.AdminDB(0)
		if err != nil {
			return err
		}
		from, err = masterStatus(ctx, db)
		_ = db.Close()
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

// attachReplica runs CHANGE MASTER TO and START SLAVE on instance i.
func (s *Sandbox) attachReplica(ctx context.Context, i int, master Instance, from BinlogPos) error {
	inst := s.Instance(i)
	db, err := s.AdminDB(i)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	change := fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%d, MASTER_USER='%s', "+
		"MASTER_PASSWORD='%s', MASTER_CONNECT_RETRY=1", master.host(), master.Port, ReplUser, ReplPassword)
	if hb := s.opts.HeartbeatPeriod; hb > 0 {
		change += fmt.Sprintf(", MASTER_HEARTBEAT_PERIOD=%.3f", hb.Seconds())
	}
	if s.opts.GTID {
		change += ", MASTER_USE_GTID=slave_pos"
	} else {
		change += fmt.Sprintf(", MASTER_USE_GTID=no, MASTER_LOG_FILE='%s', MASTER_LOG_POS=%d", from.File, from.Pos)
	}
	for _, q := range []string{change, "START SLAVE"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("sandbox: %s: %s: %w", inst.Name, strings.SplitN(q, " MASTER_HOST", 2)[0], err)
		}
	}
	return nil
}

// masterStatus reads SHOW MASTER STATUS.
func masterStatus(ctx context.Context, db *sql.DB) (BinlogPos, error) {
	row, err := queryRowMap(ctx, db, "SHOW MASTER STATUS")
	if err != nil {
		return BinlogPos{}, err
	}
	if row == nil {
		return BinlogPos{}, errors.New("SHOW MASTER STATUS: binary log is off")
	}
	pos, err := strconv.ParseUint(row["Position"], 10, 64)
	if err != nil {
		return BinlogPos{}, fmt.Errorf("SHOW MASTER STATUS: position %q: %w", row["Position"], err)
	}
	return BinlogPos{File: row["File"], Pos: pos}, nil
}

// queryRowMap returns the first row of query as column name -> value, or
// nil when there is no row. NULL reads as "".
func queryRowMap(ctx context.Context, db *sql.DB, query string) (map[string]string, error) {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", query, err)
	}
	defer func() { _ = rows.Close() }()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", query, err)
	}
	if !rows.Next() {
		return nil, rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, fmt.Errorf("%s: %w", query, err)
	}
	m := make(map[string]string, len(cols))
	for i, c := range cols {
		m[c] = vals[i].String
	}
	return m, rows.Err()
}

// ReplicaStatus is the part of SHOW SLAVE STATUS the sandbox looks at.
type ReplicaStatus struct {
	MasterHost   string
	MasterPort   int
	IORunning    string // "Yes", "No", "Connecting"
	SQLRunning   string
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
	db, err := s.AdminDB(i)
	if err != nil {
		return nil, err
	}
	defer func() { _ = db.Close() }()
	return replicaStatus(ctx, db)
}

func replicaStatus(ctx context.Context, db *sql.DB) (*ReplicaStatus, error) {
	row, err := queryRowMap(ctx, db, "SHOW SLAVE STATUS")
	if err != nil || row == nil {
		return nil, err
	}
	st := &ReplicaStatus{
		MasterHost:   row["Master_Host"],
		IORunning:    row["Slave_IO_Running"],
		SQLRunning:   row["Slave_SQL_Running"],
		LastIOError:  row["Last_IO_Error"],
		LastSQLError: row["Last_SQL_Error"],
		Read:         BinlogPos{File: row["Master_Log_File"]},
		Exec:         BinlogPos{File: row["Relay_Master_Log_File"]},
		GTIDIOPos:    row["Gtid_IO_Pos"],
	}
	st.MasterPort, _ = strconv.Atoi(row["Master_Port"])
	st.Read.Pos, _ = strconv.ParseUint(row["Read_Master_Log_Pos"], 10, 64)
	st.Exec.Pos, _ = strconv.ParseUint(row["Exec_Master_Log_Pos"], 10, 64)
	if v := row["Seconds_Behind_Master"]; v != "" {
		if lag, err := strconv.ParseInt(v, 10, 64); err == nil {
			st.Lag = sql.NullInt64{Int64: lag, Valid: true}
		}
	}
	return st, nil
}

// WaitReplicating waits until every running replica has its IO and SQL
// threads running and has executed its master's binary log up to the
// master's position when the wait began. Replicas are found from SHOW SLAVE
// STATUS of the running instances, so it also works after a failover;
// instances whose process is not running are skipped. Without a deadline
// in ctx it gives up after a minute.
func (s *Sandbox) WaitReplicating(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, waitReplicatingDefault)
		defer cancel()
	}
	insts := s.Instances()
	dbs := make([]*sql.DB, len(insts))
	defer func() {
		for _, db := range dbs {
			if db != nil {
				_ = db.Close()
			}
		}
	}()
	for i := range insts {
		db, err := s.AdminDB(i)
		if err != nil {
			return err
		}
		db.SetMaxOpenConns(1)
		dbs[i] = db
	}
	targets := map[int]BinlogPos{} // master's index -> position to reach
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		pending, err := s.replicationPending(ctx, insts, dbs, targets)
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
func (s *Sandbox) replicationPending(ctx context.Context, insts []Instance, dbs []*sql.DB, targets map[int]BinlogPos) (string, error) {
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
		st, err := replicaStatus(ctx, dbs[i])
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
			target, err = masterStatus(ctx, dbs[m])
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
