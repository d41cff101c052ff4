package agent

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Binlog v4 layout: the file starts with binlogMagic, then events. Every
// event starts with a 19-byte little-endian header: timestamp u32, type u8,
// server_id u32, event_size u32 (header included), log_pos u32 (offset of
// the event's end in the file), flags u16.
const (
	binlogMagic    = "\xfebin"
	eventHeaderLen = 19
	checksumLen    = 4
	// maxEventSize bounds a declared event size: the server refuses events
	// over max_allowed_packet, whose ceiling is 1 GiB. A larger size is a
	// corrupt header, not an event to wait for.
	maxEventSize = 1<<30 + 1<<20
)

// Event types the scanner looks at (MySQL's and MariaDB's log_event.h).
const (
	queryEvent             = 2
	startEventV3           = 1
	formatDescriptionEvent = 15
	xidEvent               = 16
	mysqlGTIDEvent         = 33
	mysqlAnonymousGTID     = 34
	xaPrepareEvent         = 38
	mariaGTIDEvent         = 162
	mariaGTIDListEvent     = 163
	mariaStartEncryption   = 164
)

// Checksum algorithms named in the format description event.
const (
	checksumOff   = 0
	checksumCRC32 = 1
)

// binlogInUseFlag is set in the FDE's header flags while the server has the
// file open. The server clears it on close without recomputing the
// checksum, so the checksum is always over the flags without it.
const binlogInUseFlag = 0x1

// mariaGTIDStandalone is FL_STANDALONE in a MariaDB GTID event's flags: the
// transaction is the one event that follows (DDL), with no BEGIN/COMMIT.
const mariaGTIDStandalone = 0x1

// eventHeader is the fixed part of every event.
type eventHeader struct {
	Type     byte
	ServerID uint32
	Size     uint32
	LogPos   uint32
	Flags    uint16
}

func parseHeader(b []byte) eventHeader {
	return eventHeader{
		Type:     b[4],
		ServerID: binary.LittleEndian.Uint32(b[5:]),
		Size:     binary.LittleEndian.Uint32(b[9:]),
		LogPos:   binary.LittleEndian.Uint32(b[13:]),
		Flags:    binary.LittleEndian.Uint16(b[17:]),
	}
}

// formatDescription is what the scanner needs from the FDE.
type formatDescription struct {
	serverVersion string
	checksum      bool
	// postHeader[t-1] is the post-header length of event type t.
	postHeader []byte
}

// fdeFixedLen is the FDE payload before the post-header lengths: binlog
// version u16, server version [50]byte, create timestamp u32, header length u8.
const fdeFixedLen = 2 + 50 + 4 + 1

// parseFDE reads a FORMAT_DESCRIPTION_EVENT (the whole event, header
// included). Servers that know checksums (MySQL 5.6.1+, MariaDB 5.3+) end
// it with the checksum algorithm byte and a CRC32 of the FDE itself, which
// is present even when the algorithm is OFF.
func parseFDE(ev []byte) (formatDescription, error) {
	p := ev[eventHeaderLen:]
	if len(p) < fdeFixedLen {
		return formatDescription{}, fmt.Errorf("%w: format description event too short (%d bytes)", ErrFormat, len(ev))
	}
	if v := binary.LittleEndian.Uint16(p); v != 4 {
		return formatDescription{}, fmt.Errorf("%w: binlog version %d, want 4", ErrFormat, v)
	}
	if hl := p[56]; hl != eventHeaderLen {
		return formatDescription{}, fmt.Errorf("%w: event header length %d, want %d", ErrFormat, hl, eventHeaderLen)
	}
	fd := formatDescription{serverVersion: strings.TrimRight(string(p[2:52]), "\x00")}
	rest := p[fdeFixedLen:]
	if versionHasChecksum(fd.serverVersion) {
		if len(rest) < 1+checksumLen {
			return formatDescription{}, fmt.Errorf("%w: format description event lacks its checksum algorithm", ErrFormat)
		}
		alg := rest[len(rest)-1-checksumLen]
		switch alg {
		case checksumOff:
		case checksumCRC32:
			fd.checksum = true
		default:
			return formatDescription{}, fmt.Errorf("%w: unknown binlog checksum algorithm %d", ErrFormat, alg)
		}
		rest = rest[:len(rest)-1-checksumLen]
	}
	fd.postHeader = append([]byte(nil), rest...)
	return fd, nil
}

// versionHasChecksum reports whether a server of this version writes the
// checksum algorithm into its FDE: MySQL from 5.6.1, MariaDB from 5.3.
func versionHasChecksum(v string) bool {
	nums := [3]int{}
	fields := strings.FieldsFunc(v, func(r rune) bool { return r == '.' || r == '-' })
	for i := 0; i < 3 && i < len(fields); i++ {
		n, err := strconv.Atoi(fields[i])
		if err != nil {
			break
		}
		nums[i] = n
	}
	want := [3]int{5, 6, 1}
	if strings.Contains(v, "MariaDB") {
		want = [3]int{5, 3, 0}
	}
	for i := range nums {
		if nums[i] != want[i] {
			return nums[i] > want[i]
		}
	}
	return true
}

// postHeaderLen returns the FDE's post-header length for type t, or def
// when the FDE does not list t.
func (fd formatDescription) postHeaderLen(t byte, def int) int {
	if int(t) >= 1 && int(t) <= len(fd.postHeader) {
		return int(fd.postHeader[t-1])
	}
	return def
}

// mariaGTID is a MariaDB GTID_EVENT: seq_no u64, domain_id u32, flags u8;
// the server id is the event header's.
type mariaGTID struct {
	domain, server uint32
	seq            uint64
	flags          byte
}

func (g mariaGTID) String() string { return fmt.Sprintf("%d-%d-%d", g.domain, g.server, g.seq) }

func parseMariaGTID(h eventHeader, body []byte) (mariaGTID, error) {
	if len(body) < 13 {
		return mariaGTID{}, fmt.Errorf("GTID event body is %d bytes, want at least 13", len(body))
	}
	return mariaGTID{
		seq:    binary.LittleEndian.Uint64(body),
		domain: binary.LittleEndian.Uint32(body[8:]),
		flags:  body[12],
		server: h.ServerID,
	}, nil
}

// parseMariaGTIDList reads a GTID_LIST_EVENT: count u32 (the low 28 bits;
// the high 4 are flags), then count × (domain u32, server u32, seq u64). It
// returns the list as "d-s-n,d-s-n".
func parseMariaGTIDList(body []byte) (string, error) {
	if len(body) < 4 {
		return "", fmt.Errorf("GTID list event body is %d bytes, want at least 4", len(body))
	}
	n := int(binary.LittleEndian.Uint32(body) & (1<<28 - 1))
	body = body[4:]
	if len(body) < n*16 {
		return "", fmt.Errorf("GTID list of %d entries needs %d bytes, has %d", n, n*16, len(body))
	}
	parts := make([]string, 0, n)
	for i := 0; i < n; i++ {
		e := body[i*16:]
		parts = append(parts, mariaGTID{
			domain: binary.LittleEndian.Uint32(e),
			server: binary.LittleEndian.Uint32(e[4:]),
			seq:    binary.LittleEndian.Uint64(e[8:]),
		}.String())
	}
	return strings.Join(parts, ","), nil
}

// parseMySQLGTID reads a MySQL GTID_LOG_EVENT: flags u8, sid [16]byte,
// gno u64, and returns "uuid:gno".
func parseMySQLGTID(body []byte) (string, error) {
	if len(body) < 25 {
		return "", fmt.Errorf("MySQL GTID event body is %d bytes, want at least 25", len(body))
	}
	sid := hex.EncodeToString(body[1:17])
	gno := binary.LittleEndian.Uint64(body[17:])
	return fmt.Sprintf("%s-%s-%s-%s-%s:%d", sid[0:8], sid[8:12], sid[12:16], sid[16:20], sid[20:32], gno), nil
}

// queryFixedLen is the QUERY_EVENT post-header: thread id u32, exec time
// u32, db length u8, error code u16, status vars length u16.
const queryFixedLen = 4 + 4 + 1 + 2 + 2

// parseQuery returns the statement of a QUERY_EVENT body (the bytes after
// the header, without the checksum). postHeader is the FDE's post-header
// length for queries (13 for every v4 server); the layout after it is the
// status variables, the default database and a NUL, then the statement.
// body may be cut short for a long statement: the scanner only needs its
// first words.
func parseQuery(body []byte, postHeader int) (string, error) {
	if postHeader < queryFixedLen || len(body) < postHeader {
		return "", fmt.Errorf("query event body is %d bytes, post-header %d", len(body), postHeader)
	}
	dbLen := int(body[8])
	statusLen := int(binary.LittleEndian.Uint16(body[11:]))
	off := postHeader + statusLen + dbLen + 1
	if off > len(body) {
		return "", fmt.Errorf("query event status vars (%d) and db (%d) run past its end", statusLen, dbLen)
	}
	return string(body[off:]), nil
}

// queryKind classifies a statement for transaction boundaries.
type queryKind int

const (
	queryOther queryKind = iota
	queryBegin
	// queryEnd is COMMIT, or ROLLBACK, which the server logs to end a
	// transaction that changed non-transactional tables: both are complete.
	queryEnd
)

func classifyQuery(q string) queryKind {
	q = strings.TrimSpace(q)
	switch {
	case strings.EqualFold(q, "BEGIN"):
		return queryBegin
	case strings.EqualFold(q, "COMMIT"), strings.EqualFold(q, "ROLLBACK"):
		return queryEnd
	}
	return queryOther
}
