package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Reach stages: how far a reachability check got.
const (
	// ReachStageConnect: the TCP connection could not be opened.
	ReachStageConnect = "connect"
	// ReachStageGreeting: connected, but no MySQL greeting (or error
	// packet) came back in time, or what came is not MySQL.
	ReachStageGreeting = "greeting"
	// ReachStageOK: the server spoke MySQL: a protocol-10 greeting, or an
	// error packet (too many connections, host blocked), which only a
	// running server sends.
	ReachStageOK = "ok"
)

// Bounds of GET /v1/reach's timeout: below 50ms a healthy server across a
// zone may not answer; above 5s the asking controller has moved on anyway.
const (
	MinReachTimeout     = 50 * time.Millisecond
	MaxReachTimeout     = 5 * time.Second
	DefaultReachTimeout = time.Second
)

// Reach answers GET /v1/reach: can this agent's host reach a MySQL server
// at Addr (TCP connect and the server's initial handshake)? The check then
// finishes a login the server normally denies (reach_login.go says why).
type Reach struct {
	Addr      string `json:"addr"`
	Reachable bool   `json:"reachable"`
	// Stage is how far the check got: connect, greeting or ok.
	Stage string `json:"stage"`
	// Error says why the check stopped short, or the error packet the
	// server answered with (Reachable is still true then).
	Error string `json:"error,omitempty"`
	// ServerVersion is the greeting's version string.
	ServerVersion string `json:"server_version,omitempty"`
	// ErrorCode is the error packet's number when the server sent one.
	ErrorCode int `json:"error_code,omitempty"`
	// Login is how the authentication exchange that follows the greeting
	// ended: "ok", "denied: error 1045: …" (the usual answer: the account
	// need not exist), "skipped" (no protocol 41) or "error: …". It is not
	// part of the verdict; finishing the exchange keeps the checks from
	// counting against the server's max_connect_errors (reach_login.go).
	Login string `json:"login,omitempty"`
	// ElapsedMillis is how long the check took.
	ElapsedMillis int64 `json:"elapsed_ms"`
}

// ServerProcess answers GET /v1/server: whether the database server process
// named by the agent's pid file runs.
type ServerProcess struct {
	// Known is false when the agent has no pid file configured: it cannot
	// tell, and Running means nothing.
	Known   bool `json:"known"`
	Running bool `json:"running"`
	// PID is the pid file's process id (0 when there is no pid file).
	PID int `json:"pid,omitempty"`
	// Since is when this agent first saw the current Running state (its
	// wall clock; the agent's start when it has not changed since).
	Since time.Time `json:"since,omitzero"`
	// Error is why the pid file could not be read (Known is true, the
	// state is then unknown: Running false but not a proof).
	Error string `json:"error,omitempty"`
}

// reachParams parses and bounds GET /v1/reach's query.
func reachParams(r *http.Request) (string, time.Duration, error) {
	q := r.URL.Query()
	addr := q.Get("addr")
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return "", 0, fmt.Errorf("%w: addr=%q is not host:port", ErrBadRequest, addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("%w: addr=%q: port %q is not 1-65535", ErrBadRequest, addr, port)
	}
	timeout := DefaultReachTimeout
	if v := q.Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < MinReachTimeout || d > MaxReachTimeout {
			return "", 0, fmt.Errorf("%w: timeout=%q: want a duration from %s to %s", ErrBadRequest, v, MinReachTimeout, MaxReachTimeout)
		}
		timeout = d
	}
	return addr, timeout, nil
}

// reach answers GET /v1/reach?addr=HOST:PORT&timeout=D.
func (s *Server) reach(_ http.ResponseWriter, r *http.Request) (any, error) {
	addr, timeout, err := reachParams(r)
	if err != nil {
		return nil, err
	}
	return checkReach(r.Context(), &net.Dialer{}, addr, timeout, s.cfg.ReachUser), nil
}

// checkReach connects to addr and reads the server's first packet, all
// within timeout; the greeting decides. It then finishes the login as user
// with no password (finishLogin), which the server normally denies: an
// exchange cut short after the greeting would count against the client
// host's max_connect_errors and end with the host blocked.
func checkReach(ctx context.Context, d *net.Dialer, addr string, timeout time.Duration, user string) Reach {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := Reach{Addr: addr, Stage: ReachStageConnect}
	done := func() Reach {
		out.ElapsedMillis = time.Since(start).Milliseconds()
		return out
	}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		out.Error = err.Error()
		return done()
	}
	defer conn.Close()
	out.Stage = ReachStageGreeting
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetReadDeadline(dl) // a conn that cannot take a deadline still ends with ctx below
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	payload, err := readPacket(conn)
	if err != nil {
		out.Error = "no greeting: " + err.Error()
		return done()
	}
	g, err := parseGreeting(payload)
	if err != nil {
		out.Error = err.Error()
		return done()
	}
	out.Stage, out.Reachable = ReachStageOK, true
	out.ServerVersion, out.ErrorCode, out.Error = g.version, g.errCode, g.errMsg
	if g.errCode == 0 {
		login, err := finishLogin(conn, payload, user)
		if err != nil {
			login = "error: " + err.Error()
		}
		out.Login = login
	}
	return done()
}

// maxGreeting bounds the first packet: a real greeting is under 200 bytes.
const maxGreeting = 16 << 10

// readPacket reads one MySQL packet: 3-byte little-endian length, sequence
// number, payload.
func readPacket(r io.Reader) ([]byte, error) {
	p, _, err := readPacketSeq(r)
	return p, err
}

// readPacketSeq is readPacket with the packet's sequence number.
func readPacketSeq(r io.Reader) ([]byte, byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, 0, err
	}
	n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
	if n == 0 || n > maxGreeting {
		return nil, 0, fmt.Errorf("packet of %d bytes is not a MySQL server's", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, 0, err
	}
	return buf, hdr[3], nil
}

type greeting struct {
	version string
	errCode int
	errMsg  string
}

// errNotMySQL means the first packet is neither a protocol-10 greeting nor
// an error packet.
var errNotMySQL = errors.New("not a MySQL server greeting")

// parseGreeting decodes the first packet a MySQL or MariaDB server sends:
// protocol version 10 and a NUL-terminated version string, or an error
// packet (0xff, 2-byte code, message) when the server refuses the
// connection before the handshake (1040 too many connections, 1129 host
// blocked). Both prove a running server.
func parseGreeting(p []byte) (greeting, error) {
	switch {
	case len(p) >= 3 && p[0] == 0xff:
		code := int(binary.LittleEndian.Uint16(p[1:3]))
		msg := p[3:]
		if len(msg) > 6 && msg[0] == '#' {
			msg = msg[6:] // SQL state marker and state, when present
		}
		return greeting{errCode: code, errMsg: fmt.Sprintf("server answered error %d: %s", code, msg)}, nil
	case len(p) >= 2 && p[0] == 10:
		for i := 1; i < len(p); i++ {
			if p[i] == 0 {
				if i == 1 {
					break
				}
				return greeting{version: string(p[1:i])}, nil
			}
		}
		return greeting{}, fmt.Errorf("%w: protocol 10 without a version string", errNotMySQL)
	case len(p) == 0:
		return greeting{}, fmt.Errorf("%w: empty packet", errNotMySQL)
	default:
		return greeting{}, fmt.Errorf("%w: first byte 0x%02x", errNotMySQL, p[0])
	}
}

// processWatch remembers since when the server process has been in its
// current state, so GET /v1/server can say how long it has been gone.
type processWatch struct {
	mu      sync.Mutex
	seen    bool
	running bool
	pid     int
	since   time.Time
}

// observe folds one reading into the watch and returns the state's start.
func (w *processWatch) observe(running bool, pid int, now time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.seen || w.running != running || w.pid != pid {
		w.seen, w.running, w.pid, w.since = true, running, pid, now
	}
	return w.since
}

// server answers GET /v1/server: a pid file read and a kill(pid, 0), cheap
// enough for every controller to ask on every failed probe.
func (s *Server) server(http.ResponseWriter, *http.Request) (any, error) {
	if s.cfg.PIDFile == "" {
		return ServerProcess{}, nil
	}
	pid, running, err := serverProcess(s.cfg.PIDFile)
	out := ServerProcess{Known: true, Running: running, PID: pid}
	if err != nil {
		out.Running, out.Error = false, err.Error()
		return out, nil
	}
	out.Since = s.proc.observe(running, pid, time.Now())
	return out, nil
}
