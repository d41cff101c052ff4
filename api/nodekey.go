package api

import (
	"crypto/ed25519"
	"fmt"
	"net/http"
	"strings"

	"github.com/quorumha/quorumha/fsm"
)

// NodeKeyRequest is the body of POST /v1/raft/register: a controller
// publishes the public key it signs its gossiped verdicts with, and the
// HTTP address and zone operators' tools and forwarding followers use. Each
// controller sends its own, with the API write token, at start; the leader
// records them for a current raft voter only. (Addresses advertised over
// gossip are never recorded: anyone who speaks gossip could advertise one
// and collect the operators' tokens.)
type NodeKeyRequest struct {
	ID        string `json:"id"`
	PublicKey []byte `json:"public_key"` // base64 in JSON, 32 bytes
	HTTPAddr  string `json:"http_addr,omitempty"`
	Zone      string `json:"zone,omitempty"`
}

// nodeKey records a voter's verdict key. Only a raft voter may have one: a
// key for anyone else would let a non-member's verdicts count.
func (s *Server) nodeKey(r *http.Request, body []byte) (any, error) {
	var req NodeKeyRequest
	if err := decodeStrict(body, &req, false); err != nil {
		return nil, err
	}
	req.ID = strings.TrimSpace(req.ID)
	if len(req.PublicKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: public_key must be an ed25519 public key of %d bytes, got %d", ErrBadRequest, ed25519.PublicKeySize, len(req.PublicKey))
	}
	if req.HTTPAddr != "" {
		if err := checkHTTPAddr(req.HTTPAddr); err != nil {
			return nil, err
		}
	}
	if !s.isVoter(req.ID) {
		return nil, fmt.Errorf("%w: %q is not a raft voter", ErrBadRequest, req.ID)
	}
	if _, err := s.apply(r.Context(), fsm.NodeKeyType, fsm.NodeKey{ID: req.ID, PublicKey: req.PublicKey}); err != nil {
		return nil, err
	}
	if req.HTTPAddr != "" {
		meta := fsm.NodeMeta{ID: req.ID, HTTPAddr: req.HTTPAddr, Zone: req.Zone}
		if cur, ok := s.state.Node(req.ID); !ok || cur != meta {
			if _, err := s.apply(r.Context(), fsm.NodeMetaType, meta); err != nil {
				return nil, err
			}
		}
	}
	return map[string]string{"recorded": req.ID}, nil
}

// isVoter reports whether id is a voter of the raft configuration.
func (s *Server) isVoter(id string) bool {
	for _, p := range s.raft.Status().Peers {
		if p.ID == id && p.Suffrage == "voter" {
			return true
		}
	}
	return false
}

// checkHTTPAddr accepts host:port or http(s)://host:port.
func checkHTTPAddr(addr string) error {
	hostport := addr
	if scheme, rest, ok := strings.Cut(addr, "://"); ok {
		if scheme != "http" && scheme != "https" {
			return fmt.Errorf("%w: http_addr %q: scheme must be http or https", ErrBadRequest, addr)
		}
		hostport = rest
	}
	if err := checkHostPort(hostport); err != nil {
		return fmt.Errorf("%w: http_addr %q", err, addr)
	}
	return nil
}
