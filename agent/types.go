// Package agent is the binlog salvage agent: a small read-only HTTP daemon
// that runs on each database host and lets the controller fetch, during a
// failover, the transactions only the dead master's binary log holds. It is
// MHA's save_binary_logs without SSH: the controller never gets a shell on a
// database host, only these read-only endpoints over the binlog directory.
//
// The package holds the three parts of the contract: a minimal binlog v4
// reader (ScanBinlog), the HTTP server (Server) and its Go client (Client).
package agent

import "errors"

// FileInfo is one binlog file listed by the index.
type FileInfo struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// FileList is the answer of GET /v1/binlogs: the binlog directory and its
// files in the order of the binlog index (oldest first).
type FileList struct {
	Dir   string     `json:"dir"`
	Files []FileInfo `json:"files"`
}

// Trx is one complete transaction in a binlog file: the bytes [Start, End)
// of File are its events, from its GTID event (or BEGIN query when it has no
// GTID) to just after the event that ends it.
type Trx struct {
	// GTID is "domain-server-seq" (MariaDB) or "uuid:gno" (MySQL); "" for a
	// transaction without one (anonymous GTID, or file/position setups).
	GTID   string `json:"gtid,omitempty"`
	File   string `json:"file"`
	Start  int64  `json:"start"`
	End    int64  `json:"end"`
	Events int    `json:"events"`
}

// FileScan is what one binlog file holds from an offset on.
type FileScan struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	// HeaderEnd is the offset just after the FORMAT_DESCRIPTION_EVENT: bytes
	// [0,HeaderEnd) make a valid file header for mariadb-binlog, to which
	// the bytes of chosen transactions can be appended.
	HeaderEnd int64 `json:"header_end"`
	// GTIDList is the MariaDB Gtid_list at the start of the file
	// ("0-1-100,1-2-5"), "" when there is none or it is empty.
	GTIDList string `json:"gtid_list,omitempty"`
	// Transactions are the complete transactions whose Start >= from, in
	// file order.
	Transactions []Trx `json:"transactions"`
	// CompleteEnd is the offset after the last complete transaction, or
	// from (HeaderEnd for from 0) when there is none.
	CompleteEnd int64 `json:"complete_end"`
	// IncompleteBytes counts the bytes after CompleteEnd that start a
	// transaction or event that is not complete: a truncated event, an
	// event whose checksum fails, or a transaction without its end. They
	// run to the end of the file. Complete events outside any transaction
	// after CompleteEnd (Binlog_checkpoint, Rotate, Stop) are not counted.
	IncompleteBytes int64 `json:"incomplete_bytes"`
	// Omitted counts the complete transactions left out of Transactions
	// because the asker's position (missing_for) already has them.
	Omitted int `json:"omitted,omitempty"`
}

// Tail is where the newest binlog file ends: the end of its last complete
// transaction and that transaction's GTID.
type Tail struct {
	File string `json:"file"`
	// Pos is the CompleteEnd of the newest file.
	Pos int64 `json:"pos"`
	// GTID is the GTID of the last complete transaction of the newest
	// file; "" when that file holds none (just rotated) or it has none.
	GTID            string `json:"gtid,omitempty"`
	IncompleteBytes int64  `json:"incomplete_bytes"`
	// ServerRunning is set only when the agent knows the server's pid file
	// (agent.pid_file): whether a mysqld/mariadbd process with that pid is
	// alive. A server that is still running may still be writing.
	ServerRunning *bool `json:"server_running,omitempty"`
}

// Sentinel errors. The server maps each to one HTTP status (see statusOf);
// the client's *APIError carries the status back.
var (
	// ErrNotFound means a binlog name that is not in the index or not in
	// the binlog directory (404).
	ErrNotFound = errors.New("not found")
	// ErrBadRequest means a malformed request: a name with a path in it, a
	// bad offset (400).
	ErrBadRequest = errors.New("bad request")
	// ErrRange means a byte range outside the file (416).
	ErrRange = errors.New("range not satisfiable")
	// ErrUnauthorized means a missing or wrong bearer token (401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrFormat means a file that is not a binlog v4 file this reader
	// understands: bad magic, no format description, encrypted (422).
	ErrFormat = errors.New("not a readable binlog v4 file")
	// ErrConflict means a request the agent's configuration cannot serve:
	// fencing without an agent.fence section (409).
	ErrConflict = errors.New("conflict")
	// ErrMediaType means a request body that is not application/json (415).
	ErrMediaType = errors.New("unsupported media type")
)
