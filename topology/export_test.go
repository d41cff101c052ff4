package topology

import (
	"context"
	"database/sql"
	"testing"
)

// The live tests run in package topology_test: they start servers with
// sandbox, which uses this package, so they cannot be inside it. These
// give them the internals they check against a real server.

// QueryTable is queryTable.
func QueryTable(ctx context.Context, db *sql.DB, query string) ([]string, [][]sql.NullString, error) {
	return queryTable(ctx, db, query)
}

// QueryProcessList is queryProcessList over any QueryContext.
func QueryProcessList(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, withTrx bool) ([]string, [][]sql.NullString, error) {
	return queryProcessList(ctx, q, withTrx)
}

// ParseProcessList is parseProcessList.
var ParseProcessList = parseProcessList

// ReadVertical is readVertical: a recorded \G output from testdata.
func ReadVertical(t *testing.T, name string) ([]string, []sql.NullString) {
	return readVertical(t, name)
}
