package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
	"github.com/quorumha/quorumha/tests/harness"
)

// TestBenchSwitchover runs planned switchovers back and forth on one
// sandbox (GTID, semi-sync, three controllers) with a client that follows
// GET /v1/clusters/{name}/master and inserts every 5 ms, and prints the
// write-unavailable window (last acknowledged write on the old master →
// first acknowledged write on the new one), the whole switch (record opened
// → closed) and the acknowledged writes lost. MHA 0.58: 0.09-0.17 s window,
// 2.7 s switch.
func TestBenchSwitchover(t *testing.T) {
	skipUnlessBench(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := startFailoverEnv(ctx, t, foOptions{})
	adb, err := e.sb.AdminDB(0)
	if err != nil {
		t.Fatal(err)
	}
	detExec(ctx, t, adb, "CREATE TABLE IF NOT EXISTS qha_test.load (id BIGINT PRIMARY KEY, at DATETIME(6) NOT NULL, src VARCHAR(32) NOT NULL)")
	_ = adb.Close()
	if err := e.sb.WaitReplicating(ctx); err != nil {
		t.Fatal(err)
	}
	w := startStampedWriter(t, e)
	leader, _ := e.leaderAndFollower(ctx, t)
	var windows, switches []time.Duration
	phases := &benchPhases{}
	master := 0
	for i := 0; i < benchRuns(); i++ {
		target := 1
		if master == 1 {
			target = 0
		}
		waitStampedAcks(ctx, t, w, master, 20)
		before := e.lastRecordID(ctx, t)
		var resp struct {
			RecordID uint64 `json:"record_id"`
		}
		code, err := harness.Do(ctx, http.MethodPost, leader.URL("/v1/clusters/"+detCluster+"/switchover"), map[string]any{"to": e.addr(target), "by": "bench"}, &resp)
		if err != nil || code != http.StatusAccepted {
			t.Fatalf("switchover: HTTP %d: %v", code, err)
		}
		rec := e.waitSwitchoverClosed(ctx, t, before)
		if rec.Result != "success" {
			t.Fatalf("switchover: %s", rec.summary())
		}
		waitStampedAcks(ctx, t, w, target, 20)
		switches = append(switches, rec.Closed.Sub(rec.Opened))
		windows = append(windows, w.window(master, target, rec.Opened))
		phases.add(t, rec, rec.Opened, time.Time{})
		if ro, ok := rec.step("read_only_old"); ok {
			if pr, ok := rec.step("promote"); ok {
				// The server-side write block: read_only on the old master
				// until the new master is promoted and named.
				phases.put("read_only_old start -> promote end", pr.End.Sub(ro.Start))
			}
		}
		t.Logf("run %d: client write gap %s", i+1, windows[len(windows)-1].Round(time.Millisecond))
		master = target
	}
	acked := w.stop()
	lost := 0
	if err := e.sb.WaitReplicating(ctx); err != nil {
		t.Fatal(err)
	}
	db, err := e.sb.AdminDB(master)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	missing, err := harness.MissingAcked(ctx, db, acked)
	if err != nil {
		t.Fatal(err)
	}
	lost += len(missing)
	fmt.Println(summarize("switchover: write-unavailable window (last ack on old master -> first ack on new, 5 ms writer)", windows))
	fmt.Println(summarize("switchover: whole switch (record opened -> closed)", switches))
	fmt.Printf("BENCH switchover: acknowledged writes lost over %d runs: %d\n", len(windows), lost)
	phases.print("switchover")
}

// stampedWriter inserts every 5 ms into the master the controllers name
// and remembers when each acknowledged write landed, and where.
type stampedWriter struct {
	cancel context.CancelFunc
	done   chan struct{}
	acks   chan stampedAck
	log    []stampedAck
}

type stampedAck struct {
	at  time.Time
	idx int
	id  int64
}

func startStampedWriter(t *testing.T, e *foEnv) *stampedWriter {
	ctx, cancel := context.WithCancel(context.Background())
	w := &stampedWriter{cancel: cancel, done: make(chan struct{}), acks: make(chan stampedAck, 1<<16)}
	go w.run(ctx, e) // owned by w: stop cancels and waits
	t.Cleanup(func() { w.stop() })
	return w
}

func (w *stampedWriter) run(ctx context.Context, e *foEnv) {
	defer close(w.done)
	mf := &masterFollower{sb: e.sb, g: e.g}
	idx := 0
	dbs := map[int]*sql.DB{}
	defer func() {
		for _, db := range dbs {
			_ = db.Close()
		}
	}()
	id := time.Now().UnixMicro()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		db, ok := dbs[idx]
		if !ok {
			var err error
			db, err = sql.Open("mysql", e.sb.DSN(idx, sandbox.AppUser, sandbox.AppPassword))
			if err == nil {
				db.SetMaxOpenConns(1)
				dbs[idx] = db
			}
		}
		id++
		ok = false
		if db != nil {
			ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := db.ExecContext(ictx, "INSERT INTO qha_test.load (id, at, src) VALUES (?, NOW(6), 'bench')", id)
			cancel()
			ok = err == nil
		}
		if ok {
			w.acks <- stampedAck{at: time.Now(), idx: idx, id: id}
		} else if i, found := mf.resolve(); found {
			idx = i
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// drain moves reported acknowledgements into the log.
func (w *stampedWriter) drain() {
	for {
		select {
		case a := <-w.acks:
			w.log = append(w.log, a)
		default:
			return
		}
	}
}

// window is the gap between the last acknowledged write on from before
// the switch and the first one on to after it.
func (w *stampedWriter) window(from, to int, opened time.Time) time.Duration {
	w.drain()
	var last, first time.Time
	for _, a := range w.log {
		if a.idx == from && (a.at.Before(opened) || first.IsZero()) {
			last = a.at
		}
		if a.idx == to && a.at.After(opened) && first.IsZero() {
			first = a.at
		}
	}
	return first.Sub(last)
}

func (w *stampedWriter) stop() []int64 {
	w.cancel()
	<-w.done
	w.drain()
	ids := make([]int64, 0, len(w.log))
	for _, a := range w.log {
		ids = append(ids, a.id)
	}
	return ids
}

// waitStampedAcks polls until n writes were acknowledged on instance idx
// since the call.
func waitStampedAcks(ctx context.Context, t *testing.T, w *stampedWriter, idx, n int) {
	t.Helper()
	w.drain()
	start := len(w.log)
	err := harness.Poll(ctx, 10*time.Millisecond, func() error {
		w.drain()
		got := 0
		for _, a := range w.log[start:] {
			if a.idx == idx {
				got++
			}
		}
		if got < n {
			return fmt.Errorf("%d writes acknowledged on %d", got, idx)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
