package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/quorumha/quorumha/recovery"
)

// Rejoin is what the rejoin endpoint needs from the recovery runner. It runs
// on the leader and returns consensus.ErrNotLeader (having changed nothing)
// elsewhere.
type Rejoin interface {
	// Rejoin checks the preconditions and plans (DryRun) or starts the
	// rejoin of a former master as a replica; a started one returns once
	// its record is open.
	Rejoin(ctx context.Context, req recovery.RejoinRequest) (recovery.RejoinResult, error)
}

// RejoinRequest is the body of POST /v1/clusters/{name}/rejoin.
type RejoinRequest struct {
	// Instance is the former master to rejoin (host:port as configured).
	Instance string `json:"instance"`
	// Rewind saves and reverts the instance's errant transactions
	// (MariaDB, binlog_format=ROW) instead of refusing.
	Rewind bool `json:"rewind,omitempty"`
	// DryRun only checks and lists errant transactions.
	DryRun bool `json:"dry_run,omitempty"`
	// By names the operator; it is written into the record.
	By string `json:"by,omitempty"`
}

// RejoinResponse is the answer: 202 with the record id once started, 200 for
// a dry run. A refusal is a 409 error whose body names the errant GTIDs.
type RejoinResponse struct {
	Cluster  string   `json:"cluster"`
	RecordID uint64   `json:"record_id,omitempty"`
	DryRun   bool     `json:"dry_run"`
	Instance string   `json:"instance"`
	Master   string   `json:"master,omitempty"`
	Errant   []string `json:"errant,omitempty"`
	// ErrantGTIDs lists the errant transactions one by one (read from the
	// instance's binlog through its agent; absent without one).
	ErrantGTIDs []string `json:"errant_gtids,omitempty"`
	Rewind      bool     `json:"rewind,omitempty"`
	// MasterCoord is, in file/position mode, the master's binlog
	// coordinate ("file:pos") the instance replicates from.
	MasterCoord string `json:"master_coord,omitempty"`
	Message     string `json:"message"`
}

// rejoin hands a rejoin to the leader's runner.
func (s *Server) rejoin(r *http.Request, body []byte) (any, error) {
	if s.rj == nil {
		return s.notImplemented("rejoin")(nil, r)
	}
	name, err := s.clusterFor(r)
	if err != nil {
		return nil, err
	}
	var req RejoinRequest
	if err := decodeStrict(body, &req, false); err != nil {
		return nil, err
	}
	req.Instance, req.By = strings.TrimSpace(req.Instance), strings.TrimSpace(req.By)
	if req.Instance == "" {
		return nil, fmt.Errorf("%w: instance (host:port of the former master) is required", ErrBadRequest)
	}
	if err := checkHostPort(req.Instance); err != nil {
		return nil, err
	}
	if req.By == "" {
		req.By = defaultActor
	}
	res, err := s.rj.Rejoin(r.Context(), recovery.RejoinRequest{Cluster: name, Instance: req.Instance,
		Rewind: req.Rewind, DryRun: req.DryRun, By: req.By})
	if err != nil {
		return nil, fmt.Errorf("rejoin of %s to cluster %q: %w", req.Instance, name, err)
	}
	resp := RejoinResponse{Cluster: name, RecordID: res.RecordID, DryRun: res.DryRun, Instance: res.Instance,
		Master: res.Master, Errant: res.Errant, ErrantGTIDs: res.ErrantGTIDs, Rewind: res.Rewind, MasterCoord: res.MasterCoord, Message: res.Message}
	if res.DryRun {
		return resp, nil
	}
	return withStatus{code: http.StatusAccepted, v: resp}, nil
}
