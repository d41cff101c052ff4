package fsm

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestNodeKey_ApplyAndSnapshot(t *testing.T) {
	f := testFSM(t)
	key := bytes.Repeat([]byte{7}, 32)
	applyAll(t, f, []cmd{{NodeKeyType, NodeKey{ID: "c1", PublicKey: key}}})
	if got, ok := f.NodeKey("c1"); !ok || !bytes.Equal(got, key) {
		t.Fatalf("NodeKey(c1) = %x %t", got, ok)
	}
	for _, bad := range []NodeKey{{ID: "", PublicKey: key}, {ID: "c2", PublicKey: key[:31]}, {ID: "c2"}} {
		if err, _ := applyNext(t, f, cmd{NodeKeyType, bad}).(error); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", bad, err)
		}
	}
	if _, ok := f.NodeKey("c2"); ok {
		t.Fatal("rejected key recorded")
	}
	g := testFSM(t)
	if err := g.Restore(io.NopCloser(&persist(t, f).buf)); err != nil {
		t.Fatal(err)
	}
	if got, ok := g.NodeKey("c1"); !ok || !bytes.Equal(got, key) {
		t.Fatalf("after restore: %x %t", got, ok)
	}
}
