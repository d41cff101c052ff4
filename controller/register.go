package controller

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/quorumha/quorumha/api"
	"github.com/quorumha/quorumha/config"
	"github.com/quorumha/quorumha/fsm"
)

// registerEvery is how often a controller checks that the replicated state
// holds its verdict key and HTTP address, and asks the leader to record
// them when not (first start, a new key, a leader that restored an older
// snapshot).
const registerEvery = 2 * time.Second

// registerSelf publishes this controller's verdict key, HTTP address and
// zone through the leader, with the API write token, until the replicated
// state holds them; then it keeps checking. It goes through this
// controller's own API handler, which applies the command on the leader and
// forwards it there on a follower, so registration shares the API's
// authentication and forwarding. It returns when ctx ends.
func registerSelf(ctx context.Context, cfg *config.Config, state *fsm.FSM, key ed25519.PublicKey, h http.Handler, logger *slog.Logger) {
	want := api.NodeKeyRequest{ID: cfg.Node.ID, PublicKey: key, HTTPAddr: advertisedHTTP(cfg), Zone: cfg.Node.Zone}
	body, err := json.Marshal(want)
	if err != nil {
		logger.Error("encode registration", "err", err)
		return
	}
	t := time.NewTicker(registerEvery)
	defer t.Stop()
	warned := false
	for {
		if !registered(state, want) {
			req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/raft/register", bytes.NewReader(body))
			req.Host = cfg.Node.HTTPAddr
			req.RemoteAddr = "in-process:0"
			req.Header.Set("Content-Type", "application/json")
			if tok := cfg.API.Token.Reveal(); tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			switch {
			case rec.Code == http.StatusOK:
				logger.Info("registered verdict key and HTTP address with the leader", "http_addr", want.HTTPAddr)
				warned = false
			case !warned && ctx.Err() == nil:
				// No leader yet, or this controller is not a voter yet:
				// normal at start, so say it once.
				logger.Info("registration with the leader pending", "status", rec.Code, "answer", rec.Body.String())
				warned = true
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// registered reports whether the replicated state holds want.
func registered(state *fsm.FSM, want api.NodeKeyRequest) bool {
	k, ok := state.NodeKey(want.ID)
	// bytes.Equal, not k.Equal: ed25519.PublicKey.Equal type-asserts its
	// argument to ed25519.PublicKey, and want.PublicKey is a plain []byte,
	// so it would never match and every controller would re-register (two
	// raft writes) every registerEvery for ever.
	if !ok || !bytes.Equal(k, want.PublicKey) {
		return false
	}
	m, ok := state.Node(want.ID)
	return ok && m.HTTPAddr == want.HTTPAddr && m.Zone == want.Zone
}
