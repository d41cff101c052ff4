package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/quorumha/quorumha/sandbox"
)

// semiSyncStatus is what one server says of the master side of its
// semi-synchronous replication.
type semiSyncStatus struct {
	Enabled, WaitNoSlave string
	TimeoutMS            int64
	WaitPoint            string
	Status               string // Rpl_semi_sync_master_status: OFF after a fallback to async
	Clients, NoTimes     int64  // semi-sync replicas connected; fallbacks to async since start
	NoTx, WaitSessions   int64  // commits not acknowledged by a replica; sessions waiting for an ACK now
}

func (c *chaosRun) semiSync(ctx context.Context, i int) (semiSyncStatus, error) {
	var st semiSyncStatus
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	db, err := sql.Open("mysql", c.e.sb.DSN(i, sandbox.AdminUser, sandbox.AdminPassword))
	if err != nil {
		return st, err
	}
	defer db.Close()
	if err := db.QueryRowContext(ctx, "SELECT @@rpl_semi_sync_master_enabled, @@rpl_semi_sync_master_timeout, @@rpl_semi_sync_master_wait_point, @@rpl_semi_sync_master_wait_no_slave").
		Scan(&st.Enabled, &st.TimeoutMS, &st.WaitPoint, &st.WaitNoSlave); err != nil {
		return st, err
	}
	rows, err := db.QueryContext(ctx, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_%'")
	if err != nil {
		return st, err
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return st, err
		}
		var n int64
		_, _ = fmt.Sscan(v, &n)
		switch strings.ToLower(k) {
		case "rpl_semi_sync_master_status":
			st.Status = v
		case "rpl_semi_sync_master_clients":
			st.Clients = n
		case "rpl_semi_sync_master_no_times":
			st.NoTimes = n
		case "rpl_semi_sync_master_no_tx":
			st.NoTx = n
		case "rpl_semi_sync_master_wait_sessions":
			st.WaitSessions = n
		}
	}
	return st, rows.Err()
}

func (s semiSyncStatus) String() string {
	return fmt.Sprintf("semi-sync master enabled=%s status=%s clients=%d timeout=%dms wait_point=%s wait_no_slave=%s no_times=%d no_tx=%d wait_sessions=%d",
		s.Enabled, s.Status, s.Clients, s.TimeoutMS, s.WaitPoint, s.WaitNoSlave, s.NoTimes, s.NoTx, s.WaitSessions)
}

// semiSyncFallbacks reads Rpl_semi_sync_master_no_times of every server
// that answers, by address.
func (c *chaosRun) semiSyncFallbacks(ctx context.Context) map[string]int64 {
	out := map[string]int64{}
	for i, in := range c.e.sb.Instances() {
		if !c.e.sb.Alive(i) {
			continue
		}
		if st, err := c.semiSync(ctx, i); err == nil {
			out[in.Addr()] = st.NoTimes
		}
	}
	return out
}

// semiSyncRound describes the semi-sync state of the round's master (the
// one settle found) and whether its commits fell back to async during the
// round: each fallback is a commit that waited rpl_semi_sync_master_timeout
// for an ACK no replica sent, which the writers see as unavailability after
// the promotion.
func (c *chaosRun) semiSyncRound(ctx context.Context, before map[string]int64) (string, bool) {
	addr := c.e.sb.Instance(c.master).Addr()
	st, err := c.semiSync(ctx, c.master)
	if err != nil {
		return fmt.Sprintf("master %s: semi-sync state unread: %v", addr, err), false
	}
	prev, known := before[addr]
	if !known || st.NoTimes < prev {
		prev = 0 // not answering before the round, or restarted since
	}
	fell := st.NoTimes > prev
	d := fmt.Sprintf("master %s: %s", addr, st)
	if fell {
		d += fmt.Sprintf("; its commits fell back to async %d time(s) this round (Rpl_semi_sync_master_no_times %d→%d): "+
			"a commit waited rpl_semi_sync_master_timeout (%d ms) for an ACK no replica sent",
			st.NoTimes-prev, prev, st.NoTimes, st.TimeoutMS)
	}
	return d, fell
}

// trace logs, every half second while a round runs, what the group-side
// writer and every server show (QUORUMHA_CHAOS_TRACE=1): the evidence for
// a gap's cause. The returned func stops it and waits.
func (c *chaosRun) trace(ctx context.Context, n int) func() {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owned by the returned stop func
		defer wg.Done()
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			s := c.group.Snapshot()
			var b strings.Builder
			fmt.Fprintf(&b, "trace round %d: group writer %d acked (last %s), %d failed, last error %q",
				n, len(s.Acked), s.LastAckAt.Format("15:04:05.000"), s.Failed, s.LastErr)
			for i, in := range c.e.sb.Instances() {
				if !c.e.sb.Alive(i) {
					fmt.Fprintf(&b, "\n  %s: down", in.Addr())
					continue
				}
				st, err := c.semiSync(ctx, i)
				if err != nil {
					fmt.Fprintf(&b, "\n  %s: %v", in.Addr(), err)
					continue
				}
				fmt.Fprintf(&b, "\n  %s: %s", in.Addr(), st)
			}
			c.t.Log(b.String())
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// describe says whether the kill landed in the middle of the failover
// (the record, as every controller now serves it, was open at the kill)
// and in which step, and who finished the record.
func (k *midFailoverKill) describe(rec *foRecord) (string, bool) {
	if k.killed == "" {
		return "the runner killed no controller", false
	}
	at := k.at.UTC().Format("15:04:05.000")
	if rec == nil {
		return fmt.Sprintf("killed %s at %s; record %d is not in the agreed history", k.killed, at, k.observed.ID), false
	}
	if !k.observed.open() || (!rec.Closed.IsZero() && !rec.Closed.After(k.at)) {
		return fmt.Sprintf("killed %s at %s, after record %d had closed (%s at %s): not mid-failover",
			k.killed, at, rec.ID, rec.Result, rec.Closed.UTC().Format("15:04:05.000")), false
	}
	where := "before its first step"
	for _, s := range rec.Steps {
		if s.Start.After(k.at) {
			break
		}
		if s.End.IsZero() || s.End.After(k.at) {
			where = fmt.Sprintf("in step %s (begun by %s %s before the kill)", s.Name, s.Leader, k.at.Sub(s.Start).Round(time.Millisecond))
		} else {
			where = "between steps, after " + s.Name
		}
	}
	var resumed []string
	seen := map[string]bool{}
	for _, s := range rec.Steps {
		if s.Start.After(k.at) && s.Leader != k.killed && !seen[s.Leader] {
			seen[s.Leader] = true
			resumed = append(resumed, s.Leader)
		}
	}
	d := fmt.Sprintf("killed %s at %s with record %d open %s", k.killed, at, rec.ID, where)
	if len(resumed) > 0 {
		d += "; resumed by " + strings.Join(resumed, ", ")
	}
	if rec.open() {
		d += "; the record is still open"
	} else {
		d += fmt.Sprintf("; closed %s at %s, new master %s", rec.Result, rec.Closed.UTC().Format("15:04:05.000"), rec.NewMaster)
	}
	return d, true
}
