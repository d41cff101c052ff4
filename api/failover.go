package api

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/recovery"
)

// FailoverRequest is the body of POST /v1/clusters/{name}/failover (may be
// empty): a manual failover of a cluster whose master is dead.
type FailoverRequest struct {
	// To is the replica to promote (host:port as configured); "" lets the
	// selection rules choose, as an automatic failover would.
	To string `json:"to,omitempty"`
	// DryRun only plans: the answer says which replica would be promoted
	// and why each was taken or refused; nothing is changed or recorded.
	DryRun bool `json:"dry_run,omitempty"`
	// By names the operator; it is written into the failover record.
	By string `json:"by,omitempty"`
	// Force fails over a master that still answers or that the controllers
	// still assess alive; without it such a request gets 409.
	Force bool `json:"force,omitempty"`
	// Unfenced accepts the risk of promoting without a fence proof for the
	// cluster's failover that awaits one (recovery.fence: required): the
	// record names By as who accepted. Without a failover awaiting a
	// fence it is refused with 409 and changes nothing. To and DryRun do
	// not apply.
	Unfenced bool `json:"unfenced,omitempty"`
}

// FailoverResponse is the answer of POST /v1/clusters/{name}/failover: 202
// with the record's id once a failover has started (follow it at
// GET /v1/history/{record_id}), or 200 with the plan for a dry run.
type FailoverResponse struct {
	Cluster  string `json:"cluster"`
	RecordID uint64 `json:"record_id,omitempty"`
	DryRun   bool   `json:"dry_run"`
	Message  string `json:"message"`
	// Plan is the candidate selection, when the executor made one.
	Plan *FailoverPlan `json:"plan,omitempty"`
}

// FailoverPlan is a candidate selection as the API shows it.
type FailoverPlan struct {
	// Chosen is the replica to promote ("" when none may be).
	Chosen string `json:"chosen"`
	// MostAdvanced are the replicas holding the newest position.
	MostAdvanced []string `json:"most_advanced,omitempty"`
	// CatchUpFrom is the replica the chosen one catches up from first, ""
	// when it is already the most advanced.
	CatchUpFrom string `json:"catch_up_from,omitempty"`
	// Considered has every replica with the reason it was taken or refused.
	Considered []FailoverCandidate `json:"considered"`
}

// FailoverCandidate is one replica considered for promotion.
type FailoverCandidate struct {
	Address  string `json:"address"`
	Eligible bool   `json:"eligible"`
	Chosen   bool   `json:"chosen"`
	Reason   string `json:"reason"`
}

// withStatus carries a handler's value with a status other than 200.
type withStatus struct {
	code int
	v    any
}

// failover hands a manual failover to the recovery executor. It runs on the
// leader only (the write wrapper forwards it there); the executor refuses a
// live master (use switchover), a cluster with a failover already open and
// a --to that is not an eligible replica, each with its own status.
func (s *Server) failover(r *http.Request, body []byte) (any, error) {
	name, err := s.clusterFor(r)
	if err != nil {
		return nil, err
	}
	var req FailoverRequest
	if err := decodeStrict(body, &req, true); err != nil {
		return nil, err
	}
	req.To, req.By = strings.TrimSpace(req.To), strings.TrimSpace(req.By)
	if req.To != "" {
		if err := checkHostPort(req.To); err != nil {
			return nil, err
		}
	}
	if req.By == "" {
		req.By = defaultActor
	}
	if req.Unfenced {
		return s.acceptUnfenced(r, name, req)
	}
	if s.rec == nil {
		return nil, fmt.Errorf("%w: failover of cluster %q: this controller runs without a recovery executor",
			ErrNotImplemented, name)
	}
	res, err := s.rec.ManualFailover(r.Context(), recovery.ManualFailoverRequest{
		Cluster: name, To: req.To, DryRun: req.DryRun, By: req.By, Force: req.Force,
	})
	if err != nil {
		return nil, fmt.Errorf("failover of cluster %q: %w", name, err)
	}
	resp := FailoverResponse{Cluster: name, RecordID: res.RecordID, DryRun: res.DryRun, Message: res.Message}
	if res.Selection != nil {
		resp.Plan = planOf(*res.Selection)
	}
	if res.DryRun {
		return resp, nil
	}
	return withStatus{code: http.StatusAccepted, v: resp}, nil
}

// acceptUnfenced records the operator's acceptance of promoting without a
// fence proof for the cluster's failover awaiting one. The fence step sees
// it and goes on; the FSM refuses it (409) if the fence was proven in the
// meantime.
func (s *Server) acceptUnfenced(r *http.Request, name string, req FailoverRequest) (any, error) {
	if req.To != "" || req.DryRun {
		return nil, fmt.Errorf("%w: unfenced accepts the fence of the running failover; to and dry_run do not apply", ErrBadRequest)
	}
	var rec fsm.Record
	found := false
	for _, h := range s.state.History(name, 1) {
		rec, found = h, h.AwaitingFence()
	}
	if !found {
		return nil, fmt.Errorf("cluster %q: %w: nothing to accept, nothing changed", name, fsm.ErrNotAwaitingFence)
	}
	cmd := fsm.FenceUpdate{RecordID: rec.ID, At: s.now().UTC(), State: fsm.FenceAccepted, Proof: fsm.ProofOperator, By: req.By}
	if _, err := s.apply(r.Context(), fsm.FenceUpdateType, cmd); err != nil {
		return nil, fmt.Errorf("accept the unfenced failover of cluster %q (record %d): %w", name, rec.ID, err)
	}
	return FailoverResponse{Cluster: name, RecordID: rec.ID,
		Message: fmt.Sprintf("%s accepted promoting without a fence proof (%s); failover record %d goes on", req.By, rec.Fence.Reason, rec.ID)}, nil
}

// checkHostPort refuses a target that is not host:port with a numeric port.
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err == nil && host == "" {
		err = errors.New("empty host")
	}
	if err == nil {
		if n, perr := strconv.ParseUint(port, 10, 16); perr != nil || n == 0 {
			err = fmt.Errorf("port %q is not a number in 1-65535", port)
		}
	}
	if err != nil {
		return fmt.Errorf("%w: to must be host:port, got %q: %w", ErrBadRequest, addr, err)
	}
	return nil
}

// planOf converts the executor's selection into the API's form.
func planOf(sel recovery.Selection) *FailoverPlan {
	p := &FailoverPlan{
		Chosen:       sel.Chosen,
		MostAdvanced: sel.MostAdvanced,
		CatchUpFrom:  sel.CatchUpFrom,
		Considered:   make([]FailoverCandidate, 0, len(sel.Considered)),
	}
	for _, c := range sel.Considered {
		p.Considered = append(p.Considered, FailoverCandidate{
			Address: c.Address, Eligible: c.Eligible, Chosen: c.Chosen, Reason: c.Reason,
		})
	}
	return p
}
