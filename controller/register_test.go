package controller

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/quorumha/quorumha/api"
	"github.com/quorumha/quorumha/fsm"
)

// TestRegistered_MatchesWhatWasApplied: once the replicated state holds the
// key, address and zone a controller registered, registered says so. (It
// once compared with ed25519.PublicKey.Equal, which never matches a plain
// []byte: every controller re-registered every 2 s for ever.)
func TestRegistered_MatchesWhatWasApplied(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	want := api.NodeKeyRequest{ID: "c1", PublicKey: []byte(pub), HTTPAddr: "127.0.0.1:8080", Zone: "zone-a"}
	state := fsm.New(nil)
	if registered(state, want) {
		t.Fatal("registered before anything was applied")
	}
	apply := func(i uint64, typ fsm.MessageType, payload any) {
		t.Helper()
		data, err := fsm.Encode(typ, payload)
		if err != nil {
			t.Fatal(err)
		}
		if resp := state.Apply(&raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: data}); resp != nil {
			t.Fatalf("apply %v: %v", typ, resp)
		}
	}
	apply(1, fsm.NodeKeyType, fsm.NodeKey{ID: "c1", PublicKey: pub})
	if registered(state, want) {
		t.Fatal("registered without its HTTP address")
	}
	apply(2, fsm.NodeMetaType, fsm.NodeMeta{ID: "c1", HTTPAddr: "127.0.0.1:8080", Zone: "zone-a"})
	if !registered(state, want) {
		t.Fatal("not registered although the state holds the same key, address and zone")
	}
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	want.PublicKey = []byte(other)
	if registered(state, want) {
		t.Fatal("registered with another key")
	}
}
