package detector

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Verdict authentication. A verdict counts towards a quorum only when it is
// signed by the controller it names, with the ed25519 key that controller
// published in the replicated state, and that controller is a current raft
// voter. The signature covers the verdict's whole JSON encoding, so fields
// added later (a lease, say) are covered without touching this file.

// KeyFileName is the file in node.data_dir holding this controller's
// verdict signing key (PEM, mode 0600), created on first start.
const KeyFileName = "verdict-ed25519.key"

// DefaultMaxSkew is how far in the future (by the receiver's clock) a
// verdict's ObservedAt may be. A verdict dated further ahead is dropped: it
// would otherwise outrank ("NewerThan") every real verdict of its controller
// until that date.
const DefaultMaxSkew = 10 * time.Second

// maxStoredVerdicts bounds the verdict store whatever peers send: a
// configured instance per voter is far below it.
const maxStoredVerdicts = 4096

// signContext separates verdict signatures from any other use of the key.
const signContext = "quorumha verdict v1\x00"

// pemType is the PEM block type of the key file (the 32-byte seed).
const pemType = "QUORUMHA ED25519 SEED"

// Trust returns the verdict key of a controller that is a current raft
// voter, and false for anyone else: its verdicts are dropped.
type Trust func(controller string) (ed25519.PublicKey, bool)

// signedVerdict is one verdict on the wire: its JSON and the signature of
// signContext||Body by its controller.
type signedVerdict struct {
	Body json.RawMessage `json:"body"`
	Sig  []byte          `json:"sig"`
}

func signVerdict(key ed25519.PrivateKey, v Verdict) (signedVerdict, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return signedVerdict{}, fmt.Errorf("encode verdict: %w", err)
	}
	return signedVerdict{Body: body, Sig: ed25519.Sign(key, append([]byte(signContext), body...))}, nil
}

// openVerdict checks sv's signature against its controller's trusted key
// and returns the verdict.
func openVerdict(sv signedVerdict, trust Trust) (Verdict, error) {
	var v Verdict
	if err := json.Unmarshal(sv.Body, &v); err != nil {
		return v, fmt.Errorf("%w: verdict: %w", ErrBadMessage, err)
	}
	pub, ok := trust(v.Controller)
	if !ok {
		return v, fmt.Errorf("%w: %q is not a raft voter with a published key", ErrForged, v.Controller)
	}
	if len(pub) != ed25519.PublicKeySize || len(sv.Sig) != ed25519.SignatureSize ||
		!ed25519.Verify(pub, append([]byte(signContext), sv.Body...), sv.Sig) {
		return v, fmt.Errorf("%w: bad signature for %q", ErrForged, v.Controller)
	}
	return v, nil
}

// ErrForged means a verdict's signature does not check out against the key
// of the controller it names, or that controller is not a voter.
var ErrForged = errors.New("detector: unauthenticated verdict")

// LoadOrCreateKey reads this controller's signing key from dir/KeyFileName,
// creating it (mode 0600) on first start. A key file readable by group or
// others is refused: whoever reads it can vote as this controller.
func LoadOrCreateKey(dir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, KeyFileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("verdict key %s: %w", path, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("verdict key %s: %w", path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("verdict key %s: mode %04o, want 0600: anyone who reads it can vote as this controller", path, st.Mode().Perm())
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != pemType || len(blk.Bytes) != ed25519.SeedSize {
		return nil, fmt.Errorf("verdict key %s: not a %s PEM block of %d bytes", path, pemType, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(blk.Bytes), nil
}

func createKey(path string) (ed25519.PrivateKey, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("verdict key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("verdict key %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("verdict key %s: %w", path, err)
	}
	werr := pem.Encode(f, &pem.Block{Type: pemType, Bytes: seed})
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("verdict key %s: %w", path, werr)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}
