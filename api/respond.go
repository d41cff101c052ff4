package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/quorumha/quorumha/consensus"
	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/internal/httpjson"
	"github.com/quorumha/quorumha/recovery"
)

// Errors returned by handlers; statusFor maps each to its HTTP status.
var (
	// ErrBadRequest is a malformed request: bad JSON, a missing field, a bad parameter.
	ErrBadRequest = errors.New("bad request")
	// ErrNotFound is an unknown record, cluster or peer.
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized is a request without a bearer token where one is
	// required (every write once a token is configured; reads too once a
	// read token is).
	ErrUnauthorized = errors.New("missing bearer token")
	// ErrForbidden is a request with a token that does not grant it: an
	// unknown token, or the read token on a write.
	ErrForbidden = errors.New("invalid bearer token")
	// ErrLeadershipChanged is a forwarded write that reached a node that is no
	// longer (or not yet) the leader; it is never forwarded again.
	ErrLeadershipChanged = errors.New("leadership changed")
	// ErrNoMaster means the cluster has no known (healthy) master.
	ErrNoMaster = errors.New("no master known")
	// ErrNoLeaderContact means this controller has not heard from the raft
	// leader recently enough to name a master (api.leader_contact_window).
	ErrNoLeaderContact = errors.New("no recent leader contact")
	// ErrNotImplemented marks endpoints reserved for a later release.
	ErrNotImplemented = errors.New("not implemented")
	// ErrForward is a failure to reach the leader while forwarding a write.
	ErrForward = errors.New("forwarding to leader failed")
	// ErrOutcomeUnknown means leadership was lost while a command was in
	// flight: it may or may not commit, so it is not retried automatically.
	ErrOutcomeUnknown = errors.New("outcome unknown: leadership lost while applying, check before retrying")
	// ErrNotMember means this controller is not in the raft configuration.
	ErrNotMember = errors.New("not a member of the raft group")
)

// ErrorResponse is the JSON body of every error answer (shared with the
// host agent through httpjson).
type ErrorResponse = httpjson.ErrorResponse

// statusFor maps an error to its HTTP status. It is the only place where
// errors become statuses.
func statusFor(err error) int {
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrBadRequest), errors.Is(err, fsm.ErrInvalid), errors.Is(err, consensus.ErrInvalidConfig),
		errors.Is(err, recovery.ErrTargetUnknown), errors.Is(err, recovery.ErrTargetIneligible):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, ErrForbidden), errors.Is(err, ErrCrossOrigin):
		return http.StatusForbidden
	case errors.Is(err, ErrUnsupportedMediaType):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, ErrNotFound), errors.Is(err, fsm.ErrNoSuchRecord), errors.Is(err, consensus.ErrUnknownPeer),
		errors.Is(err, recovery.ErrUnknownCluster), errors.Is(err, fsm.ErrNoSuchCluster), errors.Is(err, fsm.ErrNoSuchInstance):
		return http.StatusNotFound
	case errors.Is(err, fsm.ErrRecordOpen), errors.Is(err, fsm.ErrRecordClosed), errors.Is(err, fsm.ErrStepNotRunning),
		errors.Is(err, fsm.ErrNotAwaitingFence), errors.Is(err, fsm.ErrFenceSettled),
		errors.Is(err, fsm.ErrClusterExists), errors.Is(err, fsm.ErrInstanceExists),
		errors.Is(err, fsm.ErrRemoveMaster), errors.Is(err, fsm.ErrTopologyLocked):
		return http.StatusConflict
	// The cluster's state forbids a failover now, whatever the request
	// says: the master is alive (switchover is the tool), one is already
	// running, or no replica (or no single most advanced one) may be
	// promoted. 409, not 422: the same request may succeed once the state
	// changes, and the body says what to change.
	case errors.Is(err, recovery.ErrMasterAlive), errors.Is(err, recovery.ErrFailoverInProgress),
		errors.Is(err, recovery.ErrNoCandidate), errors.Is(err, recovery.ErrDivergedPositions),
		errors.Is(err, recovery.ErrSwitchoverRefused), errors.Is(err, recovery.ErrRejoinRefused):
		return http.StatusConflict
	case errors.Is(err, ErrNotImplemented):
		return http.StatusNotImplemented
	case errors.Is(err, ErrLeadershipChanged), errors.Is(err, ErrNoMaster), errors.Is(err, ErrNoLeaderContact), errors.Is(err, ErrNotMember),
		errors.Is(err, ErrNotPrimary), errors.Is(err, ErrNotReplica), errors.Is(err, ErrOutcomeUnknown),
		errors.Is(err, consensus.ErrNotLeader), errors.Is(err, consensus.ErrNoLeader), errors.Is(err, consensus.ErrOutcomeUnknown),
		errors.Is(err, consensus.ErrShutdown), errors.Is(err, recovery.ErrRunnerStopped), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrForward):
		return http.StatusBadGateway
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	default:
		return http.StatusInternalServerError
	}
}

// handlerFunc is a thin handler: it parses the request, reads or writes, and
// returns the value to encode or an error.
type handlerFunc func(w http.ResponseWriter, r *http.Request) (any, error)

// writeFunc handles a mutating request whose body has already been read.
type writeFunc func(r *http.Request, body []byte) (any, error)

// rawResponse is a response relayed verbatim (a forwarded write's answer).
type rawResponse struct {
	status int
	header http.Header
	body   []byte
}

// wrap turns a handlerFunc into an http.Handler: it encodes the result as
// JSON, maps errors to statuses, records the request metric and logs.
func (s *Server) wrap(route string, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		v, err := h(w, r)
		code := http.StatusOK
		switch {
		case err != nil:
			code = statusFor(err)
			if code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="quorumha"`)
			}
			if errors.Is(err, ErrLeadershipChanged) {
				// Tells a forwarding follower that nothing was applied and
				// it may retry with the new leader.
				w.Header().Set(retryHeader, "leadership-changed")
			}
			writeJSON(w, code, ErrorResponse{Error: err.Error(), Code: code})
		default:
			if ws, ok := v.(withStatus); ok {
				code, v = ws.code, ws.v
			}
			if raw, ok := v.(*rawResponse); ok {
				code = raw.status
				for k, vs := range raw.header {
					w.Header()[k] = vs
				}
				w.WriteHeader(code)
				_, _ = w.Write(raw.body) // the client went away; nothing to do
				break
			}
			writeJSON(w, code, v)
		}
		elapsed := time.Since(start)
		s.metrics.observeRequest(route, code, elapsed)
		level := slog.LevelDebug
		switch {
		case code >= 500:
			level = slog.LevelWarn
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			level = slog.LevelInfo
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", code), slog.Duration("duration", elapsed),
			slog.String("remote", r.RemoteAddr),
		}
		if name := r.PathValue("name"); name != "" {
			attrs = append(attrs, slog.String("cluster", name))
		}
		if id := r.PathValue("id"); id != "" && strings.HasPrefix(route, "GET /v1/history/") {
			attrs = append(attrs, slog.String("record", id))
		}
		if by := r.Header.Get(ForwardedHeader); by != "" {
			attrs = append(attrs, slog.String("forwarded_by", by))
		}
		if err != nil {
			attrs = append(attrs, slog.String("error", err.Error()))
		}
		s.log.LogAttrs(r.Context(), level, "http request", attrs...)
	})
}

// writeJSON encodes v with the given status.
func writeJSON(w http.ResponseWriter, code int, v any) { httpjson.Write(w, code, v) }

// write wraps a mutating handler: it checks the token, reads the (limited)
// body, and either applies locally on the leader or forwards to the leader.
func (s *Server) write(h writeFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) (any, error) {
		if err := s.checkOrigin(r); err != nil {
			return nil, err
		}
		if err := s.authorize(r, accessWrite); err != nil {
			return nil, err
		}
		body, err := readBody(w, r, s.cfg.MaxBodyBytes)
		if err != nil {
			return nil, err
		}
		if err := checkContentType(r, body); err != nil {
			return nil, err
		}
		forwardedBy := r.Header.Get(ForwardedHeader)
		if !s.raft.IsLeader() {
			if forwardedBy != "" {
				return nil, fmt.Errorf("%w: %s forwarded this write but %s is not the leader", ErrLeadershipChanged, forwardedBy, s.cfg.NodeID)
			}
			return s.forward(r, body, func() (any, error) { return h(r, body) })
		}
		v, err := h(r, body)
		if errors.Is(err, consensus.ErrOutcomeUnknown) {
			// The entry reached the log but may or may not commit: retrying
			// elsewhere could apply it twice, so the client must check.
			return nil, fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
		}
		if errors.Is(err, consensus.ErrNotLeader) {
			// Lost leadership between the check and the apply: nothing was
			// applied, so the write may go to the new leader.
			if forwardedBy != "" {
				return nil, fmt.Errorf("%w: %w", ErrLeadershipChanged, err)
			}
			return s.forward(r, body, nil)
		}
		return v, err
	}
}

// readBody reads the whole body, at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	return body, nil
}

// decodeStrict decodes one JSON object into v, refusing unknown fields and
// trailing data. An empty body leaves v unchanged when allowEmpty is set.
func decodeStrict(body []byte, v any, allowEmpty bool) error {
	if len(bytes.TrimSpace(body)) == 0 {
		if allowEmpty {
			return nil
		}
		return fmt.Errorf("%w: empty body, expected a JSON object", ErrBadRequest)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: invalid JSON body: %w", ErrBadRequest, err)
	}
	if err := dec.Decode(&json.RawMessage{}); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: invalid JSON body: trailing data after the object", ErrBadRequest)
	}
	return nil
}
