package agent

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/quorumha/quorumha/internal/httpjson"
	"github.com/quorumha/quorumha/topology"
)

// ErrorResponse is the JSON body of every error answer (shared with the
// controller API through httpjson).
type ErrorResponse = httpjson.ErrorResponse

// statusOf maps an error to its HTTP status; it is the only place where
// errors become statuses.
func statusOf(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, ErrBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrRange):
		return http.StatusRequestedRangeNotSatisfiable
	case errors.Is(err, ErrFormat):
		return http.StatusUnprocessableEntity
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrMediaType):
		return http.StatusUnsupportedMediaType
	default:
		return http.StatusInternalServerError
	}
}

// handlerFunc parses a request and returns the value to encode as JSON, or
// an error. A handler that wrote the response itself (raw) returns nil, nil.
type handlerFunc func(w http.ResponseWriter, r *http.Request) (any, error)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n") // the client went away; nothing to do
	}))
	v1 := func(pattern string, h handlerFunc) { mux.Handle(pattern, s.wrap(s.authorized(h))) }
	v1("GET /v1/binlogs", s.files)
	v1("GET /v1/binlogs/{name}/scan", s.scan)
	v1("GET /v1/binlogs/{name}/raw", s.raw)
	v1("GET /v1/tail", s.tail)
	v1("POST /v1/lease", s.lease)
	v1("GET /v1/fence", s.fenceStatus)
	v1("POST /v1/fence", s.fenceRequest)
	v1("POST /v1/fence/clear", s.fenceClear)
	v1("GET /v1/reach", s.reach)
	v1("GET /v1/server", s.server)
	// Anything else under /v1 answers a JSON 404 rather than the mux's text.
	v1("/v1/", func(http.ResponseWriter, *http.Request) (any, error) {
		return nil, fmt.Errorf("%w: no such endpoint", ErrNotFound)
	})
	return mux
}

// authorized checks the bearer token when one is configured. Mutual TLS,
// when configured, was checked by the listener before any handler runs.
func (s *Server) authorized(h handlerFunc) handlerFunc {
	if s.cfg.Token == "" {
		return h
	}
	// Hashing both sides makes the comparison constant-time in the length
	// of the token too.
	want := sha256.Sum256([]byte(s.cfg.Token))
	return func(w http.ResponseWriter, r *http.Request) (any, error) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			return nil, fmt.Errorf("%w: missing bearer token", ErrUnauthorized)
		}
		got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			return nil, fmt.Errorf("%w: invalid bearer token", ErrUnauthorized)
		}
		return h(w, r)
	}
}

// wrap encodes the result as JSON, maps errors to statuses and logs.
func (s *Server) wrap(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		v, err := h(w, r)
		code := statusOf(err)
		switch {
		case err != nil:
			if code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="quorumha-agent"`)
			}
			writeJSON(w, code, ErrorResponse{Error: err.Error(), Code: code})
		case v != nil:
			writeJSON(w, code, v)
		}
		level := slog.LevelDebug
		switch {
		case code >= 500:
			level = slog.LevelWarn
		case code >= 400:
			level = slog.LevelInfo
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("query", r.URL.RawQuery),
			slog.Int("status", code), slog.Duration("duration", time.Since(start)), slog.String("remote", r.RemoteAddr),
		}
		if err != nil {
			attrs = append(attrs, slog.String("error", err.Error()))
		}
		s.log.LogAttrs(r.Context(), level, "http request", attrs...)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) { httpjson.Write(w, code, v) }

// files answers GET /v1/binlogs.
func (s *Server) files(http.ResponseWriter, *http.Request) (any, error) {
	files, err := s.dir.list()
	if err != nil {
		return nil, err
	}
	return FileList{Dir: s.dir.dir, Files: files}, nil
}

// scan answers GET /v1/binlogs/{name}/scan?from=N[&missing_for=POS].
// missing_for, a MariaDB GTID position (what the asking server has), keeps
// only the transactions that position lacks: a busy 1 GiB binlog holds
// millions of transactions, of which a failover wants the last few.
func (s *Server) scan(_ http.ResponseWriter, r *http.Request) (any, error) {
	name := r.PathValue("name")
	from, err := offsetParam(r, "from", 0)
	if err != nil {
		return nil, err
	}
	var have topology.MariaDBPos
	if v := r.URL.Query().Get("missing_for"); v != "" {
		if have, err = topology.ParseMariaDBPos(v); err != nil {
			return nil, fmt.Errorf("%w: missing_for=%q: %v", ErrBadRequest, v, err)
		}
	}
	res, err := s.scanFile(name, from)
	if err != nil || have == nil {
		return res, err
	}
	res.Transactions, res.Omitted = missingFor(res.Transactions, have)
	return res, nil
}

// missingFor keeps the transactions whose MariaDB GTID have does not
// include (sequence numbers grow within a domain); one without a MariaDB
// GTID is kept, the asker decides.
func missingFor(trxs []Trx, have topology.MariaDBPos) ([]Trx, int) {
	out := trxs[:0:0]
	for _, t := range trxs {
		if g, err := topology.ParseMariaDBPos(t.GTID); err == nil && len(g) == 1 {
			if h, ok := have.Domain(g[0].Domain); ok && h.Seq >= g[0].Seq {
				continue
			}
		}
		out = append(out, t)
	}
	return out, len(trxs) - len(out)
}

func (s *Server) scanFile(name string, from int64) (FileScan, error) {
	f, err := s.dir.openListed(name)
	if err != nil {
		return FileScan{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return FileScan{}, fmt.Errorf("binlog %s: %w", name, err)
	}
	res, problem, err := scanBinlog(f, name, st.Size(), from)
	if err != nil {
		return FileScan{}, err
	}
	if problem != "" {
		s.log.Info("binlog has bytes that make no complete transaction", "file", name, "from", from,
			"incomplete_bytes", res.IncompleteBytes, "why", problem)
	}
	return res, nil
}

// raw answers GET /v1/binlogs/{name}/raw?from=A&to=B with exactly the bytes
// [A,B) of the file; B defaults to its size when the request arrives.
func (s *Server) raw(w http.ResponseWriter, r *http.Request) (any, error) {
	name := r.PathValue("name")
	from, err := offsetParam(r, "from", 0)
	if err != nil {
		return nil, err
	}
	to, err := offsetParam(r, "to", -1)
	if err != nil {
		return nil, err
	}
	f, err := s.dir.openListed(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("binlog %s: %w", name, err)
	}
	size := st.Size()
	if to < 0 {
		to = size
	}
	switch {
	case from > size || to > size:
		return nil, fmt.Errorf("%w: [%d,%d) is past the end of %s (%d bytes)", ErrRange, from, to, name, size)
	case from > to:
		return nil, fmt.Errorf("%w: from=%d is after to=%d", ErrBadRequest, from, to)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(to-from, 10))
	w.WriteHeader(http.StatusOK)
	n, err := io.Copy(w, io.NewSectionReader(f, from, to-from))
	if err != nil {
		// The status is sent; the client sees a short body against
		// Content-Length. Log it, as nothing else can be said.
		s.log.Warn("raw binlog copy cut short", "file", name, "from", from, "to", to, "sent", n, "err", err)
	}
	return nil, nil
}

// tail answers GET /v1/tail from the newest binlog file.
func (s *Server) tail(http.ResponseWriter, *http.Request) (any, error) {
	name, err := s.dir.newest()
	if err != nil {
		return nil, err
	}
	res, err := s.scanFile(name, 0)
	if err != nil {
		return nil, err
	}
	t := Tail{File: name, Pos: res.CompleteEnd, IncompleteBytes: res.IncompleteBytes}
	if n := len(res.Transactions); n > 0 {
		t.GTID = res.Transactions[n-1].GTID
	}
	if s.cfg.PIDFile != "" {
		running, err := serverRunning(s.cfg.PIDFile)
		if err != nil {
			return nil, err
		}
		t.ServerRunning = &running
	}
	return t, nil
}

// offsetParam reads a non-negative integer query parameter, def when absent.
func offsetParam(r *http.Request, key string, def int64) (int64, error) {
	v := r.URL.Query().Get(key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: %s=%q is not a non-negative integer offset", ErrBadRequest, key, v)
	}
	return n, nil
}
