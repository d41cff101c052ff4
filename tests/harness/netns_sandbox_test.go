package harness

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
)

func TestSandboxInZones_ReplicatesAcrossTheBridge(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MariaDB servers")
	}
	nw := NewNet(t, 2)
	sb := sandbox.New(t, sandbox.Options{Replicas: 2, GTID: true, SemiSync: true, HeartbeatPeriod: time.Second,
		Placement: []sandbox.Placement{
			{NetNS: nw.Zones[0].Name, IP: nw.Zones[0].IP},
			{NetNS: nw.Zones[1].Name, IP: nw.Zones[1].IP},
			{IP: nw.HostIP}, // root namespace, on the bridge
		}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if got, want := sb.Instance(0).Addr(), nw.Zones[0].IP; got[:len(want)] != want {
		t.Fatalf("master addressed as %s, want %s:port", got, want)
	}
	for i := 1; i <= 2; i++ {
		st, err := sb.ReplicaStatus(ctx, i)
		if err != nil || st == nil {
			t.Fatalf("replica %d: %+v %v", i, st, err)
		}
		if st.MasterHost != nw.Zones[0].IP || st.IORunning != "Yes" {
			t.Fatalf("replica %d replicates from %s:%d io=%s", i, st.MasterHost, st.MasterPort, st.IORunning)
		}
	}
	// The application account reaches the master from inside its zone and
	// from the root namespace; after the cut, only from inside.
	inZone, err := sql.Open("mysql", sb.DSNVia(0, nw.Zones[0].MySQLNet(), sandbox.AppUser, sandbox.AppPassword))
	if err != nil {
		t.Fatal(err)
	}
	defer inZone.Close()
	root, err := sql.Open("mysql", sb.DSN(0, sandbox.AppUser, sandbox.AppPassword))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var host string
	for name, db := range map[string]*sql.DB{"zone": inZone, "root": root} {
		if err := db.QueryRowContext(ctx, "SELECT @@report_host").Scan(&host); err != nil || host != nw.Zones[0].IP {
			t.Fatalf("%s: report_host %q, %v", name, host, err)
		}
	}
	nw.Isolate(nw.Zones[0], nw.HostIP, nw.Zones[1].IP)
	root.SetMaxIdleConns(0)
	qctx, qcancel := context.WithTimeout(ctx, time.Second)
	err = root.QueryRowContext(qctx, "SELECT 1").Scan(new(int))
	qcancel()
	if err == nil {
		t.Fatal("root namespace still reaches the cut-off master")
	}
	inZone.SetMaxIdleConns(0)
	if err := inZone.QueryRowContext(ctx, "SELECT 1").Scan(new(int)); err != nil {
		t.Fatalf("inside the cut-off zone: %v", err)
	}
	nw.Heal(nw.Zones[0])
}
