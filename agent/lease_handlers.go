package agent

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
)

// maxLeaseBody bounds the JSON bodies of the lease and fence endpoints.
const maxLeaseBody = 64 << 10

// decodeJSON reads a JSON body into v: application/json only (415
// otherwise), bounded, one value. Unknown fields are allowed: a newer
// controller may send more.
func decodeJSON(r *http.Request, v any) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return fmt.Errorf("%w: Content-Type %q: want application/json", ErrMediaType, ct)
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxLeaseBody))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: body: %v", ErrBadRequest, err)
	}
	return nil
}

// lease answers POST /v1/lease: one controller's renewal. Without an
// agent.fence section it is accepted and answered, never enforced.
func (s *Server) lease(_ http.ResponseWriter, r *http.Request) (any, error) {
	var req LeaseRequest
	if err := decodeJSON(r, &req); err != nil {
		return nil, err
	}
	if err := validateLease(req); err != nil {
		return nil, err
	}
	if s.fence == nil {
		return LeaseResponse{Enforced: false, State: FenceDisabled}, nil
	}
	// A renewal whose client already gave up (its connection closed) is not
	// counted: the controller recorded that attempt's end as the latest
	// moment a grant could have arrived, and a late one would outlive it.
	if err := r.Context().Err(); err != nil {
		return nil, fmt.Errorf("%w: renewal abandoned by the client: %v", ErrBadRequest, err)
	}
	return s.fence.renew(req)
}

// fenceStatus answers GET /v1/fence.
func (s *Server) fenceStatus(http.ResponseWriter, *http.Request) (any, error) {
	if s.fence == nil {
		st := FenceStatus{Enforced: false, State: FenceDisabled}
		if s.cfg.PIDFile != "" {
			// Still worth knowing: a server that is not running takes no
			// writes, which the controllers' fence step accepts as a proof.
			if running, err := serverRunning(s.cfg.PIDFile); err == nil {
				st.ServerRunning = &running
			}
		}
		return st, nil
	}
	return s.fence.status(), nil
}

// fenceRequestBody reads and checks a FenceRequest.
func fenceRequestBody(r *http.Request) (FenceRequest, error) {
	var req FenceRequest
	if err := decodeJSON(r, &req); err != nil {
		return req, err
	}
	if err := validateController(req.Controller); err != nil {
		return req, err
	}
	if len(req.Reason) > 1024 {
		return req, fmt.Errorf("%w: reason: longer than 1024 bytes", ErrBadRequest)
	}
	return req, nil
}

// fenceRequest answers POST /v1/fence: fence now, and say how it went.
func (s *Server) fenceRequest(_ http.ResponseWriter, r *http.Request) (any, error) {
	req, err := fenceRequestBody(r)
	if err != nil {
		return nil, err
	}
	if s.fence == nil {
		return nil, fmt.Errorf("%w: this agent has no agent.fence section: it cannot fence its server", ErrConflict)
	}
	return s.fence.fenceNow(r.Context(), req), nil
}

// fenceClear answers POST /v1/fence/clear.
func (s *Server) fenceClear(_ http.ResponseWriter, r *http.Request) (any, error) {
	req, err := fenceRequestBody(r)
	if err != nil {
		return nil, err
	}
	if s.fence == nil {
		return nil, fmt.Errorf("%w: this agent has no agent.fence section: nothing to clear", ErrConflict)
	}
	return s.fence.clear(r.Context(), req)
}
