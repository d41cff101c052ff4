package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
)

// access is what a request asks to do, which decides the tokens it needs.
type access int

const (
	// accessOpen needs nothing: /healthz and /readyz, which load
	// balancers probe without credentials.
	accessOpen access = iota
	// accessRead is a GET under /v1/: open unless a read token is set,
	// then either token.
	accessRead
	// accessMetrics is /metrics: open unless MetricsAuth, then either
	// token.
	accessMetrics
	// accessWrite changes state: the write token only, once one is set.
	accessWrite
)

// authorize checks r's bearer token for the access it asks. The read token
// never grants a write: a stolen dashboard credential must not be able to
// fail a cluster over.
func (s *Server) authorize(r *http.Request, acc access) error {
	switch acc {
	case accessOpen:
		return nil
	case accessRead:
		if s.cfg.ReadToken == "" {
			return nil
		}
	case accessMetrics:
		if !s.cfg.MetricsAuth || (s.cfg.Token == "" && s.cfg.ReadToken == "") {
			return nil
		}
	case accessWrite:
		if s.cfg.Token == "" {
			return nil
		}
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return ErrUnauthorized
	}
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return fmt.Errorf("%w: Authorization must be \"Bearer <token>\"", ErrUnauthorized)
	}
	if tokenEqual(tok, s.cfg.Token) {
		return nil
	}
	if tokenEqual(tok, s.cfg.ReadToken) {
		if acc == accessWrite {
			return fmt.Errorf("%w: the read token does not authorise writes", ErrForbidden)
		}
		return nil
	}
	return ErrForbidden
}

// tokenEqual compares a presented token with a configured one in constant
// time; an unset token matches nothing. Hashing first makes the comparison
// constant-time in the length too.
func tokenEqual(got, want string) bool {
	if want == "" {
		return false
	}
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// guard wraps a read handler with the token check its access needs.
func (s *Server) guard(acc access, h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) (any, error) {
		if err := s.authorize(r, acc); err != nil {
			return nil, err
		}
		return h(w, r)
	}
}

// guardMetrics wraps the Prometheus handler, which is not a handlerFunc,
// answering a refused scrape the way wrap answers any error.
func (s *Server) guardMetrics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.authorize(r, accessMetrics); err != nil {
			code := statusFor(err)
			if code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="quorumha"`)
			}
			writeJSON(w, code, ErrorResponse{Error: err.Error(), Code: code})
			return
		}
		next.ServeHTTP(w, r)
	})
}
