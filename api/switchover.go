package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/quorumha/quorumha/recovery"
)

// Switchover is what the switchover endpoint needs from the recovery
// runner. Like Recovery, it runs on the leader and returns
// consensus.ErrNotLeader (having changed nothing) elsewhere.
type Switchover interface {
	// Switchover checks the preconditions and plans (DryRun) or starts a
	// planned switchover of a live master; a started one returns once its
	// record is open.
	Switchover(ctx context.Context, req recovery.SwitchoverRequest) (recovery.SwitchoverResult, error)
}

// SwitchoverRequest is the body of POST /v1/clusters/{name}/switchover (may
// be empty).
type SwitchoverRequest struct {
	// To is the replica to promote (host:port as configured); "" lets the
	// selection rules choose among the healthy replicas.
	To string `json:"to,omitempty"`
	// Timeout bounds the wait for the target to apply the old master's
	// final position, as a Go duration ("30s"); "" is the default.
	Timeout string `json:"timeout,omitempty"`
	// Grace is how long open transactions on the old master may finish
	// before their sessions are killed ("2s"); "" is the default, "0s"
	// kills at once.
	Grace string `json:"grace,omitempty"`
	// DryRun only checks the preconditions and names the target.
	DryRun bool `json:"dry_run,omitempty"`
	// By names the operator; it is written into the record.
	By string `json:"by,omitempty"`
}

// SwitchoverResponse is the answer: 202 with the record id once started
// (follow it at GET /v1/history/{record_id}), 200 for a dry run.
type SwitchoverResponse struct {
	Cluster   string        `json:"cluster"`
	RecordID  uint64        `json:"record_id,omitempty"`
	DryRun    bool          `json:"dry_run"`
	OldMaster string        `json:"old_master,omitempty"`
	Target    string        `json:"target,omitempty"`
	Message   string        `json:"message"`
	Plan      *FailoverPlan `json:"plan,omitempty"`
}

// switchover hands a planned switchover to the leader's runner.
func (s *Server) switchover(r *http.Request, body []byte) (any, error) {
	if s.sw == nil {
		return s.notImplemented("switchover")(nil, r)
	}
	name, err := s.clusterFor(r)
	if err != nil {
		return nil, err
	}
	var req SwitchoverRequest
	if err := decodeStrict(body, &req, true); err != nil {
		return nil, err
	}
	req.To, req.By = strings.TrimSpace(req.To), strings.TrimSpace(req.By)
	if req.To != "" {
		if err := checkHostPort(req.To); err != nil {
			return nil, err
		}
	}
	timeout, err := optDuration("timeout", req.Timeout)
	if err != nil {
		return nil, err
	}
	grace, err := optDuration("grace", req.Grace)
	if err != nil {
		return nil, err
	}
	if timeout > MaxSwitchoverTimeout {
		return nil, fmt.Errorf("%w: timeout %s is longer than the %s allowed", ErrBadRequest, req.Timeout, MaxSwitchoverTimeout)
	}
	if grace > MaxSwitchoverGrace {
		return nil, fmt.Errorf("%w: grace %s is longer than the %s allowed", ErrBadRequest, req.Grace, MaxSwitchoverGrace)
	}
	if req.Grace != "" && grace == 0 {
		grace = -1 // explicit zero: kill at once
	}
	if req.By == "" {
		req.By = defaultActor
	}
	res, err := s.sw.Switchover(r.Context(), recovery.SwitchoverRequest{
		Cluster: name, To: req.To, Timeout: timeout, Grace: grace, DryRun: req.DryRun, By: req.By,
	})
	if err != nil {
		return nil, fmt.Errorf("switchover of cluster %q: %w", name, err)
	}
	resp := SwitchoverResponse{Cluster: name, RecordID: res.RecordID, DryRun: res.DryRun,
		OldMaster: res.OldMaster, Target: res.Target, Message: res.Message}
	if res.Selection != nil {
		resp.Plan = planOf(*res.Selection)
	}
	if res.DryRun {
		return resp, nil
	}
	return withStatus{code: http.StatusAccepted, v: resp}, nil
}

// optDuration parses an optional non-negative duration field.
func optDuration(field, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%w: %s must be a non-negative duration like 30s, got %q", ErrBadRequest, field, v)
	}
	return d, nil
}
