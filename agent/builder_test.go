package agent

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// binlogBuilder writes synthetic binlog v4 files, for the layouts no server
// here can produce (MySQL) and for the server tests, which need no MariaDB.
type binlogBuilder struct {
	buf      bytes.Buffer
	checksum bool
	serverID uint32
}

// newBinlog starts a file with the magic and a format description event of
// the given server version, with CRC32 checksums when checksum is set.
func newBinlog(t *testing.T, version string, checksum bool) *binlogBuilder {
	t.Helper()
	b := &binlogBuilder{checksum: checksum, serverID: 1}
	b.buf.WriteString(binlogMagic)
	body := make([]byte, 0, 100)
	body = binary.LittleEndian.AppendUint16(body, 4)
	v := make([]byte, 50)
	copy(v, version)
	body = append(body, v...)
	body = binary.LittleEndian.AppendUint32(body, 0)
	body = append(body, eventHeaderLen)
	// Post-header lengths: only the query event's (type 2) matters here.
	post := make([]byte, 40)
	post[queryEvent-1] = queryFixedLen
	body = append(body, post...)
	alg := byte(checksumOff)
	if checksum {
		alg = checksumCRC32
	}
	body = append(body, alg)
	// The FDE carries a checksum whatever the algorithm; write it always.
	b.rawEvent(formatDescriptionEvent, body, true)
	return b
}

// event appends an event and returns its start offset.
func (b *binlogBuilder) event(typ byte, body []byte) int64 {
	return b.rawEvent(typ, body, b.checksum)
}

func (b *binlogBuilder) rawEvent(typ byte, body []byte, checksum bool) int64 {
	start := int64(b.buf.Len())
	size := eventHeaderLen + len(body)
	if checksum {
		size += checksumLen
	}
	ev := make([]byte, 0, size)
	ev = binary.LittleEndian.AppendUint32(ev, 1700000000)
	ev = append(ev, typ)
	ev = binary.LittleEndian.AppendUint32(ev, b.serverID)
	ev = binary.LittleEndian.AppendUint32(ev, uint32(size))
	ev = binary.LittleEndian.AppendUint32(ev, uint32(start)+uint32(size))
	ev = binary.LittleEndian.AppendUint16(ev, 0)
	ev = append(ev, body...)
	if checksum {
		ev = binary.LittleEndian.AppendUint32(ev, crc32.ChecksumIEEE(ev))
	}
	b.buf.Write(ev)
	return start
}

// query appends a QUERY_EVENT with db "test" and no status variables.
func (b *binlogBuilder) query(q string) int64 {
	body := make([]byte, 0, queryFixedLen+5+len(q))
	body = binary.LittleEndian.AppendUint32(body, 7) // thread id
	body = binary.LittleEndian.AppendUint32(body, 0) // exec time
	body = append(body, 4)                           // db length
	body = binary.LittleEndian.AppendUint16(body, 0) // error code
	body = binary.LittleEndian.AppendUint16(body, 0) // status vars length
	body = append(body, "test\x00"...)
	body = append(body, q...)
	return b.event(queryEvent, body)
}

// mariaGTID appends a MariaDB GTID_EVENT.
func (b *binlogBuilder) mariaGTID(domain uint32, seq uint64, standalone bool) int64 {
	body := binary.LittleEndian.AppendUint64(nil, seq)
	body = binary.LittleEndian.AppendUint32(body, domain)
	flags := byte(0)
	if standalone {
		flags = mariaGTIDStandalone
	}
	body = append(body, flags, 0, 0, 0, 0, 0, 0)
	return b.event(mariaGTIDEvent, body)
}

// mariaGTIDList appends a GTID_LIST_EVENT of (domain, server, seq) triples.
func (b *binlogBuilder) mariaGTIDList(entries ...[3]uint64) int64 {
	body := binary.LittleEndian.AppendUint32(nil, uint32(len(entries)))
	for _, e := range entries {
		body = binary.LittleEndian.AppendUint32(body, uint32(e[0]))
		body = binary.LittleEndian.AppendUint32(body, uint32(e[1]))
		body = binary.LittleEndian.AppendUint64(body, e[2])
	}
	return b.event(mariaGTIDListEvent, body)
}

// mysqlGTID appends a MySQL GTID_LOG_EVENT (flags, sid, gno, and the
// logical clock fields MySQL 5.7+ adds after them).
func (b *binlogBuilder) mysqlGTID(sid [16]byte, gno uint64) int64 {
	body := []byte{1}
	body = append(body, sid[:]...)
	body = binary.LittleEndian.AppendUint64(body, gno)
	body = append(body, 2)                           // lt_type: logical timestamps
	body = binary.LittleEndian.AppendUint64(body, 5) // last_committed
	body = binary.LittleEndian.AppendUint64(body, 6) // sequence_number
	return b.event(mysqlGTIDEvent, body)
}

// rows appends a stand-in for a table map or rows event: opaque bytes of
// type typ that belong to the open transaction.
func (b *binlogBuilder) rows(typ byte, n int) int64 {
	return b.event(typ, bytes.Repeat([]byte{0xab}, n))
}

// xid appends an XID_EVENT.
func (b *binlogBuilder) xid(x uint64) int64 {
	return b.event(xidEvent, binary.LittleEndian.AppendUint64(nil, x))
}

// end is the current size of the file.
func (b *binlogBuilder) end() int64 { return int64(b.buf.Len()) }

func (b *binlogBuilder) bytes() []byte { return append([]byte(nil), b.buf.Bytes()...) }
