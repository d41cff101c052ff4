package recovery

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/quorumha/quorumha/topology"
)

// lastSeen is the furthest GTID position the controllers' probes read on
// the old master, from a decision's evidence (every vote keeps the last
// position its controller read before the failures began). A manual
// failover's evidence has no votes: the result is then empty.
type lastSeen struct {
	Position string
	By       string
	At       time.Time
}

func (l lastSeen) String() string {
	if l.Position == "" {
		return ""
	}
	return fmt.Sprintf("%s (read by %s at %s)", l.Position, l.By, l.At.UTC().Format("15:04:05.000"))
}

// lastSeenOf picks, among the evidence's votes on old, the position that
// contains the others (MariaDB per domain, MySQL as GTID sets), or the most
// recently read when they cannot be ordered.
func lastSeenOf(evidence []byte, old string) lastSeen {
	var ev Evidence
	if len(evidence) == 0 || json.Unmarshal(evidence, &ev) != nil {
		return lastSeen{}
	}
	var best lastSeen
	for _, v := range append(ev.Assessment.Votes, ev.Assessment.Stale...) {
		if v.LastPosition == "" || !strings.EqualFold(v.Instance, old) {
			continue
		}
		c := lastSeen{Position: v.LastPosition, By: v.Controller, At: v.LastPositionAt}
		if best.Position == "" || further(c, best) {
			best = c
		}
	}
	return best
}

// further reports whether a's position is ahead of b's (or, when they
// cannot be compared, read later).
func further(a, b lastSeen) bool {
	if pa, err := topology.ParseMariaDBPos(a.Position); err == nil {
		if pb, err := topology.ParseMariaDBPos(b.Position); err == nil {
			switch pa.Order(pb) {
			case topology.Ahead:
				return true
			case topology.Behind, topology.Equal:
				return false
			}
		}
	}
	if sa, err := topology.ParseGTIDSet(a.Position); err == nil {
		if sb, err := topology.ParseGTIDSet(b.Position); err == nil && !sa.Equal(sb) {
			if sa.Contains(sb) {
				return true
			}
			if sb.Contains(sa) {
				return false
			}
		}
	}
	return a.At.After(b.At)
}

// lostBetween counts the MariaDB transactions in seen that have (the
// survivors' newest position) lacks, per domain by sequence number; ok is
// false when the positions are not MariaDB ones.
func lostBetween(seen, have string) (n uint64, ok bool) {
	s, err := topology.ParseMariaDBPos(seen)
	if err != nil || len(s) == 0 {
		return 0, false
	}
	h, err := topology.ParseMariaDBPos(have)
	if err != nil {
		return 0, false
	}
	for _, g := range s {
		if hg, found := h.Domain(g.Domain); !found {
			n += g.Seq
		} else if g.Seq > hg.Seq {
			n += g.Seq - hg.Seq
		}
	}
	return n, true
}
