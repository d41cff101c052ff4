package recovery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/quorumha/quorumha/topology"
)

func mariaInst(key, binlogState, slavePos, currentPos string) *topology.Instance {
	return &topology.Instance{Key: key, Version: topology.Version{Flavor: topology.MariaDB},
		GTIDBinlogState: binlogState, GTIDSlavePos: slavePos, GTIDCurrentPos: currentPos}
}

func TestRejoinErrant(t *testing.T) {
	tests := []struct {
		name       string
		inst, mst  *topology.Instance
		wantErrant []string
		wantPos    string
	}{
		{"clean: the new master went on under its own id",
			mariaInst("old:1", "0-1-100", "", "0-1-100"), mariaInst("new:1", "0-1-100,0-2-105", "0-1-100", "0-2-105"),
			nil, "0-1-100"},
		// The per-domain comparison would call 0-1-103 known (105 > 103):
		// the new master's sequence numbers overtook the errant ones.
		{"errant under the old master's id, overtaken by the new master's numbers",
			mariaInst("old:1", "0-1-103", "", "0-1-103"), mariaInst("new:1", "0-1-100,0-2-105", "0-1-100", "0-2-105"),
			[]string{"0-1-101..103"}, "0-1-103"},
		{"one errant transaction",
			mariaInst("old:1", "0-1-101", "", "0-1-101"), mariaInst("new:1", "0-1-100", "0-1-100", "0-1-100"),
			[]string{"0-1-101"}, "0-1-101"},
		{"a domain the master never saw",
			mariaInst("old:1", "0-1-100,1-1-7", "", "0-1-100,1-1-7"), mariaInst("new:1", "0-1-100,0-2-101", "", "0-2-101"),
			[]string{"1-1-1..7"}, "0-1-100,1-1-7"},
		{"old replica history in gtid_slave_pos is known",
			mariaInst("old:1", "0-3-50,0-1-100", "0-3-50", "0-1-100"), mariaInst("new:1", "0-3-50,0-1-100,0-2-101", "0-1-100", "0-2-101"),
			nil, "0-1-100"},
		{"mysql", &topology.Instance{Key: "old:1", Version: topology.Version{Flavor: topology.MySQL},
			GTIDExecuted: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-10,4e11fa47-71ca-11e1-9e33-c80aa9429562:1-3"},
			&topology.Instance{Key: "new:1", Version: topology.Version{Flavor: topology.MySQL},
				GTIDExecuted: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-8,4e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"},
			[]string{"3e11fa47-71ca-11e1-9e33-c80aa9429562:9-10"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errant, pos, err := rejoinErrant(tt.inst, tt.mst)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(errant, tt.wantErrant) {
				t.Errorf("errant %q, want %q", errant, tt.wantErrant)
			}
			if tt.wantPos != "" && pos != tt.wantPos {
				t.Errorf("pos %q, want %q", pos, tt.wantPos)
			}
		})
	}
	if _, _, err := rejoinErrant(mariaInst("old:1", "junk", "", ""), mariaInst("new:1", "", "", "")); err == nil {
		t.Error("unparsable state: no error")
	}
}

func TestDecideRejoin(t *testing.T) {
	ok := rejoinFacts{Instance: "old:1", Flavor: topology.MariaDB, GTID: true, ReplUser: "repl", BinlogFormat: "ROW", RowImage: "FULL", Agent: true}
	with := func(f func(*rejoinFacts)) rejoinFacts { c := ok; f(&c); return c }
	tests := []struct {
		name       string
		f          rejoinFacts
		wantRewind bool
		wantErr    string
	}{
		{"clean", ok, false, ""},
		{"no repl_user", with(func(f *rejoinFacts) { f.ReplUser = "" }), false, "clusters[].repl_user"},
		{"file mode", with(func(f *rejoinFacts) { f.GTID = false }), false, "file/position"},
		{"errant without rewind", with(func(f *rejoinFacts) { f.Errant = []string{"0-1-101..103"} }), false, "0-1-101..103"},
		{"errant with rewind", with(func(f *rejoinFacts) { f.Errant = []string{"0-1-101"}; f.Rewind = true }), true, ""},
		{"errant, rewind, statement binlog", with(func(f *rejoinFacts) { f.Errant = []string{"0-1-101"}; f.Rewind = true; f.BinlogFormat = "MIXED" }), false, "binlog_format is MIXED"},
		{"errant, rewind, minimal rows", with(func(f *rejoinFacts) { f.Errant = []string{"0-1-101"}; f.Rewind = true; f.RowImage = "MINIMAL" }), false, "binlog_row_image"},
		{"errant, rewind, no agent", with(func(f *rejoinFacts) { f.Errant = []string{"0-1-101"}; f.Rewind = true; f.Agent = false }), false, "no agent"},
		{"errant on mysql", with(func(f *rejoinFacts) { f.Errant = []string{"u:9-10"}; f.Rewind = true; f.Flavor = topology.MySQL }), false, "MySQL has no flashback"},
		{"rewind asked, nothing errant", with(func(f *rejoinFacts) { f.Rewind = true }), false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rewind, err := decideRejoin(tt.f)
			if tt.wantErr == "" {
				if err != nil || rewind != tt.wantRewind {
					t.Fatalf("got rewind %t, err %v; want rewind %t", rewind, err, tt.wantRewind)
				}
				return
			}
			if !errors.Is(err, ErrRejoinRefused) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err %v, want ErrRejoinRefused naming %q", err, tt.wantErr)
			}
		})
	}
}

// scanAgent is a BinlogAgent over fixed scans.
type scanAgent struct{ scans []BinlogScan }

func (a scanAgent) Files(context.Context) ([]BinlogFile, error) {
	var out []BinlogFile
	for _, s := range a.scans {
		out = append(out, BinlogFile{Name: s.Name, Size: s.Size})
	}
	return out, nil
}

func (a scanAgent) Scan(_ context.Context, name string, _ int64, _ string) (BinlogScan, error) {
	for _, s := range a.scans {
		if s.Name == name {
			return s, nil
		}
	}
	return BinlogScan{}, fmt.Errorf("no %s", name)
}

func (a scanAgent) Raw(_ context.Context, name string, from, to int64, w io.Writer) (int64, error) {
	n, err := io.Copy(w, bytes.NewReader(bytes.Repeat([]byte{'x'}, int(to-from))))
	return n, err
}

func (a scanAgent) Tail(context.Context) (BinlogTail, error) { return BinlogTail{}, nil }

func trxs(file string, gtids ...string) []BinlogTrx {
	var out []BinlogTrx
	for i, g := range gtids {
		out = append(out, BinlogTrx{GTID: g, File: file, Start: int64(100 * (i + 1)), End: int64(100*(i+1) + 50)})
	}
	return out
}

func TestFindErrant(t *testing.T) {
	ref, _ := topology.ParseMariaDBGTIDList("0-1-100,0-2-105")
	tests := []struct {
		name       string
		scans      []BinlogScan
		wantErrant []string
		wantShared string
		wantErr    string
	}{
		{"suffix in the last file",
			[]BinlogScan{{Name: "b.1", GTIDList: "0-1-97", Transactions: trxs("b.1", "0-1-98", "0-1-99", "0-1-100", "0-1-101", "0-1-102")}},
			[]string{"0-1-101", "0-1-102"}, "0-1-100", ""},
		{"suffix over a rotation",
			[]BinlogScan{
				{Name: "b.1", GTIDList: "", Transactions: trxs("b.1", "0-1-99", "0-1-100", "0-1-101")},
				{Name: "b.2", GTIDList: "0-1-101", Transactions: trxs("b.2", "0-1-102")}},
			[]string{"0-1-101", "0-1-102"}, "0-1-100", ""},
		{"last file after a restart holds no transaction",
			[]BinlogScan{
				{Name: "b.1", GTIDList: "", Transactions: trxs("b.1", "0-1-100", "0-1-101")},
				{Name: "b.2", GTIDList: "0-1-101"}},
			[]string{"0-1-101"}, "0-1-100", ""},
		{"interleaved",
			[]BinlogScan{{Name: "b.1", Transactions: trxs("b.1", "0-1-100", "0-1-101", "0-2-101")}},
			nil, "", "interleave"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, err := findErrant(context.Background(), scanAgent{tt.scans}, ref)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range sc.Errant {
				got = append(got, e.GTID)
			}
			if !slices.Equal(got, tt.wantErrant) || sc.Shared.String() != tt.wantShared {
				t.Fatalf("errant %q shared %q, want %q %q", got, sc.Shared, tt.wantErrant, tt.wantShared)
			}
		})
	}
}

func TestStatementsIn(t *testing.T) {
	rows := "/*!50530 SET @@SESSION.PSEUDO_SLAVE_MODE=1*/;\n/*!40019 SET @@session.max_delayed_threads=0*/;\nDELIMITER /*!*/;\n# at 4\n#261203 18:57:57 server id 1  end_log_pos 256 CRC32 0x1  Start: binlog v 4\n" +
		"SET TIMESTAMP=1764788277/*!*/;\nSET @@session.pseudo_thread_id=5/*!*/;\nBEGIN\n/*!*/;\n# at 300\n### INSERT INTO `t`.`salvage`\n### SET\n###   @1=1\nCOMMIT/*!*/;\nuse `t`/*!*/;\nDELIMITER ;\n# End of log file\nROLLBACK /* added by mysqlbinlog */;\n"
	if got := statementsIn(rows); len(got) != 0 {
		t.Fatalf("row events decode to %q, want no statements", got)
	}
	ddl := rows + "CREATE TABLE t.x (id INT)\n/*!*/;\nUPDATE t.y SET a=1\n/*!*/;\n"
	if got := statementsIn(ddl); len(got) != 2 || !strings.HasPrefix(got[0], "CREATE TABLE") {
		t.Fatalf("statements %q, want the CREATE and the UPDATE", got)
	}
}
