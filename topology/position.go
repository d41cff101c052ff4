package topology

import (
	"fmt"
	"strconv"
	"strings"
)

// Ordering is how one replication position relates to another.
type Ordering int

// Orderings of a relative to b. Diverged means neither contains the other:
// each has transactions the other lacks, so neither can simply catch up.
const (
	Equal Ordering = iota
	Behind
	Ahead
	Diverged
)

// String names the ordering for logs and failover records.
func (o Ordering) String() string {
	switch o {
	case Equal:
		return "equal"
	case Behind:
		return "behind"
	case Ahead:
		return "ahead"
	case Diverged:
		return "diverged"
	default:
		return "ordering(" + strconv.Itoa(int(o)) + ")"
	}
}

// BinlogCoord is a binlog file and offset, the position of file/pos
// replication and of SHOW MASTER STATUS.
type BinlogCoord struct {
	File string
	Pos  uint64
}

// String formats the coordinate as "file:pos".
func (c BinlogCoord) String() string { return c.File + ":" + strconv.FormatUint(c.Pos, 10) }

// IsZero reports whether the coordinate is unset.
func (c BinlogCoord) IsZero() bool { return c.File == "" && c.Pos == 0 }

// ParseBinlogCoord parses "file:pos" as String prints it.
func ParseBinlogCoord(s string) (BinlogCoord, error) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return BinlogCoord{}, fmt.Errorf("%w: %q", ErrBadCoord, s)
	}
	pos, err := strconv.ParseUint(s[i+1:], 10, 64)
	if err != nil {
		return BinlogCoord{}, fmt.Errorf("%w: %q", ErrBadCoord, s)
	}
	if _, _, err := splitBinlogName(s[:i]); err != nil {
		return BinlogCoord{}, err
	}
	return BinlogCoord{File: s[:i], Pos: pos}, nil
}

// splitBinlogName splits "mysql-bin.000010" into "mysql-bin" and 10.
func splitBinlogName(name string) (string, uint64, error) {
	i := strings.LastIndexByte(name, '.')
	if i <= 0 || i == len(name)-1 {
		return "", 0, fmt.Errorf("%w: binlog file %q", ErrBadCoord, name)
	}
	n, err := strconv.ParseUint(name[i+1:], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("%w: binlog file %q", ErrBadCoord, name)
	}
	return name[:i], n, nil
}

// Compare returns -1, 0 or 1 as c is before, at or after o. File suffixes are
// compared as numbers, so mysql-bin.000009 < mysql-bin.000010 and rotation
// past 999999 (one more digit) still orders. Files with different base names
// come from different servers or configurations and are ErrIncomparable.
// Coordinates are only meaningful against the same master's binlogs.
func (c BinlogCoord) Compare(o BinlogCoord) (int, error) {
	baseA, nA, err := splitBinlogName(c.File)
	if err != nil {
		return 0, err
	}
	baseB, nB, err := splitBinlogName(o.File)
	if err != nil {
		return 0, err
	}
	if baseA != baseB {
		return 0, fmt.Errorf("%w: %s vs %s", ErrIncomparable, c.File, o.File)
	}
	if c := cmpUint(nA, nB); c != 0 {
		return c, nil
	}
	return cmpUint(c.Pos, o.Pos), nil
}

// PositionKind says which of Position's fields holds the position.
type PositionKind int

// Position kinds.
const (
	PosFile PositionKind = iota
	PosMySQLGTID
	PosMariaDBGTID
)

// String names the kind.
func (k PositionKind) String() string {
	switch k {
	case PosFile:
		return "file"
	case PosMySQLGTID:
		return "mysql-gtid"
	case PosMariaDBGTID:
		return "mariadb-gtid"
	default:
		return "kind(" + strconv.Itoa(int(k)) + ")"
	}
}

// Position is a flavor-neutral replication position: what callers (recovery
// choosing the newest replica, waits) pass around without caring about the
// flavor. Exactly the field named by Kind is meaningful.
type Position struct {
	Kind    PositionKind
	Coord   BinlogCoord
	GTIDSet GTIDSet
	MariaDB MariaDBPos
}

// FilePosition wraps a binlog coordinate.
func FilePosition(c BinlogCoord) Position { return Position{Kind: PosFile, Coord: c} }

// MySQLGTIDPosition wraps a MySQL GTID set.
func MySQLGTIDPosition(s GTIDSet) Position { return Position{Kind: PosMySQLGTID, GTIDSet: s} }

// MariaDBGTIDPosition wraps a MariaDB GTID position.
func MariaDBGTIDPosition(p MariaDBPos) Position { return Position{Kind: PosMariaDBGTID, MariaDB: p} }

// String formats the position for logs.
func (p Position) String() string {
	switch p.Kind {
	case PosMySQLGTID:
		return p.GTIDSet.String()
	case PosMariaDBGTID:
		return p.MariaDB.String()
	default:
		return p.Coord.String()
	}
}

// ComparePositions orders a relative to b. MySQL GTID sets compare by
// inclusion, MariaDB positions per domain (see MariaDBPos.Compare), binlog
// coordinates numerically. Positions of different kinds are ErrIncomparable.
func ComparePositions(a, b Position) (Ordering, error) {
	if a.Kind != b.Kind {
		return 0, fmt.Errorf("%w: %s vs %s", ErrIncomparable, a.Kind, b.Kind)
	}
	switch a.Kind {
	case PosMySQLGTID:
		aInB, bInA := b.GTIDSet.Contains(a.GTIDSet), a.GTIDSet.Contains(b.GTIDSet)
		switch {
		case aInB && bInA:
			return Equal, nil
		case aInB:
			return Behind, nil
		case bInA:
			return Ahead, nil
		default:
			return Diverged, nil
		}
	case PosMariaDBGTID:
		return a.MariaDB.Order(b.MariaDB), nil
	case PosFile:
		c, err := a.Coord.Compare(b.Coord)
		if err != nil {
			return 0, err
		}
		switch c {
		case -1:
			return Behind, nil
		case 1:
			return Ahead, nil
		}
		return Equal, nil
	default:
		return 0, fmt.Errorf("%w: unknown kind %s", ErrIncomparable, a.Kind)
	}
}

// ErrantGTIDs returns, in the flavor's canonical text form, the transactions a
// replica has that its master does not ("" when none). On MySQL both
// arguments are gtid_executed and the answer is the set difference; on
// MariaDB replicaExecuted is the replica's gtid_binlog_state (or
// gtid_current_pos) and masterExecuted must be the master's gtid_binlog_state
// (see MariaDBErrant).
func ErrantGTIDs(flavor Flavor, replicaExecuted, masterExecuted string) (string, error) {
	switch flavor {
	case MySQL:
		r, err := ParseGTIDSet(replicaExecuted)
		if err != nil {
			return "", fmt.Errorf("replica gtid_executed: %w", err)
		}
		m, err := ParseGTIDSet(masterExecuted)
		if err != nil {
			return "", fmt.Errorf("master gtid_executed: %w", err)
		}
		return r.Subtract(m).String(), nil
	case MariaDB:
		r, err := ParseMariaDBGTIDList(replicaExecuted)
		if err != nil {
			return "", fmt.Errorf("replica gtid state: %w", err)
		}
		m, err := ParseMariaDBGTIDList(masterExecuted)
		if err != nil {
			return "", fmt.Errorf("master gtid_binlog_state: %w", err)
		}
		return MariaDBErrant(r, m).String(), nil
	default:
		return "", fmt.Errorf("%w: flavor %s", ErrIncomparable, flavor)
	}
}
