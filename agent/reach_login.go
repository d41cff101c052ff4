package agent

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// DefaultReachUser is the account name the reachability check logs in as
// when agent.reach_user is not set. It needs no grants and need not exist.
const DefaultReachUser = "quorumha_reach"

// Why the check logs in at all: a connection that reads the greeting and
// hangs up is an interrupted handshake. With name resolution on (MariaDB's
// and MySQL's default, skip_name_resolve=OFF) the server counts it against
// the client host, and after max_connect_errors of them (default 100)
// without a successful login from that host it refuses the host outright:
// "Host '…' is blocked because of many connection errors" (1129), the
// replica's own IO thread included when it reconnects. The detector asks
// every replica host's agent on every probe round while the controllers
// cannot reach the master, so a single 12 s episode sends about 70 checks
// from each replica host. A completed authentication exchange, even one the
// server denies, is not a connection error (checked on MariaDB 10.11 by
// reach_login_live_test.go), so the check finishes it: HAProxy's
// mysql-check with a user does the same for the same reason.

// Client capability flags of the handshake response (protocol 41).
const (
	capLongPassword     = 0x00000001 // also CLIENT_MYSQL: MariaDB reads no extended flags
	capProtocol41       = 0x00000200
	capSecureConnection = 0x00008000
	capPluginAuth       = 0x00080000
)

// Login outcomes in Reach.Login.
const (
	// LoginOK: the account exists without a password: logged in, quit.
	LoginOK = "ok"
	// LoginDenied is the prefix of a refusal (1045 for an account that
	// does not exist, which is fine).
	LoginDenied = "denied"
	// LoginSkipped: the server does not speak protocol 41; the check hung
	// up after the greeting as before.
	LoginSkipped = "skipped"
)

// serverCaps reads the capability flags from a protocol-10 greeting's
// payload (after the version string: connection id 4, salt 8, filler 1,
// flags low 2, charset 1, status 2, flags high 2). A short greeting has no
// high half.
func serverCaps(p []byte) (uint32, bool) {
	i := 1
	for i < len(p) && p[i] != 0 {
		i++
	}
	low := i + 1 + 4 + 8 + 1
	if len(p) < low+2 {
		return 0, false
	}
	caps := uint32(binary.LittleEndian.Uint16(p[low:]))
	if hi := low + 2 + 1 + 2; len(p) >= hi+2 {
		caps |= uint32(binary.LittleEndian.Uint16(p[hi:])) << 16
	}
	return caps, true
}

// handshakeResponse is the protocol-41 login packet's payload for user
// with an empty password.
func handshakeResponse(user string, caps uint32) []byte {
	flags := uint32(capLongPassword | capProtocol41 | capSecureConnection)
	if caps&capPluginAuth != 0 {
		flags |= capPluginAuth
	}
	p := binary.LittleEndian.AppendUint32(nil, flags)
	p = binary.LittleEndian.AppendUint32(p, 1<<24) // max packet size
	p = append(p, 33)                              // utf8_general_ci
	p = append(p, make([]byte, 23)...)
	p = append(p, user...)
	p = append(p, 0, 0) // NUL after the name; auth response of length 0
	if flags&capPluginAuth != 0 {
		p = append(p, "mysql_native_password\x00"...)
	}
	return p
}

// finishLogin completes the authentication exchange on rw after the
// greeting (payload greet, sequence 0): it logs in as user with no
// password, answers an authentication switch with an empty response, and
// on success sends COM_QUIT. It returns the outcome for Reach.Login.
func finishLogin(rw io.ReadWriter, greet []byte, user string) (string, error) {
	caps, ok := serverCaps(greet)
	if !ok || caps&capProtocol41 == 0 || caps&capSecureConnection == 0 {
		return LoginSkipped, nil
	}
	seq := byte(1)
	if err := writePacket(rw, seq, handshakeResponse(user, caps)); err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	for range maxAuthRounds {
		p, s, err := readPacketSeq(rw)
		if err != nil {
			return "", fmt.Errorf("login: %w", err)
		}
		seq = s + 1
		switch p[0] {
		case 0x00:
			// Logged in: say goodbye so the server logs no aborted
			// connection either.
			_ = writePacket(rw, 0, []byte{0x01})
			return LoginOK, nil
		case 0xff:
			g, err := parseGreeting(p)
			if err != nil {
				return "", fmt.Errorf("login: %w", err)
			}
			return LoginDenied + ": " + strings.TrimPrefix(g.errMsg, "server answered "), nil
		case 0xfe:
			// Authentication switch (a plugin other than the one we
			// named): the empty password's response is empty.
			if err := writePacket(rw, seq, nil); err != nil {
				return "", fmt.Errorf("login: %w", err)
			}
		default:
			// More data (caching_sha2_password on MySQL 8): not needed for
			// an answer; hang up.
			return "", fmt.Errorf("login: unexpected packet 0x%02x after the handshake response", p[0])
		}
	}
	return "", fmt.Errorf("login: no OK or error after %d authentication rounds", maxAuthRounds)
}

// maxAuthRounds bounds the packets finishLogin reads: the answer to the
// login, and to at most two authentication switches.
const maxAuthRounds = 3

// writePacket writes one MySQL packet.
func writePacket(w io.Writer, seq byte, payload []byte) error {
	n := len(payload)
	_, err := w.Write(append([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}, payload...))
	return err
}
