package harness

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // the "mysql" database/sql driver
)

// loadTable is the table a WriteLoad inserts into; TestDB is qha_test in the
// sandbox, where the application account may create tables.
const loadTable = "qha_test.load"

const createLoadTable = "CREATE TABLE IF NOT EXISTS " + loadTable +
	" (id BIGINT PRIMARY KEY, at DATETIME(6) NOT NULL, src VARCHAR(32) NOT NULL)"

// writeTimeout bounds one insert (a semi-sync master may wait its own
// timeout before it acknowledges).
const writeTimeout = 5 * time.Second

// WriteLoad inserts one row per interval into qha_test.load with a
// client-side increasing id (nextID: the clock in nanoseconds),
// through whatever DSN dsnFunc returns at that
// moment, so a failover test can follow the current master. Every insert is
// either acknowledged (the autocommit INSERT returned OK: the row must
// survive) or failed (it may or may not have been applied).
type WriteLoad struct {
	dsnFunc  func() string
	interval time.Duration
	src      string

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	mu    sync.Mutex
	stats Stats
}

// Stats is what a WriteLoad did.
type Stats struct {
	// Acked are the ids whose insert returned OK, in order.
	Acked []int64
	// Acks are the acknowledged inserts with their times, in order (the
	// same ids as Acked).
	Acks []Ack
	// FailedIDs are the ids whose insert returned an error (or timed out).
	FailedIDs []int64
	// FailedAt are when each of FailedIDs failed (the chaos timeline
	// draws failures over time).
	FailedAt []time.Time
	// FailedErrs are their errors' texts (a stretch of failures is
	// explained by what the client was told, e.g. read-only or refused).
	FailedErrs []string
	// Failed is len(FailedIDs).
	Failed int
	// FirstAckAt and LastAckAt bound the acknowledged inserts.
	FirstAckAt, LastAckAt time.Time
	// FirstErrAt and LastErrAt bound the failed inserts; LastErr is the
	// newest error's text.
	FirstErrAt, LastErrAt time.Time
	LastErr               string
}

// StartWriteLoad starts the load; it runs until Stop or the end of the test.
// The source column is the test's name, truncated.
func StartWriteLoad(t testing.TB, dsnFunc func() string, interval time.Duration) *WriteLoad {
	t.Helper()
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	src := t.Name()
	if len(src) > 32 {
		src = src[len(src)-32:]
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &WriteLoad{dsnFunc: dsnFunc, interval: interval, src: src, cancel: cancel, done: make(chan struct{})}
	go w.run(ctx) // owned by w: Stop (or t.Cleanup) cancels and waits for it
	t.Cleanup(func() { w.Stop() })
	return w
}

// Snapshot returns the statistics so far while the load keeps running.
func (w *WriteLoad) Snapshot() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats.clone()
}

// Stop ends the load, waits for the in-flight insert and returns the final
// statistics. It may be called more than once.
func (w *WriteLoad) Stop() Stats {
	w.once.Do(func() {
		w.cancel()
		<-w.done
	})
	return w.Snapshot()
}

// Ack is one acknowledged insert: its id, when it was sent and when the
// server's OK arrived (the write was committed somewhere in between).
type Ack struct {
	ID       int64
	Sent, At time.Time
}

func (s Stats) clone() Stats {
	s.Acked = slices.Clone(s.Acked)
	s.Acks = slices.Clone(s.Acks)
	s.FailedIDs = slices.Clone(s.FailedIDs)
	s.FailedAt = slices.Clone(s.FailedAt)
	s.FailedErrs = slices.Clone(s.FailedErrs)
	return s
}

func (w *WriteLoad) run(ctx context.Context) {
	defer close(w.done)
	var (
		db      *sql.DB
		current string
		ready   bool // the table exists on db's server
		next    int64
	)
	defer func() {
		if db != nil {
			_ = db.Close()
		}
	}()
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	for {
		next = nextID(next, time.Now())
		if dsn := w.dsnFunc(); dsn != current || db == nil {
			if db != nil {
				_ = db.Close()
			}
			var err error
			db, err = sql.Open("mysql", dsn)
			if err != nil {
				w.record(next, fmt.Errorf("open: %w", err))
				db = nil
			} else {
				db.SetMaxOpenConns(1)
				db.SetMaxIdleConns(1)
			}
			current, ready = dsn, false
		}
		if db != nil {
			sent := time.Now()
			err := w.insert(ctx, db, &ready, next)
			if err != nil && ctx.Err() != nil {
				// Stop cancelled this write: its outcome is unknown and it
				// is not the server's failure. Not acknowledged, not failed.
				return
			}
			w.recordSent(next, sent, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// nextID is the id of a writer's next insert: the clock in nanoseconds,
// or one more than the last id when the clock has not moved past it. Ids
// follow the clock, not a count from the writer's start: two writers that
// counted from their start times 60 ms apart (the chaos run's group-side
// writer and its first round's in-zone writer) met after 20 minutes, when
// the first had counted 60,000 µs worth of ids at 50 a second, and every
// insert of the group-side writer then failed on a duplicate key for 28 s.
// Following the clock, two writers share an id only if they take it in
// the same nanosecond.
func nextID(prev int64, now time.Time) int64 {
	return max(prev+1, now.UnixNano())
}

func (w *WriteLoad) insert(ctx context.Context, db *sql.DB, ready *bool, id int64) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	if !*ready {
		if _, err := db.ExecContext(ctx, createLoadTable); err != nil {
			return fmt.Errorf("create table: %w", err)
		}
		*ready = true
	}
	_, err := db.ExecContext(ctx, "INSERT INTO "+loadTable+" (id, at, src) VALUES (?, NOW(6), ?)", id, w.src)
	return err
}

func (w *WriteLoad) record(id int64, err error) { w.recordSent(id, time.Time{}, err) }

func (w *WriteLoad) recordSent(id int64, sent time.Time, err error) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil {
		w.stats.Acked = append(w.stats.Acked, id)
		w.stats.Acks = append(w.stats.Acks, Ack{ID: id, Sent: sent, At: now})
		if w.stats.FirstAckAt.IsZero() {
			w.stats.FirstAckAt = now
		}
		w.stats.LastAckAt = now
		return
	}
	w.stats.FailedIDs = append(w.stats.FailedIDs, id)
	w.stats.FailedAt = append(w.stats.FailedAt, now)
	w.stats.FailedErrs = append(w.stats.FailedErrs, err.Error())
	w.stats.Failed = len(w.stats.FailedIDs)
	if w.stats.FirstErrAt.IsZero() {
		w.stats.FirstErrAt = now
	}
	w.stats.LastErrAt, w.stats.LastErr = now, err.Error()
}

// MissingAcked returns the acknowledged ids that the server behind db does
// not have: each one is a lost write.
func MissingAcked(ctx context.Context, db *sql.DB, acked []int64) ([]int64, error) {
	if len(acked) == 0 {
		return nil, nil
	}
	have, err := LoadIDs(ctx, db)
	if err != nil {
		return nil, err
	}
	return MissingIDs(acked, have), nil
}

// LoadIDs returns every id in the write loads' table on db's server.
func LoadIDs(ctx context.Context, db *sql.DB) ([]int64, error) {
	rows, err := db.QueryContext(ctx, "SELECT id FROM "+loadTable)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", loadTable, err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
