package topology_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/quorumha/quorumha/sandbox"
	"github.com/quorumha/quorumha/topology"
)

// failingFirst fails the first query of each kind it is told to with the
// error CI saw from information_schema.PROCESSLIST, then asks db.
type failingFirst struct {
	db    *sql.DB
	fail  map[string]bool // query prefix -> still to fail once
	tried map[string]int
}

func (f *failingFirst) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	for prefix, pending := range f.fail {
		if strings.HasPrefix(query, prefix) {
			f.tried[prefix]++
			if pending {
				f.fail[prefix] = false
				return nil, &mysql.MySQLError{Number: 6, Message: "Error on delete of '/tmp/#sql-temptable-668a-39-1c.MAD' (Errcode: 2 \"No such file or directory\")"}
			}
		}
	}
	return f.db.QueryContext(ctx, query, args...)
}

// TestQueryProcessList_ServerErrorReadAgain: one failed read of the process
// list and one of InnoDB's transactions (CI's "Error on delete of
// #sql-temptable") are read again, and the list comes back whole.
func TestQueryProcessList_ServerErrorReadAgain(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a MariaDB server")
	}
	sb := sandbox.New(t, sandbox.Options{Replicas: -1})
	db, err := sb.AdminDB(0)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := &failingFirst{db: db, tried: map[string]int{},
		fail: map[string]bool{"SELECT ID, USER": true, "SELECT trx_mysql_thread_id": true}}
	cols, rows, err := topology.QueryProcessList(context.Background(), q, true)
	if err != nil {
		t.Fatalf("queryProcessList with one failed read of each: %v", err)
	}
	if q.tried["SELECT ID, USER"] != 2 || q.tried["SELECT trx_mysql_thread_id"] != 2 {
		t.Fatalf("tries %v, want each query twice", q.tried)
	}
	ps, err := topology.ParseProcessList(cols, rows)
	if err != nil || len(ps) == 0 {
		t.Fatalf("process list %v, %v: want this session at least", ps, err)
	}
}
