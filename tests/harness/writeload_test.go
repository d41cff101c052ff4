package harness

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
)

func TestWriteLoad_CountsAckedAndFailedAcrossMasterRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a MariaDB server")
	}
	sb := sandbox.New(t, sandbox.Options{Replicas: -1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := StartWriteLoad(t, func() string { return sb.DSN(0, sandbox.AppUser, sandbox.AppPassword) }, 20*time.Millisecond)
	waitFor := func(what string, ok func(Stats) bool) {
		t.Helper()
		err := Poll(ctx, 20*time.Millisecond, func() error {
			if s := w.Snapshot(); !ok(s) {
				return fmt.Errorf("%s: %d acked, %d failed (%s)", what, len(s.Acked), s.Failed, s.LastErr)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	waitFor("first writes", func(s Stats) bool { return len(s.Acked) >= 10 })
	if err := sb.Kill(0); err != nil {
		t.Fatal(err)
	}
	waitFor("failures while down", func(s Stats) bool { return s.Failed >= 2 })
	down := w.Snapshot()
	if err := sb.StartInstance(ctx, 0); err != nil {
		t.Fatal(err)
	}
	waitFor("writes after restart", func(s Stats) bool { return len(s.Acked) >= len(down.Acked)+10 })
	st := w.Stop()
	if again := w.Stop(); len(again.Acked) != len(st.Acked) {
		t.Fatalf("second Stop saw %d acks, first %d", len(again.Acked), len(st.Acked))
	}
	if !slices.IsSorted(st.Acked) || st.FirstErrAt.Before(st.FirstAckAt) || st.LastAckAt.Before(st.LastErrAt) {
		t.Fatalf("inconsistent stats: %+v", st)
	}
	for _, id := range st.FailedIDs {
		if slices.Contains(st.Acked, id) {
			t.Fatalf("id %d both acknowledged and failed", id)
		}
	}
	db, err := sb.AdminDB(0)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	missing, err := MissingAcked(ctx, db, st.Acked)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		t.Fatalf("kill -9 lost %d acknowledged writes: %v", len(missing), missing)
	}
}
