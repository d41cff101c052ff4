package recovery

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// endlessAgent answers every Raw with more bytes than anyone asked for.
type endlessAgent struct{ BinlogAgent }

func (endlessAgent) Raw(_ context.Context, _ string, _, _ int64, w io.Writer) (int64, error) {
	return io.Copy(w, io.LimitReader(zeroReader{}, 1<<20))
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// Security review item 5: salvaged bytes go into `mariadb-binlog | mariadb`
// as admin; an agent (or whoever answers in its place) must not be able to
// send without bound.
func TestWritePlan_Capped(t *testing.T) {
	plan := salvagePlan{Files: []salvageFile{{Name: "bin.000001", HeaderEnd: 256}}}
	_, n, err := writePlanCapped(context.Background(), endlessAgent{}, plan, t.TempDir(), 64<<10)
	if !errors.Is(err, ErrSalvageTooLarge) || n > 64<<10 {
		t.Fatalf("wrote %d bytes, err %v", n, err)
	}
	if !strings.Contains(err.Error(), "bin.000001") {
		t.Errorf("error does not name the file: %v", err)
	}
}
