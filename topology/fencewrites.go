package topology

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// fenceKillEvery is how often FenceWrites kills client sessions while its
// read_only statement waits.
const fenceKillEvery = 20 * time.Millisecond

// FenceWrites turns writes off (SetReadOnly) and kills every client session
// (KillClientSessions) so that neither waits for the other.
//
// The order matters. SET GLOBAL read_only waits for every transaction in
// commit, and a commit that waits for a semi-sync acknowledgement from
// replicas that are gone waits rpl_semi_sync_master_timeout (10 s by
// default, often more): setting read_only first leaves the server writable
// that long, past the quorum lease the controllers count on, and then the
// waiting commits fall back to async and are acknowledged on a master that
// is about to be replaced. Killing first alone lets sessions that connect
// in between write. So read_only is set on one session while another kills
// client sessions, again every fenceKillEvery, until it returns: a killed
// session waiting for an acknowledgement ends at once and its client gets
// an error, never an OK. A last pass kills what connected before read_only
// took effect (accounts with READ ONLY ADMIN, or SUPER, write through it).
//
// spareIDs are left alive (the caller's global read lock session). It
// returns every session it killed, each once.
func (c *Conn) FenceWrites(ctx context.Context, spareIDs ...uint64) ([]Process, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	ro, err := c.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: fence writes: %w", c.addr, err)
	}
	defer func() { _ = ro.Close() }()
	kc, err := c.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: fence writes: %w", c.addr, err)
	}
	defer func() { _ = kc.Close() }()
	var roID, self uint64
	if err := ro.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&roID); err != nil {
		return nil, fmt.Errorf("%s: fence writes: %w", c.addr, err)
	}
	if err := kc.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&self); err != nil {
		return nil, fmt.Errorf("%s: fence writes: %w", c.addr, err)
	}
	c.log.InfoContext(ctx, "fence writes: set read_only while killing client sessions")

	// The statement runs on its own goroutine; every path below receives
	// from done before returning (ctx ends it at the latest).
	done := make(chan error, 1)
	go func() {
		var err error
		for _, s := range c.Version().ReadOnlySQL(true) {
			if _, err = ro.ExecContext(ctx, s); err != nil {
				break
			}
		}
		done <- err
	}()

	spare := append(append([]uint64(nil), spareIDs...), roID)
	seen := map[uint64]bool{}
	var killed []Process
	collect := func(ps []Process) {
		for _, p := range ps {
			if !seen[p.ID] {
				seen[p.ID] = true
				killed = append(killed, p)
			}
		}
	}
	tick := time.NewTicker(fenceKillEvery)
	defer tick.Stop()
	var roErr, killErr error
	for waiting := true; waiting; {
		ps, err := killSessions(ctx, kc, c.addr, self, spare, nil)
		collect(ps)
		if err != nil {
			killErr = err
			if ctx.Err() != nil {
				roErr = <-done
				break
			}
		}
		select {
		case roErr = <-done:
			waiting = false
		case <-tick.C:
		}
	}
	if roErr == nil {
		ps, err := killSessions(ctx, kc, c.addr, self, spare, nil)
		collect(ps)
		killErr = err
	}
	if len(killed) > 0 {
		c.log.InfoContext(ctx, "fence writes: killed client sessions", "count", len(killed))
	}
	if roErr != nil {
		roErr = fmt.Errorf("%s: set read_only: %w", c.addr, roErr)
	}
	return killed, errors.Join(roErr, killErr)
}
