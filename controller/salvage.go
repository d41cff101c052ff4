package controller

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/quorumha/quorumha/agent"
	"github.com/quorumha/quorumha/config"
	"github.com/quorumha/quorumha/recovery"
)

// fenceAgentDialer connects recovery's fence step and promotion to the
// fence targets' agents with each cluster's agent credentials.
func fenceAgentDialer(cfg *config.Config) recovery.FenceAgentDialer {
	creds := map[string]config.AgentClient{}
	for _, c := range cfg.Clusters {
		creds[c.Name] = c.Agent
	}
	return func(cluster, url string) (recovery.FenceAgent, error) {
		a, ok := creds[cluster]
		if !ok {
			return nil, fmt.Errorf("no cluster %q in the config", cluster)
		}
		c, err := agent.NewClient(url, agent.ClientOptions{Token: a.Token.Reveal(), CAFile: a.CAFile,
			CertFile: a.CertFile, KeyFile: a.KeyFile, Timeout: 5 * time.Second})
		if err != nil {
			return nil, err // not a nil *Client in a non-nil interface
		}
		return c, nil
	}
}

// agentDialer connects recovery's salvage step to the binlog agents with
// each cluster's agent credentials.
func agentDialer(cfg *config.Config) recovery.AgentDialer {
	creds := map[string]config.AgentClient{}
	for _, c := range cfg.Clusters {
		creds[c.Name] = c.Agent
	}
	timeout, connect := cfg.Recovery.SalvageTimeout, cfg.Recovery.SalvageConnectTimeout
	return func(cluster, url string) (recovery.BinlogAgent, error) {
		a, ok := creds[cluster]
		if !ok {
			return nil, fmt.Errorf("no cluster %q in the config", cluster)
		}
		c, err := agent.NewClient(url, agent.ClientOptions{Token: a.Token.Reveal(), CAFile: a.CAFile,
			CertFile: a.CertFile, KeyFile: a.KeyFile, Timeout: max(timeout, time.Second), ConnectTimeout: connect})
		if err != nil {
			return nil, err
		}
		return agentAdapter{c}, nil
	}
}

// agentAdapter converts the agent's wire types to recovery's.
type agentAdapter struct{ c *agent.Client }

func (a agentAdapter) Files(ctx context.Context) ([]recovery.BinlogFile, error) {
	fs, err := a.c.Files(ctx)
	out := make([]recovery.BinlogFile, 0, len(fs))
	for _, f := range fs {
		out = append(out, recovery.BinlogFile{Name: f.Name, Size: f.Size})
	}
	return out, err
}

func (a agentAdapter) Scan(ctx context.Context, name string, from int64, have string) (recovery.BinlogScan, error) {
	s, err := a.c.ScanMissing(ctx, name, from, have)
	out := recovery.BinlogScan{Name: s.Name, Size: s.Size, HeaderEnd: s.HeaderEnd, GTIDList: s.GTIDList,
		CompleteEnd: s.CompleteEnd, IncompleteBytes: s.IncompleteBytes}
	for _, t := range s.Transactions {
		out.Transactions = append(out.Transactions, recovery.BinlogTrx{GTID: t.GTID, File: t.File, Start: t.Start, End: t.End})
	}
	return out, err
}

func (a agentAdapter) Raw(ctx context.Context, name string, from, to int64, w io.Writer) (int64, error) {
	return a.c.Raw(ctx, name, from, to, w)
}

func (a agentAdapter) Tail(ctx context.Context) (recovery.BinlogTail, error) {
	t, err := a.c.Tail(ctx)
	return recovery.BinlogTail{File: t.File, Pos: t.Pos, GTID: t.GTID, ServerRunning: t.ServerRunning}, err
}
