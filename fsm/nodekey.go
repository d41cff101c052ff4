package fsm

import "crypto/ed25519"

// NodeKeyType records a controller's verdict-signing public key. Peers
// count a gossiped verdict only when it is signed with the key recorded here
// for a current raft voter, so a program that merely speaks gossip cannot
// vote. It is not ignorable: an older controller that skipped it would
// count no verdict of that controller.
const NodeKeyType MessageType = 12

// NodeKey is the payload of NodeKeyType. The leader validates the ID (a
// current raft voter) before applying it; the FSM checks the shape only.
type NodeKey struct {
	ID string `json:"id"`
	// PublicKey is the ed25519 public key (32 bytes).
	PublicKey []byte `json:"public_key"`
}

// applyNodeKey records or replaces a controller's public key.
func (f *FSM) applyNodeKey(payload []byte, index uint64) any {
	p := decodePayload[NodeKey](NodeKeyType, payload, index)
	switch {
	case p.ID == "":
		return invalid("node key: empty node id")
	case len(p.PublicKey) != ed25519.PublicKeySize:
		return invalid("node key of %q: %d bytes, want an ed25519 public key of %d", p.ID, len(p.PublicKey), ed25519.PublicKeySize)
	}
	f.s.keys[p.ID] = NodeKey{ID: p.ID, PublicKey: append([]byte(nil), p.PublicKey...)}
	return nil
}

// NodeKey returns the verdict-signing key recorded for a controller.
func (f *FSM) NodeKey(id string) (ed25519.PublicKey, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	k, ok := f.s.keys[id]
	if !ok {
		return nil, false
	}
	return append(ed25519.PublicKey(nil), k.PublicKey...), true
}
