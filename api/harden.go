package api

import (
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Upper bounds of operator-supplied durations: a window or a wait far in the
// future is a typo or an attack (a year-9999 maintenance window switches
// automatic failover off for good), never an intent.
const (
	// MaxMaintenance bounds a maintenance window.
	MaxMaintenance = 7 * 24 * time.Hour
	// MaxSwitchoverTimeout bounds a switchover's catch-up wait.
	MaxSwitchoverTimeout = 10 * time.Minute
	// MaxSwitchoverGrace bounds how long a switchover lets transactions finish.
	MaxSwitchoverGrace = 10 * time.Minute
)

var (
	// ErrUnsupportedMediaType is a write whose body is not application/json
	// (a browser form, which needs no CORS preflight, is the attack).
	ErrUnsupportedMediaType = errors.New("unsupported media type")
	// ErrCrossOrigin is a write from a web page of another origin, or to a
	// host name this controller does not answer to (DNS rebinding), while
	// no token protects the API.
	ErrCrossOrigin = errors.New("cross-origin write refused")
)

// checkContentType requires application/json on every write that carries a
// body or announces one. A write with neither body nor Content-Type is
// allowed (the CLI's DELETE and empty POSTs): browsers cannot send one
// cross-site without an Origin header, which checkOrigin covers.
func checkContentType(r *http.Request, body []byte) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		if len(body) == 0 {
			return nil
		}
		return fmt.Errorf("%w: a request body needs Content-Type: application/json", ErrUnsupportedMediaType)
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return fmt.Errorf("%w: Content-Type %q, want application/json", ErrUnsupportedMediaType, ct)
	}
	return nil
}

// checkOrigin protects a controller that runs without a token (loopback
// only, or insecure_no_token) from browsers: a page of another origin may
// POST to it (CSRF), and a page whose DNS name rebinds to 127.0.0.1 sends
// its own name as Host. A write is refused when its Origin is not this
// controller's own origin, or when its Host is a name that is neither an IP
// literal, localhost, nor the host of node.http_addr. With a token set the
// check is moot: a browser cannot add the Authorization header cross-site.
func (s *Server) checkOrigin(r *http.Request) error {
	if s.cfg.Token != "" {
		return nil
	}
	if !s.knownHost(r.Host) {
		return fmt.Errorf("%w: Host %q is not this controller's address", ErrCrossOrigin, r.Host)
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil // not a browser (curl, the CLI, a forwarding follower)
	}
	u, err := url.Parse(origin)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if err != nil || u.Scheme != scheme || !strings.EqualFold(u.Host, r.Host) {
		return fmt.Errorf("%w: Origin %q is not %s://%s", ErrCrossOrigin, origin, scheme, r.Host)
	}
	return nil
}

// knownHost reports whether a request's Host names this controller: an IP
// literal, localhost, or the host of the advertised HTTP address.
func (s *Server) knownHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "" || net.ParseIP(host) != nil || strings.EqualFold(host, "localhost") {
		return true
	}
	adv := s.cfg.HTTPAddr
	if i := strings.Index(adv, "://"); i >= 0 {
		adv = adv[i+3:]
	}
	if h, _, err := net.SplitHostPort(adv); err == nil {
		return strings.EqualFold(h, host)
	}
	return false
}

// maxIDLen bounds a controller ID: it names files, metrics and log lines.
const maxIDLen = 64

// validID is the form of a controller (raft server) ID.
var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// checkJoin validates a join request: an ID of letters, digits, '.', '_'
// and '-', and a raft address host:port with a numeric port and a host that
// is an IP literal or a DNS name, so a typo cannot enter the configuration
// (where it would count as a voter nobody can reach).
func checkJoin(id, raftAddr string) error {
	if len(id) > maxIDLen || !validID.MatchString(id) {
		return fmt.Errorf("%w: id %q must be 1-%d letters, digits, '.', '_' or '-'", ErrBadRequest, id, maxIDLen)
	}
	host, port, err := net.SplitHostPort(raftAddr)
	if err != nil {
		return fmt.Errorf("%w: raft_addr %q must be host:port: %w", ErrBadRequest, raftAddr, err)
	}
	if n, perr := strconv.ParseUint(port, 10, 16); perr != nil || n == 0 {
		return fmt.Errorf("%w: raft_addr %q: port %q is not a number in 1-65535", ErrBadRequest, raftAddr, port)
	}
	if net.ParseIP(host) == nil && !validHostname(host) {
		return fmt.Errorf("%w: raft_addr %q: host %q is neither an IP address nor a DNS name", ErrBadRequest, raftAddr, host)
	}
	return nil
}

// validHostname reports whether h is a syntactically valid DNS name.
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
