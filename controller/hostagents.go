package controller

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/quorumha/quorumha/agent"
	"github.com/quorumha/quorumha/config"
	"github.com/quorumha/quorumha/detector"
)

// hostAgents lets the detector ask the agents on the database hosts: the
// master's whether its server process runs, the replicas' whether they
// reach the master. One client per cluster and agent is kept, so the calls
// ride kept-alive connections.
type hostAgents struct {
	creds map[string]config.AgentClient

	mu      sync.Mutex
	clients map[string]*agent.Client
}

// hostAgentsTimeout bounds a call that the caller's context does not bound
// more tightly (the detector always does).
const hostAgentsTimeout = 5 * time.Second

func newHostAgents(cfg *config.Config) *hostAgents {
	h := &hostAgents{creds: map[string]config.AgentClient{}, clients: map[string]*agent.Client{}}
	for _, c := range cfg.Clusters {
		h.creds[c.Name] = c.Agent
	}
	return h
}

// agentURLs maps each instance with an agent to its URL.
func agentURLs(c config.Cluster) map[string]string {
	out := map[string]string{}
	for _, in := range c.Instances {
		if in.Agent != "" {
			out[in.Address] = in.Agent
		}
	}
	return out
}

func (h *hostAgents) client(cluster, url string) (*agent.Client, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	key := cluster + "\x00" + url
	if c, ok := h.clients[key]; ok {
		return c, nil
	}
	a, ok := h.creds[cluster]
	if !ok {
		return nil, fmt.Errorf("no cluster %q in the config", cluster)
	}
	c, err := agent.NewClient(url, agent.ClientOptions{Token: a.Token.Reveal(), CAFile: a.CAFile,
		CertFile: a.CertFile, KeyFile: a.KeyFile, Timeout: hostAgentsTimeout})
	if err != nil {
		return nil, err
	}
	h.clients[key] = c
	return c, nil
}

// Reach implements detector.HostAgents.
func (h *hostAgents) Reach(ctx context.Context, cluster, url, addr string, timeout time.Duration) (detector.AgentReach, error) {
	c, err := h.client(cluster, url)
	if err != nil {
		return detector.AgentReach{}, err
	}
	r, err := c.Reach(ctx, addr, timeout)
	if err != nil {
		return detector.AgentReach{}, err
	}
	return detector.AgentReach{Reachable: r.Reachable, Stage: r.Stage, Error: r.Error, ElapsedMillis: r.ElapsedMillis}, nil
}

// ServerProcess implements detector.HostAgents.
func (h *hostAgents) ServerProcess(ctx context.Context, cluster, url string) (detector.HostProcess, error) {
	c, err := h.client(cluster, url)
	if err != nil {
		return detector.HostProcess{}, err
	}
	p, err := c.ServerProcess(ctx)
	if err != nil {
		return detector.HostProcess{}, err
	}
	return detector.HostProcess{Known: p.Known, Running: p.Running, PID: p.PID, Since: p.Since, Error: p.Error}, nil
}
