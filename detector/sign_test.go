package detector

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// keyring is a set of controllers with keys; voters are the ones Trust
// admits.
type keyring struct {
	priv   map[string]ed25519.PrivateKey
	voters map[string]bool
}

func newKeyring(t *testing.T, names ...string) *keyring {
	t.Helper()
	k := &keyring{priv: map[string]ed25519.PrivateKey{}, voters: map[string]bool{}}
	for _, n := range names {
		_, p, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k.priv[n] = p
	}
	return k
}

func (k *keyring) trust(id string) (ed25519.PublicKey, bool) {
	if !k.voters[id] {
		return nil, false
	}
	return k.priv[id].Public().(ed25519.PublicKey), true
}

// signedBatch encodes v as sent by from, signed with signer's key.
func (k *keyring) signedBatch(t *testing.T, from, signer string, v Verdict) []byte {
	t.Helper()
	sv, err := signVerdict(k.priv[signer], v)
	if err != nil {
		t.Fatal(err)
	}
	b, err := encodeBatch(wireBatch{From: from, Signed: []signedVerdict{sv}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type fixedClock struct{ now time.Time }

func (c fixedClock) Now() time.Time                         { return c.now }
func (c fixedClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Item 1 of the security review: a program that never joined the group sent
// verdicts "from" ghost1 and ghost2, and they counted as votes. Only a
// verdict signed by the current raft voter it names is kept.
func TestVerdictStore_OnlyVotersSignedVerdictsCount(t *testing.T) {
	k := newKeyring(t, "c1", "c2", "c3", "ghost1", "evil")
	k.voters["c1"], k.voters["c2"], k.voters["c3"] = true, true, true
	s := &verdictStore{self: "c1", verdicts: map[string]map[string]Verdict{}, changed: make(chan struct{}, 1),
		clock: fixedClock{t0}, log: slog.New(slog.DiscardHandler), key: k.priv["c1"], trust: k.trust,
		known: func(i string) bool { return i == master }}
	down := func(ctl string, at time.Time) Verdict {
		return Verdict{Controller: ctl, Instance: master, State: StateDown, ObservedAt: at, Seq: 1}
	}
	unsigned, _ := encodeBatch(wireBatch{From: "c2", Verdicts: []Verdict{down("c2", t0)}})
	ghostBody, _ := json.Marshal(down("ghost2", t0))
	tampered := k.signedBatch(t, "c3", "c3", down("c3", t0))
	tampered[len(tampered)-10] ^= 1 // inside the signature's base64

	for _, tt := range []struct {
		name string
		msg  []byte
	}{
		{"unsigned from a voter", unsigned},
		{"ghost signs its own verdict", k.signedBatch(t, "ghost1", "ghost1", down("ghost1", t0))},
		{"ghost with no key at all", mustEncode(t, wireBatch{From: "ghost2", Signed: []signedVerdict{{Body: ghostBody, Sig: make([]byte, 64)}}})},
		{"non-voter signs as a voter", k.signedBatch(t, "c2", "evil", down("c2", t0))},
		{"tampered signature", tampered},
		{"dated in year 9999", k.signedBatch(t, "c2", "c2", down("c2", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)))},
		{"11s ahead", k.signedBatch(t, "c2", "c2", down("c2", t0.Add(11*time.Second)))},
		{"unconfigured instance", k.signedBatch(t, "c2", "c2", Verdict{Controller: "c2", Instance: "10.9.9.9:3306", State: StateDown, ObservedAt: t0, Seq: 1})},
	} {
		before := s.dropped.Load()
		s.NotifyMsg(tt.msg)
		if got := s.all(); len(got[master]) != 0 || len(got) != 0 {
			t.Fatalf("%s: stored %+v", tt.name, got)
		}
		if s.dropped.Load() == before {
			t.Errorf("%s: not counted as dropped", tt.name)
		}
	}
	// A voter's signed verdict counts, whatever the sender wrote in From.
	s.NotifyMsg(k.signedBatch(t, "ghost1", "c2", down("c2", t0.Add(5*time.Second))))
	got := s.all()[master]
	if len(got) != 1 || got[0].Controller != "c2" {
		t.Fatalf("voter verdict: %+v", got)
	}
	if one := s.of(master); len(one) != 1 || one[0] != got[0] {
		t.Fatalf("of(master) %+v, all()[master] %+v", one, got)
	}
	if other := s.of("elsewhere:3306"); len(other) != 0 {
		t.Fatalf("verdicts on an instance nobody judged: %+v", other)
	}
	// Removed from the group: its stored verdict stops counting.
	k.voters["c2"] = false
	if got := s.all()[master]; len(got) != 0 {
		t.Fatalf("verdict of a removed voter still listed: %+v", got)
	}
	if got := s.of(master); len(got) != 0 {
		t.Fatalf("of(master) lists a removed voter's verdict: %+v", got)
	}
}

func mustEncode(t *testing.T, b wireBatch) []byte {
	t.Helper()
	out, err := encodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Our own verdicts leave signed, and a peer with our key admits them.
func TestVerdictStore_SignsOwnVerdicts(t *testing.T) {
	k := newKeyring(t, "c1", "c2")
	k.voters["c1"], k.voters["c2"] = true, true
	c1 := &verdictStore{self: "c1", verdicts: map[string]map[string]Verdict{}, changed: make(chan struct{}, 1),
		clock: fixedClock{t0}, log: slog.New(slog.DiscardHandler), key: k.priv["c1"], trust: k.trust}
	c2 := &verdictStore{self: "c2", verdicts: map[string]map[string]Verdict{}, changed: make(chan struct{}, 1),
		clock: fixedClock{t0}, log: slog.New(slog.DiscardHandler), key: k.priv["c2"], trust: k.trust}
	c1.setOwn([]Verdict{{Instance: master, State: StateDown, ObservedAt: t0, Seq: 7}})
	state := c1.LocalState(false)
	b, err := decodeBatch(state)
	if err != nil || len(b.Verdicts) != 0 || len(b.Signed) != 1 {
		t.Fatalf("local state not signed: %+v %v", b, err)
	}
	c2.MergeRemoteState(state, false)
	if got := c2.all()[master]; len(got) != 1 || got[0].Seq != 7 || got[0].Controller != "c1" {
		t.Fatalf("c2 has %+v", got)
	}
}

func TestVerdictStore_Bounded(t *testing.T) {
	s := &verdictStore{self: "c1", verdicts: map[string]map[string]Verdict{}, changed: make(chan struct{}, 1),
		clock: fixedClock{t0}, log: slog.New(slog.DiscardHandler)}
	var vs []Verdict
	for i := range maxStoredVerdicts + 100 {
		vs = append(vs, Verdict{Controller: "c2", Instance: "10.0.0.1:" + strconv.Itoa(i), ObservedAt: t0, Seq: 1})
	}
	s.merge(wireBatch{From: "c2", Verdicts: vs})
	if n := len(s.all()); n > maxStoredVerdicts {
		t.Fatalf("store grew to %d instances", n)
	}
}

// Quorum arithmetic uses the raft voters, never the gossip members: fake
// members must not lower the share one controller's vote is of, nor raise
// the group so a numeric quorum looks met.
func TestDetector_FakeMembersDoNotChangeGroupSize(t *testing.T) {
	ex := &fakeExchange{own: map[string]Verdict{}, members: []Member{{Name: "c1", Zone: "a"}, {Name: "ghost1", Zone: "x"},
		{Name: "ghost2", Zone: "y"}, {Name: "ghost3", Zone: "z"}, {Name: "ghost4", Zone: "w"}}}
	h := startDetector(t, ex, nil, func(c *Config) { c.GroupSize = func() int { return 3 } })
	if a, _ := h.det.Assessment("app1"); a.Needed != 2 {
		t.Fatalf("needed %d with 3 voters and 5 gossip members, want 2", a.Needed)
	}
}

func TestDetector_UnknownGroupNeverConfirms(t *testing.T) {
	h := startDetector(t, nil, nil, func(c *Config) { c.GroupSize = func() int { return 0 } })
	h.prober.setMaster(testMaster, ReasonRefused)
	h.prober.setReplica(ReplicaObservation{Replica: testReplica, Reachable: true, MasterHost: "10.0.0.1", MasterPort: 3306, IORunning: "Connecting"})
	var a Assessment
	for range 4 {
		a = h.step()
	}
	if a.State == AssessDeadConfirmed {
		t.Fatalf("unknown group size confirmed a death: %s", a.Reason)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, KeyFileName))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st.Mode(), err)
	}
	k2, err := LoadOrCreateKey(dir)
	if err != nil || !k1.Equal(k2) {
		t.Fatalf("reload: %v equal=%t", err, k1.Equal(k2))
	}
	if err := os.Chmod(filepath.Join(dir, KeyFileName), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(dir); err == nil {
		t.Fatal("world-readable key accepted")
	}
}
