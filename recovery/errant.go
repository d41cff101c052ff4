package recovery

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/quorumha/quorumha/topology"
)

// gtidHolding is what errant detection knows about one replica after its
// master died: every GTID it has, and who its master was.
type gtidHolding struct {
	Address string
	Flavor  topology.Flavor
	// Own is the replica's GTIDs: MySQL gtid_executed; MariaDB its
	// gtid_binlog_state joined with gtid_current_pos (one entry per domain
	// and server id).
	Own string
	// Origin identifies the dead master as the replica's replication status
	// last named it: MariaDB Master_Server_Id, MySQL Master_UUID ("" when
	// unknown). Transactions the dead master wrote itself are never errant,
	// even past the position the controllers last read on it: a replica may
	// have received them between that probe and the death.
	Origin string
}

// holdingOf reads a replica's gtidHolding; ok is false for file/position
// replicas and servers without GTIDs, which errant detection leaves alone.
func holdingOf(in *topology.Instance, oldMaster string) (gtidHolding, bool) {
	h := gtidHolding{Address: in.Key, Flavor: in.Version.Flavor}
	if in.Replica != nil && sameAddr(in.MasterKey(), oldMaster) {
		switch {
		case in.Version.Flavor == topology.MySQL && in.Replica.MasterUUID != "":
			h.Origin = strings.ToLower(in.Replica.MasterUUID)
		case in.Version.Flavor == topology.MariaDB && in.Replica.MasterServerID != 0:
			h.Origin = strconv.FormatUint(uint64(in.Replica.MasterServerID), 10)
		}
	}
	switch {
	case in.Version.Flavor == topology.MySQL && in.GTIDEnabled():
		h.Own = in.GTIDExecuted
	case in.Version.Flavor == topology.MariaDB:
		h.Own = joinLists(in.GTIDBinlogState, in.GTIDCurrentPos)
	default:
		return gtidHolding{}, false
	}
	return h, true
}

// joinLists merges MariaDB GTID lists, keeping per domain and server id the
// highest sequence number; unparsable lists are left out.
func joinLists(lists ...string) string {
	var out topology.MariaDBGTIDList
	for _, s := range lists {
		l, err := topology.ParseMariaDBGTIDList(s)
		if err != nil {
			continue
		}
		out = mergeList(out, l)
	}
	return out.String()
}

func mergeList(into, l topology.MariaDBGTIDList) topology.MariaDBGTIDList {
	for _, g := range l {
		found := false
		for i, o := range into {
			if o.Domain == g.Domain && o.Server == g.Server {
				found = true
				if g.Seq > o.Seq {
					into[i] = g
				}
			}
		}
		if !found {
			into = append(into, g)
		}
	}
	return into
}

// failoverErrant returns the GTIDs candidate c has that neither the dead
// master (as last seen by the controllers' probes, lastSeen: MariaDB
// gtid_binlog_pos, MySQL gtid_executed; "" when unknown) nor any of its
// peers has, and that the dead master did not write itself (Origin). Such
// transactions were written on c alone: promoting c, or catching another
// replica up from it, would hand them to every server. "" means none. With
// no last-seen position and no peer there is nothing to compare with, and
// nothing is called errant.
//
// MariaDB positions name only the last GTID of each domain, so a GTID of
// another server with a lower sequence number than one the reference has in
// that domain counts as known: under gtid_strict_mode (which quorumha's
// check-repl asks for) sequence numbers only grow within a domain, so the
// reference's history includes that number. The same number from another
// server is a divergence and is errant.
func failoverErrant(c gtidHolding, lastSeen string, peers []gtidHolding) (string, error) {
	if lastSeen == "" && len(peers) == 0 {
		return "", nil
	}
	origins := map[string]bool{}
	for _, h := range append([]gtidHolding{c}, peers...) {
		if h.Origin != "" {
			origins[h.Origin] = true
		}
	}
	if c.Flavor == topology.MariaDB {
		// The dead master's gtid_binlog_pos names, per domain, the server
		// that wrote last there: itself where it took writes. This covers
		// replicas restarted since the death, whose Master_Server_Id reads 0.
		if l, err := topology.ParseMariaDBGTIDList(lastSeen); err == nil {
			for _, g := range l {
				origins[strconv.FormatUint(uint64(g.Server), 10)] = true
			}
		}
	}
	switch c.Flavor {
	case topology.MySQL:
		return mysqlErrant(c, lastSeen, peers, origins)
	case topology.MariaDB:
		return mariaDBFailoverErrant(c, lastSeen, peers, origins)
	default:
		return "", fmt.Errorf("%s: %w: flavor %s", c.Address, topology.ErrIncomparable, c.Flavor)
	}
}

// mysqlMaxGNO is the largest MySQL transaction number, to express "every
// transaction of this server".
const mysqlMaxGNO = "9223372036854775807"

func mysqlErrant(c gtidHolding, lastSeen string, peers []gtidHolding, origins map[string]bool) (string, error) {
	own, err := topology.ParseGTIDSet(c.Own)
	if err != nil {
		return "", fmt.Errorf("%s gtid_executed: %w", c.Address, err)
	}
	known, err := topology.ParseGTIDSet(lastSeen)
	if err != nil {
		return "", fmt.Errorf("dead master's last seen position: %w", err)
	}
	for _, p := range peers {
		s, err := topology.ParseGTIDSet(p.Own)
		if err != nil {
			return "", fmt.Errorf("%s gtid_executed: %w", p.Address, err)
		}
		known = known.Union(s)
	}
	for o := range origins {
		all, err := topology.ParseGTIDSet(o + ":1-" + mysqlMaxGNO)
		if err != nil {
			continue // not a uuid: nothing to exempt
		}
		known = known.Union(all)
	}
	return own.Subtract(known).String(), nil
}

func mariaDBFailoverErrant(c gtidHolding, lastSeen string, peers []gtidHolding, origins map[string]bool) (string, error) {
	own, err := topology.ParseMariaDBGTIDList(c.Own)
	if err != nil {
		return "", fmt.Errorf("%s gtid state: %w", c.Address, err)
	}
	ref, err := topology.ParseMariaDBGTIDList(lastSeen)
	if err != nil {
		return "", fmt.Errorf("dead master's last seen position: %w", err)
	}
	for _, p := range peers {
		l, err := topology.ParseMariaDBGTIDList(p.Own)
		if err != nil {
			return "", fmt.Errorf("%s gtid state: %w", p.Address, err)
		}
		ref = mergeList(ref, l)
	}
	// The dead master's own transactions on c vouch for the history before
	// them in their domain, as a last-seen position would.
	for _, g := range own {
		if origins[strconv.FormatUint(uint64(g.Server), 10)] {
			ref = mergeList(ref, topology.MariaDBGTIDList{g})
		}
	}
	var out topology.MariaDBGTIDList
	for _, g := range own {
		if origins[strconv.FormatUint(uint64(g.Server), 10)] || knownGTID(g, ref) {
			continue
		}
		out = append(out, g)
	}
	return out.String(), nil
}

// knownGTID reports whether the reference list accounts for g: the same
// server logged it (or later), or a higher sequence number was logged in its
// domain.
func knownGTID(g topology.MariaDBGTID, ref topology.MariaDBGTIDList) bool {
	for _, r := range ref {
		if r.Domain != g.Domain {
			continue
		}
		if (r.Server == g.Server && r.Seq >= g.Seq) || r.Seq > g.Seq {
			return true
		}
	}
	return false
}
