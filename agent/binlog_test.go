package agent

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// scanBytes scans an in-memory binlog.
func scanBytes(t *testing.T, data []byte, from int64) FileScan {
	t.Helper()
	res, err := ScanBinlog(bytes.NewReader(data), "mysql-bin.000001", int64(len(data)), from)
	if err != nil {
		t.Fatalf("ScanBinlog(from=%d): %v", from, err)
	}
	return res
}

// TestScanBinlog_MySQLGTID checks MySQL's GTID_LOG_EVENT layout on a
// synthetic file: there is no MySQL server on this machine, so the bytes
// are built by hand from the layout in MySQL's binlog_event.h (flags u8,
// sid [16]byte, gno u64, then logical clock fields). It also checks MySQL's
// transaction shapes: GTID + BEGIN ... XID, GTID + a lone DDL query, and an
// anonymous GTID.
func TestScanBinlog_MySQLGTID(t *testing.T) {
	sid := [16]byte{0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1, 0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42, 0x95, 0x63}
	b := newBinlog(t, "8.0.36", true)
	header := b.end()
	b.rows(35, 20) // Previous_gtids: not a transaction
	s1 := b.mysqlGTID(sid, 23)
	b.query("BEGIN")
	b.rows(19, 30) // table map
	b.rows(30, 40) // write rows v2
	b.xid(9)
	e1 := b.end()
	s2 := b.mysqlGTID(sid, 24)
	b.query("CREATE TABLE t2 (id INT)")
	e2 := b.end()
	s3 := b.event(mysqlAnonymousGTID, make([]byte, 42))
	b.query("BEGIN")
	b.rows(30, 10)
	b.query("COMMIT")
	e3 := b.end()

	res := scanBytes(t, b.bytes(), 0)
	want := []Trx{
		{GTID: "3e11fa47-71ca-11e1-9e33-c80aa9429563:23", File: "mysql-bin.000001", Start: s1, End: e1, Events: 5},
		{GTID: "3e11fa47-71ca-11e1-9e33-c80aa9429563:24", File: "mysql-bin.000001", Start: s2, End: e2, Events: 2},
		{File: "mysql-bin.000001", Start: s3, End: e3, Events: 4},
	}
	if !reflect.DeepEqual(res.Transactions, want) {
		t.Errorf("transactions:\n got %+v\nwant %+v", res.Transactions, want)
	}
	if res.HeaderEnd != header || res.CompleteEnd != e3 || res.IncompleteBytes != 0 || res.GTIDList != "" {
		t.Errorf("scan = %+v", res)
	}
}

// TestScanBinlog_FilePosNoGTID checks transactions without GTIDs: BEGIN ...
// COMMIT (a non-transactional table), BEGIN ... XID, a DDL statement of its
// own, on a file without checksums.
func TestScanBinlog_FilePosNoGTID(t *testing.T) {
	b := newBinlog(t, "5.5.62-log", false)
	s1 := b.query("CREATE TABLE t (id INT)")
	e1 := b.end()
	s2 := b.query("BEGIN")
	b.query("INSERT INTO t VALUES (1)")
	b.query("COMMIT")
	e2 := b.end()
	s3 := b.query("BEGIN")
	b.rows(23, 12)
	b.xid(4)
	e3 := b.end()
	b.event(4, []byte("\x04\x00\x00\x00\x00\x00\x00\x00mysql-bin.000002")) // Rotate
	res := scanBytes(t, b.bytes(), 0)
	want := []Trx{
		{File: "mysql-bin.000001", Start: s1, End: e1, Events: 1},
		{File: "mysql-bin.000001", Start: s2, End: e2, Events: 3},
		{File: "mysql-bin.000001", Start: s3, End: e3, Events: 3},
	}
	if !reflect.DeepEqual(res.Transactions, want) {
		t.Errorf("transactions:\n got %+v\nwant %+v", res.Transactions, want)
	}
	// The Rotate after the last transaction is complete and not data.
	if res.CompleteEnd != e3 || res.IncompleteBytes != 0 {
		t.Errorf("complete_end %d incomplete %d, want %d and 0", res.CompleteEnd, res.IncompleteBytes, e3)
	}
}

// mariaFile is a synthetic MariaDB binlog: a Gtid_list, a standalone DDL
// and two row transactions.
type mariaFile struct {
	data               []byte
	header, s1, s2, s3 int64
	e1, e2, e3         int64
}

func newMariaFile(t *testing.T) mariaFile {
	t.Helper()
	b := newBinlog(t, "10.11.19-MariaDB-log", true)
	var f mariaFile
	f.header = b.end()
	b.mariaGTIDList([3]uint64{0, 1, 100}, [3]uint64{1, 2, 5})
	b.event(161, []byte("\x10\x00\x00\x00mysql-bin.000001")) // Binlog_checkpoint
	f.s1 = b.mariaGTID(0, 101, true)
	b.query("CREATE TABLE t (id INT)")
	f.e1 = b.end()
	f.s2 = b.mariaGTID(0, 102, false)
	b.rows(160, 30) // annotate rows
	b.rows(19, 30)
	b.rows(23, 40)
	b.xid(7)
	f.e2 = b.end()
	b.serverID = 2
	f.s3 = b.mariaGTID(1, 6, false)
	b.rows(19, 30)
	b.rows(23, 40)
	b.xid(8)
	f.e3 = b.end()
	f.data = b.bytes()
	return f
}

func TestScanBinlog_MariaDBSynthetic(t *testing.T) {
	f := newMariaFile(t)
	res := scanBytes(t, f.data, 0)
	want := FileScan{
		Name: "mysql-bin.000001", Size: int64(len(f.data)), HeaderEnd: f.header, GTIDList: "0-1-100,1-2-5",
		Transactions: []Trx{
			{GTID: "0-1-101", File: "mysql-bin.000001", Start: f.s1, End: f.e1, Events: 2},
			{GTID: "0-1-102", File: "mysql-bin.000001", Start: f.s2, End: f.e2, Events: 5},
			{GTID: "1-2-6", File: "mysql-bin.000001", Start: f.s3, End: f.e3, Events: 4},
		},
		CompleteEnd: f.e3,
	}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("scan:\n got %+v\nwant %+v", res, want)
	}
}

func TestScanBinlog_From(t *testing.T) {
	f := newMariaFile(t)
	res := scanBytes(t, f.data, f.s2)
	if len(res.Transactions) != 2 || res.Transactions[0].Start != f.s2 || res.GTIDList != "0-1-100,1-2-5" {
		t.Errorf("from s2: %+v", res)
	}
	// An event boundary inside a transaction: that transaction started
	// before from and is not listed; its remaining events are not taken
	// for transactions of their own.
	res = scanBytes(t, f.data, f.s2+42)
	if len(res.Transactions) != 1 || res.Transactions[0].Start != f.s3 {
		t.Errorf("from inside trx 2: %+v", res.Transactions)
	}
	res = scanBytes(t, f.data, f.e3)
	if len(res.Transactions) != 0 || res.CompleteEnd != f.e3 || res.IncompleteBytes != 0 {
		t.Errorf("from the end: %+v", res)
	}
	for _, tc := range []struct {
		from int64
		want string
	}{
		{f.s2 + 1, "not an event boundary"},
		{10, "inside the file header"},
		{f.e3 + 1, "past the end"},
		{-1, "negative"},
	} {
		_, err := ScanBinlog(bytes.NewReader(f.data), "x", int64(len(f.data)), tc.from)
		if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("from=%d: err = %v, want ErrBadRequest with %q", tc.from, err, tc.want)
		}
	}
}

func TestScanBinlog_IncompleteTail(t *testing.T) {
	f := newMariaFile(t)
	size := int64(len(f.data))
	tests := []struct {
		name       string
		data       []byte
		wantTrx    int
		wantEnd    int64
		incomplete int64
	}{
		{"truncated last event", f.data[:f.e3-3], 2, f.e2, f.e3 - 3 - f.s3},
		{"truncated header", f.data[:f.e2+5], 2, f.e2, 5},
		{"after the GTID event", f.data[:f.s3+42], 2, f.e2, 42},
		{"flipped byte in the xid", flip(f.data, f.e3-10), 2, f.e2, size - f.s3},
		{"flipped byte in a middle trx", flip(f.data, f.s2+50), 1, f.e1, size - f.s2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := scanBytes(t, tt.data, 0)
			if len(res.Transactions) != tt.wantTrx || res.CompleteEnd != tt.wantEnd || res.IncompleteBytes != tt.incomplete {
				t.Errorf("got %d trx, complete_end %d, incomplete %d; want %d, %d, %d",
					len(res.Transactions), res.CompleteEnd, res.IncompleteBytes, tt.wantTrx, tt.wantEnd, tt.incomplete)
			}
		})
	}
}

func TestScanBinlog_NotABinlog(t *testing.T) {
	f := newMariaFile(t)
	for name, data := range map[string][]byte{
		"empty":       nil,
		"magic only":  []byte(binlogMagic),
		"bad magic":   append([]byte("\xfexxx"), f.data[4:]...),
		"bad fde crc": flip(f.data, 30),
		"encrypted":   append(f.data[:f.header:f.header], newBinlogEvent(t, mariaStartEncryption, f.header)...),
	} {
		_, err := ScanBinlog(bytes.NewReader(data), "x", int64(len(data)), 0)
		if !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err = %v, want ErrFormat", name, err)
		}
	}
}

// newBinlogEvent returns one checksummed event of type typ placed at off.
func newBinlogEvent(t *testing.T, typ byte, off int64) []byte {
	t.Helper()
	// Padding puts the event at off, so its log_pos is right.
	b := &binlogBuilder{checksum: true, serverID: 1}
	b.buf.Write(make([]byte, off))
	start := b.event(typ, make([]byte, 10))
	return b.bytes()[start:]
}

func TestParseMySQLGTID_UUIDFormat(t *testing.T) {
	body := append([]byte{0}, []byte("\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff")...)
	body = append(body, 1, 0, 0, 0, 0, 0, 0, 0)
	got, err := parseMySQLGTID(body)
	if err != nil || got != "00112233-4455-6677-8899-aabbccddeeff:1" {
		t.Errorf("got %q, %v", got, err)
	}
	if _, err := parseMySQLGTID(body[:20]); err == nil {
		t.Error("short body: want an error")
	}
}

func TestVersionHasChecksum(t *testing.T) {
	for v, want := range map[string]bool{
		"10.11.19-MariaDB-0+deb12u1-log": true, "5.3.12-MariaDB": true, "5.2.1-MariaDB": false,
		"5.6.1-m5": true, "5.6.0": false, "5.5.62-log": false, "8.0.36": true,
	} {
		if got := versionHasChecksum(v); got != want {
			t.Errorf("%s: %t, want %t", v, got, want)
		}
	}
}

// flip returns a copy of data with the byte at off inverted.
func flip(data []byte, off int64) []byte {
	out := append([]byte(nil), data...)
	out[off] ^= 0xff
	return out
}
