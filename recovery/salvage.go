package recovery

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/topology"
)

// Binlog salvage: MHA's save_binary_logs without SSH. A small agent beside
// the dead master's datadir serves its binlog files read-only; the salvage
// step finds the transactions that no surviving server has and applies them
// to the new master before it is promoted and before the others are
// repointed, so they receive the same events.
//
// These types mirror the agent's wire types; cmd/quorumha adapts
// *agent.Client to BinlogAgent. (The fence step's FenceAgent, in fence.go,
// uses the agent's fence wire types directly, which *agent.Client serves
// as is.)

// BinlogFile is one file of the dead master's binlog, in index order.
type BinlogFile struct {
	Name string
	Size int64
}

// BinlogTrx is one complete transaction in a binlog file: bytes [Start,End).
type BinlogTrx struct {
	GTID       string // MariaDB "domain-server-seq" or MySQL "uuid:gno"; "" without GTIDs
	File       string
	Start, End int64
}

// BinlogScan is what one binlog file holds from an offset on.
type BinlogScan struct {
	Name string
	Size int64
	// HeaderEnd ends the format description event: bytes [0,HeaderEnd)
	// make a valid file header for mariadb-binlog.
	HeaderEnd int64
	// GTIDList is MariaDB's binlog state at the start of the file.
	GTIDList        string
	Transactions    []BinlogTrx
	CompleteEnd     int64
	IncompleteBytes int64
}

// BinlogTail is the last complete transaction of the newest binlog file.
type BinlogTail struct {
	File string
	Pos  int64
	GTID string
	// ServerRunning is the agent's view of the server process (nil when the
	// agent has no pid file to tell).
	ServerRunning *bool
}

// BinlogAgent is the dead master's binlog agent, as salvage uses it.
type BinlogAgent interface {
	Files(ctx context.Context) ([]BinlogFile, error)
	// Scan lists a file's complete transactions from offset from on; with
	// have (a MariaDB GTID position) set, only those have lacks.
	Scan(ctx context.Context, name string, from int64, have string) (BinlogScan, error)
	Raw(ctx context.Context, name string, from, to int64, w io.Writer) (int64, error)
	Tail(ctx context.Context) (BinlogTail, error)
}

// AgentDialer returns a client for the agent at url, with the cluster's
// agent credentials.
type AgentDialer func(cluster, url string) (BinlogAgent, error)

// BinlogApplier applies binlog files, in order, to the instance at addr:
// `mariadb-binlog FILES | mariadb` as MHA does. execBinlogApplier is the
// real one.
type BinlogApplier func(ctx context.Context, addr string, cred topology.Credentials, flavor topology.Flavor, files []string) error

// salvageFrom says where a salvage starts in the dead master's binlog:
// after the GTID position Have, or (file/position replication) at Coord.
type salvageFrom struct {
	Have  topology.MariaDBPos // MariaDB GTID mode
	Coord topology.BinlogCoord
	GTID  bool
}

// salvagePlan is what to fetch and apply: per file, the header and the
// transactions, in binlog order.
type salvagePlan struct {
	Files   []salvageFile
	Skipped []fsm.SkippedTrx
	// Last is the last complete transaction seen in the binlog.
	Last BinlogTrx
}

type salvageFile struct {
	Name      string
	HeaderEnd int64
	Trxs      []BinlogTrx
}

func (p salvagePlan) trxs() []BinlogTrx {
	var out []BinlogTrx
	for _, f := range p.Files {
		out = append(out, f.Trxs...)
	}
	return out
}

// trxID names a transaction in the record: its GTID, or file:start.
func trxID(t BinlogTrx) string {
	if t.GTID != "" {
		return t.GTID
	}
	return t.File + ":" + strconv.FormatInt(t.Start, 10)
}

// coveredStart reports whether no file older than scan can hold a missing
// transaction: in GTID mode the target already has every GTID of the file's
// starting GTID list; in file mode scan is the file the coordinate names.
func coveredStart(from salvageFrom, scan BinlogScan) (bool, error) {
	if !from.GTID {
		return scan.Name == from.Coord.File, nil
	}
	list, err := topology.ParseMariaDBGTIDList(scan.GTIDList)
	if err != nil {
		return false, fmt.Errorf("gtid list of %s: %w", scan.Name, err)
	}
	for _, g := range list {
		if !hasGTID(from.Have, g) {
			return false, nil
		}
	}
	return true, nil
}

// hasGTID reports whether a MariaDB position includes g: in a domain the
// position is the last applied sequence number, and gtid_strict_mode keeps
// sequence numbers increasing.
func hasGTID(have topology.MariaDBPos, g topology.MariaDBGTID) bool {
	h, ok := have.Domain(g.Domain)
	return ok && h.Seq >= g.Seq
}

// selectMissing is the pure part of a salvage: given the scans of the files
// to consider (oldest first, the first one starting where the target's
// knowledge ends), it returns the transactions the target lacks, in order,
// and what was found but not applied (incomplete trailing bytes).
func selectMissing(from salvageFrom, scans []BinlogScan) (salvagePlan, error) {
	var plan salvagePlan
	for i, sc := range scans {
		f := salvageFile{Name: sc.Name, HeaderEnd: sc.HeaderEnd}
		for _, t := range sc.Transactions {
			t.File = sc.Name
			plan.Last = t
			switch {
			case from.GTID:
				if t.GTID == "" {
					return salvagePlan{}, fmt.Errorf("%s at %d: transaction without GTID in a GTID setup", sc.Name, t.Start)
				}
				g, err := topology.ParseMariaDBPos(t.GTID)
				if err != nil || len(g) != 1 {
					return salvagePlan{}, fmt.Errorf("%s at %d: GTID %q is not a MariaDB GTID (MySQL salvage is not supported yet)", sc.Name, t.Start, t.GTID)
				}
				if hasGTID(from.Have, g[0]) {
					continue
				}
			case i == 0 && t.Start < int64(from.Coord.Pos):
				continue // executed already: before the replica's coordinate
			case t.GTID != "":
				// With file/position replication the GTID (MariaDB always
				// writes one) is only a name for the record.
			}
			f.Trxs = append(f.Trxs, t)
		}
		if sc.IncompleteBytes > 0 {
			plan.Skipped = append(plan.Skipped, fsm.SkippedTrx{File: sc.Name, Start: sc.CompleteEnd, Bytes: sc.IncompleteBytes,
				Reason: "incomplete: a truncated event or a transaction without its commit (never acknowledged to a client)"})
		}
		if len(f.Trxs) > 0 {
			plan.Files = append(plan.Files, f)
		}
	}
	return plan, nil
}

// summarizeGTIDs renders applied transaction ids compactly for a step detail.
func summarizeGTIDs(ids []string) string {
	switch n := len(ids); {
	case n == 0:
		return "none"
	case n <= 6:
		return strings.Join(ids, ",")
	default:
		return fmt.Sprintf("%s,%s,%s … %s,%s (%d)", ids[0], ids[1], ids[2], ids[n-2], ids[n-1], n)
	}
}
