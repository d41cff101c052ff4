package main

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/quorumha/quorumha/api"
	"github.com/quorumha/quorumha/config"
	"github.com/quorumha/quorumha/controller"
)

// stateCheckTimeout bounds check-config's question to the running controller.
const stateCheckTimeout = 3 * time.Second

// checkAgainstState compares the file's clusters with the replicated
// topology, read from the controller at the file's node.http_addr (or
// addr when set). The state wins at run time; the differences say what
// this file would not change. A controller that does not answer leaves a
// note, not a problem: a first deployment has no state yet.
func checkAgainstState(ctx context.Context, cfg *config.Config, addr string) (diff []string, note string) {
	scheme := "http://"
	if cfg.API.TLSCert != "" {
		scheme = "https://"
	}
	o := &clientOptions{addr: cmp.Or(addr, scheme+cfg.Node.HTTPAddr), token: cmp.Or(cfg.API.ReadToken.Reveal(), cfg.API.Token.Reveal()),
		ca: cfg.API.TLSCA, timeout: stateCheckTimeout}
	c, err := o.client()
	if err != nil {
		return nil, fmt.Sprintf("replicated state not compared: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, stateCheckTimeout)
	defer cancel()
	var r api.TopologyResponse
	if err := c.do(ctx, http.MethodGet, "/v1/topology", nil, &r); err != nil {
		return nil, fmt.Sprintf("replicated state not compared (no controller answered at %s): %v", o.addr, err)
	}
	return controller.DiffTopology(cfg.Clusters, r.Clusters, r.Removed), ""
}
