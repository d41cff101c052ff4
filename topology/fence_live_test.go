package topology_test

import (
	"errors"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/quorumha/quorumha/sandbox"
	"github.com/quorumha/quorumha/topology"
)

// TestGlobalReadLock_RealMariaDB: over the server's socket, WritesOff
// follows read_only, and the global read lock stops an ALL PRIVILEGES
// account (which writes through read_only on MariaDB 10.11) until Release.
func TestGlobalReadLock_RealMariaDB(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("real MariaDB: not with -short")
	}
	sb := sandbox.New(t, sandbox.Options{Replicas: -1, GTID: true})
	ctx := liveCtx(t, time.Minute)
	c, err := topology.OpenSocket(ctx, sb.Instance(0).Socket, topology.Credentials{User: sandbox.AdminUser, Password: sandbox.AdminPassword}, liveTimeouts, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	other := liveConns(t, sb)[0] // TCP, the same ALL PRIVILEGES account
	if off, err := c.WritesOff(ctx); err != nil || off {
		t.Fatalf("WritesOff on a fresh master: %v, %v", off, err)
	}
	if err := c.SetReadOnly(ctx, true); err != nil {
		t.Fatal(err)
	}
	if off, err := c.WritesOff(ctx); err != nil || !off {
		t.Fatalf("WritesOff after SetReadOnly: %v, %v", off, err)
	}
	insert := func(id string) error {
		conn, err := other.DB().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "SET SESSION lock_wait_timeout = 1"); err != nil {
			t.Fatal(err)
		}
		_, err = conn.ExecContext(ctx, "INSERT INTO "+sandbox.TestDB+".gl VALUES ("+id+")")
		return err
	}
	if _, err := other.DB().ExecContext(ctx, "CREATE TABLE "+sandbox.TestDB+".gl (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if err := insert("1"); err != nil {
		t.Fatalf("ALL PRIVILEGES write under read_only alone: %v (MariaDB 10.11 lets it through)", err)
	}
	lock, err := c.LockGlobalRead(ctx, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := lock.Alive(ctx); err != nil {
		t.Fatal(err)
	}
	var me *mysql.MySQLError
	if err := insert("2"); !errors.As(err, &me) || (me.Number != 1205 && me.Number != 1223) {
		t.Fatalf("write under the global read lock: %v, want a lock wait error", err)
	}
	if err := lock.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := insert("3"); err != nil {
		t.Fatalf("write after Release: %v", err)
	}
	if err := c.SetReadOnly(ctx, false); err != nil {
		t.Fatal(err)
	}
}
