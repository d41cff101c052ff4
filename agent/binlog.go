package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// readChunk is how much the event reader fetches at once: most events are a
// few hundred bytes, so one read serves many.
const readChunk = 256 << 10

// parseLimit bounds how much of an event's body the scanner decodes. Only
// GTID, GTID list and query events are decoded, and of a query only its
// first words matter; a 100 MB statement is checksummed in chunks instead.
const parseLimit = 128 << 10

// eventReader serves byte ranges of a file through a window buffer, so a
// scan costs one read per chunk rather than two per event, and bytes before
// `from` that are skipped are never read.
type eventReader struct {
	r      io.ReaderAt
	size   int64
	buf    []byte
	bufOff int64
}

// bytes returns the n bytes at off, valid until the next call, or
// io.ErrUnexpectedEOF when the file ends first.
func (e *eventReader) bytes(off int64, n int) ([]byte, error) {
	if off < 0 || off+int64(n) > e.size {
		return nil, io.ErrUnexpectedEOF
	}
	if off >= e.bufOff && off+int64(n) <= e.bufOff+int64(len(e.buf)) {
		return e.buf[off-e.bufOff : off-e.bufOff+int64(n)], nil
	}
	want := int64(max(n, readChunk))
	want = min(want, e.size-off)
	if int64(cap(e.buf)) < want {
		e.buf = make([]byte, want)
	}
	e.buf = e.buf[:want]
	k, err := e.r.ReadAt(e.buf, off)
	e.buf, e.bufOff = e.buf[:k], off
	if k < n {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return e.buf[:n], nil
}

// crc returns the CRC32 (IEEE, as the server computes it) of [off, off+n).
// Long events are hashed chunk by chunk, never held whole.
func (e *eventReader) crc(off, n int64) (uint32, error) {
	var sum uint32
	for n > 0 {
		k := min(n, readChunk)
		b, err := e.bytes(off, int(k))
		if err != nil {
			return 0, err
		}
		sum = crc32.Update(sum, crc32.IEEETable, b)
		off, n = off+k, n-k
	}
	return sum, nil
}

// openTrx is the transaction being read.
type openTrx struct {
	gtid   string
	start  int64
	events int
	// standalone: MariaDB FL_STANDALONE, the next event ends it.
	standalone bool
	// mysqlGTID: opened by a MySQL (anonymous) GTID event, whose DDL is a
	// lone query after it rather than a BEGIN ... COMMIT group.
	mysqlGTID bool
	begun     bool
}

// scanner is the state of one ScanBinlog call.
type scanner struct {
	r    *eventReader
	name string
	from int64
	fd   formatDescription
	res  FileScan
	open *openTrx
	// incompleteAt is where the file stops making complete transactions
	// (-1: it does not).
	incompleteAt int64
	// problem says why scanning stopped early or dropped bytes, for logs.
	problem string
	// sawTrx and sawGTIDList: only a Gtid_list before any transaction is
	// the file's starting state.
	sawTrx, sawGTIDList bool
}

// ScanBinlog reads the binlog v4 file r of the given size and returns the
// complete transactions whose Start >= from (see FileScan). from 0 means the
// whole file; otherwise it must be an event boundary at or after the end of
// the format description event (ErrBadRequest). Events before from are not
// checksummed, and only the headers of events other than GTID and query
// events are read there.
//
// Whatever does not make a complete, checksummed transaction at the end of
// the file (a torn write, a flipped byte, a transaction without its commit)
// is reported in IncompleteBytes and never listed: applying half a
// transaction would be worse than losing it.
func ScanBinlog(r io.ReaderAt, name string, size, from int64) (FileScan, error) {
	res, _, err := scanBinlog(r, name, size, from)
	return res, err
}

// scanBinlog is ScanBinlog that also says why the scan found bytes it could
// not use ("" when none), for the server's log.
func scanBinlog(r io.ReaderAt, name string, size, from int64) (FileScan, string, error) {
	if from < 0 {
		return FileScan{}, "", fmt.Errorf("%w: from=%d is negative", ErrBadRequest, from)
	}
	s := &scanner{r: &eventReader{r: r, size: size}, name: name, from: from, incompleteAt: -1,
		res: FileScan{Name: name, Size: size, Transactions: []Trx{}}}
	if err := s.readHeader(); err != nil {
		return FileScan{}, "", err
	}
	if from > 0 && from < s.res.HeaderEnd {
		return FileScan{}, "", fmt.Errorf("%w: from=%d is inside the file header (it ends at %d)", ErrBadRequest, from, s.res.HeaderEnd)
	}
	if from > size {
		return FileScan{}, "", fmt.Errorf("%w: from=%d is past the end of %s (%d bytes)", ErrBadRequest, from, name, size)
	}
	s.res.CompleteEnd = max(from, s.res.HeaderEnd)
	if err := s.events(); err != nil {
		return FileScan{}, "", err
	}
	if s.open != nil && s.incompleteAt < 0 {
		s.incompleteAt = s.open.start
		s.problem = fmt.Sprintf("transaction starting at %d has no end", s.open.start)
	}
	if s.incompleteAt >= 0 {
		s.res.IncompleteBytes = size - max(s.incompleteAt, s.res.CompleteEnd)
	}
	return s.res, s.problem, nil
}

// readHeader checks the magic and reads the FORMAT_DESCRIPTION_EVENT, which
// must be the first event: it says whether events carry checksums.
func (s *scanner) readHeader() error {
	b, err := s.r.bytes(0, len(binlogMagic)+eventHeaderLen)
	if err != nil {
		return fmt.Errorf("%w: %s is %d bytes, too short for a binlog header", ErrFormat, s.name, s.r.size)
	}
	if string(b[:4]) != binlogMagic {
		return fmt.Errorf("%w: %s does not start with the binlog magic", ErrFormat, s.name)
	}
	h := parseHeader(b[4:])
	if h.Type != formatDescriptionEvent {
		if h.Type == startEventV3 {
			return fmt.Errorf("%w: %s is a binlog v1-v3 file", ErrFormat, s.name)
		}
		return fmt.Errorf("%w: %s: first event has type %d, want a format description (15)", ErrFormat, s.name, h.Type)
	}
	if h.Size < eventHeaderLen || h.Size > parseLimit {
		return fmt.Errorf("%w: %s: format description event of %d bytes", ErrFormat, s.name, h.Size)
	}
	ev, err := s.r.bytes(4, int(h.Size))
	if err != nil {
		return fmt.Errorf("%w: %s: format description event is truncated", ErrFormat, s.name)
	}
	ev = append([]byte(nil), ev...)
	if s.fd, err = parseFDE(ev); err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	if s.fd.checksum {
		// The in-use flag is cleared on close without a new checksum.
		binary.LittleEndian.PutUint16(ev[17:], h.Flags&^binlogInUseFlag)
		n := len(ev) - checksumLen
		if crc32.ChecksumIEEE(ev[:n]) != binary.LittleEndian.Uint32(ev[n:]) {
			return fmt.Errorf("%w: %s: format description event checksum mismatch", ErrFormat, s.name)
		}
	}
	s.res.HeaderEnd = 4 + int64(h.Size)
	return nil
}

// events walks the events after the FDE to the end of the file, or to the
// first one that is truncated or corrupt.
func (s *scanner) events() error {
	off, size := s.res.HeaderEnd, s.r.size
	minSize := uint32(eventHeaderLen)
	if s.fd.checksum {
		minSize += checksumLen
	}
	for off < size {
		b, err := s.r.bytes(off, eventHeaderLen)
		if err != nil {
			return s.stop(off, "truncated event header", err)
		}
		h := parseHeader(b)
		end := off + int64(h.Size)
		if h.Size < minSize || h.Size > maxEventSize || (h.LogPos != 0 && h.LogPos != uint32(end)) {
			if off < s.from {
				return fmt.Errorf("%w: from=%d: cannot walk the events before it (bad event header at %d)", ErrBadRequest, s.from, off)
			}
			return s.stop(off, fmt.Sprintf("bad event header (size %d, log_pos %d)", h.Size, h.LogPos), nil)
		}
		if end > size {
			if off < s.from {
				return fmt.Errorf("%w: from=%d is not an event boundary", ErrBadRequest, s.from)
			}
			return s.stop(off, fmt.Sprintf("event of %d bytes is truncated", h.Size), nil)
		}
		if off < s.from && end > s.from {
			return fmt.Errorf("%w: from=%d is not an event boundary (the event at %d ends at %d)", ErrBadRequest, s.from, off, end)
		}
		if h.Type == mariaStartEncryption {
			return fmt.Errorf("%w: %s is encrypted (encrypt_binlog); the agent cannot read it", ErrFormat, s.name)
		}
		if off >= s.from && s.fd.checksum {
			ok, err := s.checksumOK(off, h.Size)
			if err != nil {
				return s.stop(off, "cannot read event", err)
			}
			if !ok {
				return s.stop(off, fmt.Sprintf("checksum mismatch in event at %d", off), nil)
			}
		}
		if err := s.event(off, h); err != nil {
			if off < s.from {
				return fmt.Errorf("%w: from=%d: cannot walk the events before it: %v", ErrBadRequest, s.from, err)
			}
			return s.stop(off, err.Error(), nil)
		}
		off = end
	}
	return nil
}

// stop ends the scan at off: what starts there (or the open transaction
// before it) is incomplete. A read error other than a short file is a real
// I/O error and fails the scan.
func (s *scanner) stop(off int64, why string, err error) error {
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%s: read at %d: %w", s.name, off, err)
	}
	s.incompleteAt = off
	if s.open != nil {
		s.incompleteAt = s.open.start
	}
	s.problem = fmt.Sprintf("%s at offset %d", why, off)
	return nil
}

func (s *scanner) checksumOK(off int64, size uint32) (bool, error) {
	n := int64(size) - checksumLen
	sum, err := s.r.crc(off, n)
	if err != nil {
		return false, err
	}
	b, err := s.r.bytes(off+n, checksumLen)
	if err != nil {
		return false, err
	}
	return sum == binary.LittleEndian.Uint32(b), nil
}

// body returns the event's body (after the header, without the checksum),
// cut at parseLimit.
func (s *scanner) body(off int64, h eventHeader) ([]byte, error) {
	n := int(h.Size) - eventHeaderLen
	if s.fd.checksum {
		n -= checksumLen
	}
	b, err := s.r.bytes(off+eventHeaderLen, min(n, parseLimit))
	if err != nil {
		return nil, err
	}
	return b, nil
}

// event applies one complete event to the transaction state.
func (s *scanner) event(off int64, h eventHeader) error {
	end := off + int64(h.Size)
	if s.open != nil && s.open.standalone {
		// FL_STANDALONE: the GTID's transaction is this one event.
		s.open.events++
		s.closeTrx(end)
		return nil
	}
	switch h.Type {
	case mariaGTIDEvent:
		body, err := s.body(off, h)
		if err != nil {
			return err
		}
		g, err := parseMariaGTID(h, body)
		if err != nil {
			return err
		}
		s.startTrx(&openTrx{gtid: g.String(), start: off, events: 1, standalone: g.flags&mariaGTIDStandalone != 0})
	case mysqlGTIDEvent, mysqlAnonymousGTID:
		t := &openTrx{start: off, events: 1, mysqlGTID: true}
		if h.Type == mysqlGTIDEvent {
			body, err := s.body(off, h)
			if err != nil {
				return err
			}
			if t.gtid, err = parseMySQLGTID(body); err != nil {
				return err
			}
		}
		s.startTrx(t)
	case mariaGTIDListEvent:
		if !s.sawTrx && !s.sawGTIDList {
			// The list at the start of the file: the server's GTID state
			// when it opened the file.
			s.sawGTIDList = true
			body, err := s.body(off, h)
			if err != nil {
				return err
			}
			if s.res.GTIDList, err = parseMariaGTIDList(body); err != nil {
				return err
			}
		} else if s.open != nil {
			s.open.events++
		}
	case queryEvent:
		body, err := s.body(off, h)
		if err != nil {
			return err
		}
		q, err := parseQuery(body, s.fd.postHeaderLen(queryEvent, queryFixedLen))
		if err != nil {
			return err
		}
		s.query(off, end, classifyQuery(q))
	case xidEvent, xaPrepareEvent:
		if s.open != nil {
			s.open.events++
			s.closeTrx(end)
		}
	default:
		// Rows, table maps, annotations, user vars... belong to the open
		// transaction; outside one (Rotate, Stop, Binlog_checkpoint,
		// Previous_gtids) they are not data to salvage.
		if s.open != nil {
			s.open.events++
		}
	}
	return nil
}

// query applies a QUERY_EVENT: BEGIN opens a transaction when no GTID did,
// COMMIT/ROLLBACK ends one, a MySQL DDL right after its GTID is the whole
// transaction, and a statement outside any transaction (DDL in a
// file/position setup without GTIDs) is a transaction of its own.
func (s *scanner) query(off, end int64, kind queryKind) {
	if s.open == nil {
		switch kind {
		case queryBegin:
			s.startTrx(&openTrx{start: off, events: 1, begun: true})
		case queryOther:
			s.startTrx(&openTrx{start: off, events: 1})
			s.closeTrx(end)
		}
		return
	}
	s.open.events++
	switch {
	case kind == queryEnd:
		s.closeTrx(end)
	case kind == queryBegin:
		s.open.begun = true
	case s.open.mysqlGTID && !s.open.begun:
		s.closeTrx(end)
	}
}

// startTrx opens t. A transaction still open here never got its end: the
// server does not interleave transactions in a binlog, so it was abandoned
// and cannot be applied.
func (s *scanner) startTrx(t *openTrx) {
	s.sawTrx = true
	if s.open != nil && s.open.start >= s.from {
		s.problem = fmt.Sprintf("transaction starting at %d has no end before the next one at %d; skipped", s.open.start, t.start)
	}
	s.open = t
}

// closeTrx records the open transaction as complete, ending at end, when it
// started at or after from.
func (s *scanner) closeTrx(end int64) {
	t := s.open
	s.open = nil
	if t.start < s.from {
		return
	}
	s.res.Transactions = append(s.res.Transactions, Trx{GTID: t.gtid, File: s.name, Start: t.start, End: end, Events: t.events})
	s.res.CompleteEnd = end
}
