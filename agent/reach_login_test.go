package agent

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// fullGreeting is a protocol-10 greeting with both halves of the capability
// flags, as MariaDB 10.11 sends it (plugin auth included when plugin).
func fullGreeting(protocol41, plugin bool) []byte {
	p := append([]byte{10}, "5.5.5-10.11.6-MariaDB\x00"...)
	p = append(p, 1, 0, 0, 0)            // connection id
	p = append(p, []byte("saltsalt")...) // auth data part 1
	p = append(p, 0)                     // filler
	low := uint16(capLongPassword | capSecureConnection)
	if protocol41 {
		low |= capProtocol41
	}
	p = binary.LittleEndian.AppendUint16(p, low)
	p = append(p, 33, 2, 0) // charset, status
	var high uint16
	if plugin {
		high = capPluginAuth >> 16
	}
	p = binary.LittleEndian.AppendUint16(p, high)
	p = append(p, 21)                    // auth data length
	p = append(p, make([]byte, 10)...)   // reserved
	p = append(p, "saltsaltsalt\x00"...) // auth data part 2
	p = append(p, "mysql_native_password\x00"...)
	return p
}

// scriptedServer answers the handshake response on the server end of a
// pipe with replies, one per client packet, and records what it got.
func scriptedServer(t *testing.T, replies ...[]byte) (net.Conn, <-chan [][]byte) {
	t.Helper()
	client, server := net.Pipe()
	got := make(chan [][]byte, 1)
	go func() {
		defer server.Close()
		var pkts [][]byte
		defer func() { got <- pkts }()
		_ = server.SetDeadline(time.Now().Add(5 * time.Second))
		for _, r := range replies {
			p, seq, err := readClientPacket(server)
			if err != nil {
				return
			}
			pkts = append(pkts, append([]byte{seq}, p...))
			if _, err := server.Write(r); err != nil {
				return
			}
		}
		// The client's last word (COM_QUIT after an OK), if any.
		if p, seq, err := readClientPacket(server); err == nil {
			pkts = append(pkts, append([]byte{seq}, p...))
		}
	}()
	t.Cleanup(func() { client.Close() })
	return client, got
}

// readClientPacket reads a packet as a server does: an empty one (the auth
// switch response of an empty password) included.
func readClientPacket(r io.Reader) ([]byte, byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, 0, err
	}
	buf := make([]byte, int(hdr[0])|int(hdr[1])<<8|int(hdr[2])<<16)
	_, err := io.ReadFull(r, buf)
	return buf, hdr[3], err
}

func TestFinishLogin(t *testing.T) {
	okPkt := packet(2, []byte{0x00, 0, 0, 2, 0, 0, 0})
	denied := packet(2, append([]byte{0xff, 0x15, 0x04, '#', '2', '8', '0', '0', '0'}, "Access denied for user 'quorumha_reach'@'10.0.0.2' (using password: NO)"...))
	switchReq := packet(2, append([]byte{0xfe}, "mysql_native_password\x00saltsaltsaltsaltsalt\x00"...))
	deniedAfterSwitch := packet(4, denied[4:])
	tests := []struct {
		name     string
		greet    []byte
		replies  [][]byte
		want     string // Login's prefix
		wantErr  string
		wantPkts int  // packets the server received
		wantQuit bool // the last one is COM_QUIT
		wantSeqs []byte
	}{
		{"denied", fullGreeting(true, true), [][]byte{denied}, LoginDenied + ": error 1045: Access denied", "", 1, false, []byte{1}},
		{"ok then quit", fullGreeting(true, true), [][]byte{okPkt}, LoginOK, "", 2, true, []byte{1, 0}},
		{"auth switch then denied", fullGreeting(true, true), [][]byte{switchReq, deniedAfterSwitch}, LoginDenied + ": error 1045", "", 2, false, []byte{1, 3}},
		{"no protocol 41", fullGreeting(false, true), nil, LoginSkipped, "", 0, false, nil},
		{"short greeting", mariaGreeting()[4:], nil, LoginSkipped, "", 0, false, nil},
		{"more data", fullGreeting(true, true), [][]byte{packet(2, []byte{0x01, 0x04})}, "", "unexpected packet 0x01", 1, false, []byte{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, got := scriptedServer(t, tc.replies...)
			login, err := finishLogin(conn, tc.greet, DefaultReachUser)
			conn.Close()
			pkts := <-got
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("finishLogin = %q, %v; want an error with %q", login, err, tc.wantErr)
				}
			} else if err != nil || !strings.HasPrefix(login, tc.want) {
				t.Fatalf("finishLogin = %q, %v; want %q…", login, err, tc.want)
			}
			if len(pkts) != tc.wantPkts {
				t.Fatalf("server got %d packets, want %d: %q", len(pkts), tc.wantPkts, pkts)
			}
			for i, p := range pkts {
				if p[0] != tc.wantSeqs[i] {
					t.Errorf("packet %d has sequence %d, want %d", i, p[0], tc.wantSeqs[i])
				}
			}
			if tc.wantQuit && !bytes.Equal(pkts[len(pkts)-1][1:], []byte{0x01}) {
				t.Errorf("last packet %q is not COM_QUIT", pkts[len(pkts)-1])
			}
			if tc.wantPkts > 0 && !bytes.Contains(pkts[0], []byte("\x00"+DefaultReachUser+"\x00\x00")) {
				t.Errorf("handshake response %q does not name %s with an empty password", pkts[0], DefaultReachUser)
			}
		})
	}
}

func TestHandshakeResponse(t *testing.T) {
	for _, plugin := range []bool{true, false} {
		caps, ok := serverCaps(fullGreeting(true, plugin))
		if !ok || caps&capProtocol41 == 0 || (caps&capPluginAuth != 0) != plugin {
			t.Fatalf("serverCaps(plugin=%t) = %#x, %t", plugin, caps, ok)
		}
		p := handshakeResponse("u", caps)
		flags := binary.LittleEndian.Uint32(p)
		if flags&capProtocol41 == 0 || flags&capSecureConnection == 0 || (flags&capPluginAuth != 0) != plugin {
			t.Errorf("plugin=%t: flags %#x", plugin, flags)
		}
		rest := p[4+4+1+23:]
		want := "u\x00\x00"
		if plugin {
			want += "mysql_native_password\x00"
		}
		if string(rest) != want {
			t.Errorf("plugin=%t: after the fixed part %q, want %q", plugin, rest, want)
		}
	}
}
