package topology

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MariaDBGTID is one MariaDB GTID, domain-server-sequence.
type MariaDBGTID struct {
	Domain uint32
	Server uint32
	Seq    uint64
}

// String formats the GTID the way MariaDB does ("0-1-42").
func (g MariaDBGTID) String() string {
	return fmt.Sprintf("%d-%d-%d", g.Domain, g.Server, g.Seq)
}

func parseMariaDBGTID(s string) (MariaDBGTID, error) {
	parts := strings.Split(s, "-")
	if len(parts) != 3 {
		return MariaDBGTID{}, fmt.Errorf("%w: %q", ErrBadGTID, s)
	}
	d, err1 := strconv.ParseUint(parts[0], 10, 32)
	sv, err2 := strconv.ParseUint(parts[1], 10, 32)
	n, err3 := strconv.ParseUint(parts[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return MariaDBGTID{}, fmt.Errorf("%w: %q", ErrBadGTID, s)
	}
	return MariaDBGTID{Domain: uint32(d), Server: uint32(sv), Seq: n}, nil
}

// MariaDBGTIDList is a comma-separated list of MariaDB GTIDs as found in
// gtid_binlog_state: several entries per domain are allowed, one per
// (domain, server_id), each the last GTID that server logged in that domain.
type MariaDBGTIDList []MariaDBGTID

// ParseMariaDBGTIDList parses a gtid_binlog_state-like list. Entries are
// sorted by domain, then server. A (domain, server) pair may appear once.
func ParseMariaDBGTIDList(s string) (MariaDBGTIDList, error) {
	var out MariaDBGTIDList
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		g, err := parseMariaDBGTID(f)
		if err != nil {
			return nil, err
		}
		for _, o := range out {
			if o.Domain == g.Domain && o.Server == g.Server {
				return nil, fmt.Errorf("%w: %q: %d-%d repeated", ErrBadGTID, s, g.Domain, g.Server)
			}
		}
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b MariaDBGTID) int {
		if a.Domain != b.Domain {
			return cmpUint(uint64(a.Domain), uint64(b.Domain))
		}
		return cmpUint(uint64(a.Server), uint64(b.Server))
	})
	return out, nil
}

// String formats the list the way MariaDB does.
func (l MariaDBGTIDList) String() string {
	parts := make([]string, len(l))
	for i, g := range l {
		parts[i] = g.String()
	}
	return strings.Join(parts, ",")
}

// MariaDBPos is a MariaDB replication position (gtid_slave_pos,
// gtid_binlog_pos, gtid_current_pos): at most one GTID per domain, the last
// one applied or logged there. It is not a set: comparisons rely on sequence
// numbers growing within a domain, which gtid_strict_mode guarantees.
type MariaDBPos []MariaDBGTID

// ParseMariaDBPos parses a position; it rejects two GTIDs in one domain.
func ParseMariaDBPos(s string) (MariaDBPos, error) {
	l, err := ParseMariaDBGTIDList(s)
	if err != nil {
		return nil, err
	}
	for i := 1; i < len(l); i++ {
		if l[i].Domain == l[i-1].Domain {
			return nil, fmt.Errorf("%w: %q: domain %d twice in a position", ErrBadGTID, s, l[i].Domain)
		}
	}
	return MariaDBPos(l), nil
}

// MustParseMariaDBPos is ParseMariaDBPos for constants in tests; it panics on
// a malformed position.
func MustParseMariaDBPos(s string) MariaDBPos {
	p, err := ParseMariaDBPos(s)
	if err != nil {
		panic(err)
	}
	return p
}

// String formats the position the way MariaDB does ("0-1-42,1-2-7").
func (p MariaDBPos) String() string { return MariaDBGTIDList(p).String() }

// Domain returns the GTID for a domain, if the position has one.
func (p MariaDBPos) Domain(d uint32) (MariaDBGTID, bool) {
	for _, g := range p {
		if g.Domain == d {
			return g, true
		}
	}
	return MariaDBGTID{}, false
}

// DomainOrdering is how one domain of a position compares with another's.
type DomainOrdering struct {
	Domain   uint32
	Ordering Ordering
}

// Compare orders p against o domain by domain: a higher sequence is Ahead; the
// same sequence from a different server is Diverged (two servers wrote the same
// number: split brain or non-strict mode); a domain only p has is Ahead, one
// only o has is Behind. A different server at a different sequence is ordered
// by sequence, since every failover changes the writing server.
func (p MariaDBPos) Compare(o MariaDBPos) []DomainOrdering {
	domains := map[uint32]bool{}
	for _, g := range p {
		domains[g.Domain] = true
	}
	for _, g := range o {
		domains[g.Domain] = true
	}
	out := make([]DomainOrdering, 0, len(domains))
	for d := range domains {
		a, inA := p.Domain(d)
		b, inB := o.Domain(d)
		var ord Ordering
		switch {
		case !inB:
			ord = Ahead
		case !inA:
			ord = Behind
		case a.Seq < b.Seq:
			ord = Behind
		case a.Seq > b.Seq:
			ord = Ahead
		case a.Server != b.Server:
			ord = Diverged
		default:
			ord = Equal
		}
		out = append(out, DomainOrdering{Domain: d, Ordering: ord})
	}
	slices.SortFunc(out, func(x, y DomainOrdering) int { return cmpUint(uint64(x.Domain), uint64(y.Domain)) })
	return out
}

// Order folds Compare into one Ordering: Equal when every domain is equal,
// Ahead or Behind when all domains agree or are equal, Diverged otherwise.
func (p MariaDBPos) Order(o MariaDBPos) Ordering {
	return combineOrderings(p.Compare(o))
}

func combineOrderings(per []DomainOrdering) Ordering {
	result := Equal
	for _, d := range per {
		switch {
		case d.Ordering == Equal:
		case d.Ordering == Diverged:
			return Diverged
		case result == Equal:
			result = d.Ordering
		case result != d.Ordering:
			return Diverged
		}
	}
	return result
}

// Covers reports whether p has reached o in every domain o has (Equal or
// Ahead per domain); domains only p has do not matter. This is the test for
// "has this replica applied everything the master had".
func (p MariaDBPos) Covers(o MariaDBPos) bool {
	for _, d := range p.Compare(o) {
		if _, inO := o.Domain(d.Domain); !inO {
			continue
		}
		if d.Ordering != Equal && d.Ordering != Ahead {
			return false
		}
	}
	return true
}

// MariaDBErrant returns the replica's GTIDs its master does not have. replica
// is the replica's gtid_binlog_state (or a position); masterState must be the
// master's gtid_binlog_state, which keeps the last sequence of every server
// that ever wrote in each domain. A replica entry is errant when the master has
// nothing in its domain, or has never logged that server in that domain, or
// has fewer of that server's transactions. A master whose binlogs were reset
// (RESET MASTER) forgets its state, and then everything looks errant.
func MariaDBErrant(replica, masterState MariaDBGTIDList) MariaDBGTIDList {
	var out MariaDBGTIDList
	for _, g := range replica {
		found := false
		for _, m := range masterState {
			if m.Domain == g.Domain && m.Server == g.Server {
				found = true
				if g.Seq > m.Seq {
					out = append(out, g)
				}
				break
			}
		}
		if !found {
			out = append(out, g)
		}
	}
	return out
}

// AppliedMariaDBPos is what a MariaDB replica holds in each domain, however
// it got there. gtid_slave_pos counts only what its SQL thread applied;
// transactions another server wrote that reached it through a client
// session (a binlog salvage, an operator replaying mysqlbinlog output, both
// of which keep the original GTIDs) are only in its binary log,
// binlogState (gtid_binlog_state). Per domain it takes the highest
// sequence among the slave position and the binlog's GTIDs of other
// servers; the server's own GTIDs (ownServerID) are local writes, not the
// replicated history, and are left out. A replica that resumed replication
// by gtid_slave_pos alone would fetch the salvaged transactions again and
// stop on their duplicate keys.
func AppliedMariaDBPos(slavePos, binlogState string, ownServerID uint32) (MariaDBPos, error) {
	have, err := ParseMariaDBPos(slavePos)
	if err != nil {
		return nil, fmt.Errorf("gtid_slave_pos: %w", err)
	}
	logged, err := ParseMariaDBGTIDList(binlogState)
	if err != nil {
		return nil, fmt.Errorf("gtid_binlog_state: %w", err)
	}
	best := map[uint32]MariaDBGTID{}
	for _, g := range have {
		best[g.Domain] = g
	}
	for _, g := range logged {
		if g.Server == ownServerID {
			continue
		}
		if b, ok := best[g.Domain]; !ok || g.Seq > b.Seq {
			best[g.Domain] = g
		}
	}
	out := make(MariaDBPos, 0, len(best))
	for _, g := range best {
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b MariaDBGTID) int { return cmp.Compare(a.Domain, b.Domain) })
	return out, nil
}
