package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/quorumha/quorumha/fsm"
)

// Write endpoints run on the leader only (the write wrapper forwards them
// there). Every time in a command is taken from this server's clock when the
// request is handled; the FSM never reads a clock.

// JoinRequest is the body of POST /v1/raft/join.
type JoinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
}

// AckRequest is the body of POST /v1/clusters/{name}/ack (may be empty).
type AckRequest struct {
	By      string `json:"by"`
	Comment string `json:"comment"`
}

// MaintenanceRequest is the body of POST /v1/clusters/{name}/maintenance:
// exactly one of Until (RFC 3339) and Duration (Go syntax, e.g. "30m").
type MaintenanceRequest struct {
	Until    string `json:"until,omitempty"`
	Duration string `json:"duration,omitempty"`
	Reason   string `json:"reason,omitempty"`
	By       string `json:"by,omitempty"`
}

// defaultActor names the operator when a request does not.
const defaultActor = "api"

// apply encodes and commits one command, recording its latency.
func (s *Server) apply(ctx context.Context, t fsm.MessageType, payload any) (any, error) {
	buf, err := fsm.Encode(t, payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", t, err)
	}
	start := time.Now()
	resp, err := s.raft.Apply(ctx, buf)
	s.metrics.observeApply(t.String(), err, time.Since(start))
	if err != nil {
		return nil, fmt.Errorf("apply %s: %w", t, err)
	}
	return resp, nil
}

func (s *Server) join(r *http.Request, body []byte) (any, error) {
	var req JoinRequest
	if err := decodeStrict(body, &req, false); err != nil {
		return nil, err
	}
	req.ID, req.RaftAddr = strings.TrimSpace(req.ID), strings.TrimSpace(req.RaftAddr)
	if req.ID == "" || req.RaftAddr == "" {
		return nil, fmt.Errorf("%w: id and raft_addr are required", ErrBadRequest)
	}
	if err := checkJoin(req.ID, req.RaftAddr); err != nil {
		return nil, err
	}
	if err := s.raft.Join(r.Context(), req.ID, req.RaftAddr); err != nil {
		return nil, fmt.Errorf("join %s at %s: %w", req.ID, req.RaftAddr, err)
	}
	return req, nil
}

func (s *Server) removePeer(r *http.Request, _ []byte) (any, error) {
	id := r.PathValue("id")
	if err := s.raft.Remove(r.Context(), id); err != nil {
		return nil, fmt.Errorf("remove peer %s: %w", id, err)
	}
	return map[string]string{"removed": id}, nil
}

// clusterFor returns the path's cluster name, or ErrNotFound.
func (s *Server) clusterFor(r *http.Request) (string, error) {
	name := r.PathValue("name")
	if !s.knownCluster(name) {
		return "", fmt.Errorf("cluster %q: %w", name, ErrNotFound)
	}
	return name, nil
}

func (s *Server) ack(r *http.Request, body []byte) (any, error) {
	name, err := s.clusterFor(r)
	if err != nil {
		return nil, err
	}
	var req AckRequest
	if err := decodeStrict(body, &req, true); err != nil {
		return nil, err
	}
	cmd := fsm.Ack{Cluster: name, By: req.By, At: s.now().UTC(), Comment: req.Comment}
	if cmd.By == "" {
		cmd.By = defaultActor
	}
	if _, err := s.apply(r.Context(), fsm.AckType, cmd); err != nil {
		return nil, err
	}
	return cmd, nil
}

// parseMaintenance turns a request into the window's end, relative to now.
func parseMaintenance(req MaintenanceRequest, now time.Time) (time.Time, error) {
	switch {
	case req.Until != "" && req.Duration != "":
		return time.Time{}, fmt.Errorf("%w: give either until or duration, not both", ErrBadRequest)
	case req.Until != "":
		until, err := time.Parse(time.RFC3339, req.Until)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: until must be RFC 3339: %w", ErrBadRequest, err)
		}
		if !until.After(now) {
			return time.Time{}, fmt.Errorf("%w: until %s is not in the future", ErrBadRequest, req.Until)
		}
		if until.Sub(now) > MaxMaintenance {
			return time.Time{}, fmt.Errorf("%w: until %s is more than %s ahead; maintenance windows are bounded, extend one before it ends",
				ErrBadRequest, req.Until, MaxMaintenance)
		}
		return until.UTC(), nil
	case req.Duration != "":
		d, err := time.ParseDuration(req.Duration)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: duration: %w", ErrBadRequest, err)
		}
		if d <= 0 {
			return time.Time{}, fmt.Errorf("%w: duration must be positive, got %s", ErrBadRequest, req.Duration)
		}
		if d > MaxMaintenance {
			return time.Time{}, fmt.Errorf("%w: duration %s is longer than %s; maintenance windows are bounded, extend one before it ends",
				ErrBadRequest, req.Duration, MaxMaintenance)
		}
		return now.Add(d).UTC(), nil
	default:
		return time.Time{}, fmt.Errorf("%w: until or duration is required", ErrBadRequest)
	}
}

func (s *Server) maintenanceStart(r *http.Request, body []byte) (any, error) {
	name, err := s.clusterFor(r)
	if err != nil {
		return nil, err
	}
	var req MaintenanceRequest
	if err := decodeStrict(body, &req, false); err != nil {
		return nil, err
	}
	until, err := parseMaintenance(req, s.now())
	if err != nil {
		return nil, err
	}
	cmd := fsm.Maintenance{Cluster: name, Until: until, Reason: req.Reason, By: req.By}
	if cmd.By == "" {
		cmd.By = defaultActor
	}
	if _, err := s.apply(r.Context(), fsm.MaintenanceType, cmd); err != nil {
		return nil, err
	}
	return cmd, nil
}

func (s *Server) maintenanceEnd(r *http.Request, _ []byte) (any, error) {
	name, err := s.clusterFor(r)
	if err != nil {
		return nil, err
	}
	cmd := fsm.Maintenance{Cluster: name, By: defaultActor}
	if _, err := s.apply(r.Context(), fsm.MaintenanceType, cmd); err != nil {
		return nil, err
	}
	return cmd, nil
}

// notImplemented answers the recovery endpoints until the recovery package
// provides them. It still checks the token so clients see auth errors first.
func (s *Server) notImplemented(what string) handlerFunc {
	return func(_ http.ResponseWriter, r *http.Request) (any, error) {
		if err := s.authorize(r, accessWrite); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s of cluster %q through the API is not available yet (it comes with the recovery package)",
			ErrNotImplemented, what, r.PathValue("name"))
	}
}
