package controller

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumha/quorumha/config"
	"github.com/quorumha/quorumha/consensus"
	"github.com/quorumha/quorumha/detector"
	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/topology"
)

// detection is the detector with the gossip and prober it owns.
type detection struct {
	det    *detector.Detector
	gossip *detector.Gossip // nil when node.gossip_addr is empty (single vantage point)
	prober *detector.Prober
	// signKey signs this controller's verdicts (nil without gossip); its
	// public half is published through the leader (registerSelf).
	signKey ed25519.PrivateKey
}

// createDetection builds the prober, joins gossip and builds the detector
// with, for each cluster, the master chosen by detector.InitialMaster.
// leaseGrant, when not nil, supplies this controller's lease grant that
// travels with its verdict of a master.
func createDetection(ctx context.Context, cfg *config.Config, topo *topoSource, state *fsm.FSM, node *consensus.Node,
	leaseGrant func(cluster, instance string) *detector.LeaseGrant, reg prometheus.Registerer, logger *slog.Logger) (*detection, error) {
	groupSize := voterCount(node)
	quorum, err := detector.ParseQuorum(cfg.Detector.Quorum)
	if err != nil {
		return nil, fmt.Errorf("detector.quorum: %w", err)
	}
	d := &detection{prober: detector.NewProber(detector.ProberConfig{Timeout: cfg.Detector.ProbeTimeout, Logger: logger.With("pkg", "detector")})}
	var specs []detector.ClusterSpec
	for _, rc := range topo.current().clusters {
		if rc.TLSErr != nil {
			return nil, rc.TLSErr
		}
		recorded := ""
		if cs, ok := state.Cluster(rc.Name); ok {
			recorded = cs.Master
		}
		master, why := detector.InitialMaster(ctx, instanceAddrs(rc), recorded, masterFinder(rc.Cluster, rc.TLS, cfg.Detector.ProbeTimeout, logger))
		logger.Info("watching master", "cluster", rc.Name, "master", master, "because", why, "topology", rc.Origin)
		specs = append(specs, clusterSpec(rc, master))
	}
	var exchange detector.VerdictExchange
	if cfg.Node.GossipAddr != "" {
		key, err := readGossipKey(cfg.Node.GossipKeyFile)
		if err != nil {
			d.prober.Close()
			return nil, err
		}
		signKey, err := detector.LoadOrCreateKey(cfg.Node.DataDir)
		if err != nil {
			d.prober.Close()
			return nil, fmt.Errorf("node.data_dir: %w", err)
		}
		d.signKey = signKey
		g, err := detector.NewGossip(detector.GossipConfig{
			NodeName: cfg.Node.ID, Zone: cfg.Node.Zone, HTTPAddr: advertisedHTTP(cfg), BindAddr: cfg.Node.GossipAddr,
			Join: cfg.Node.GossipJoin, SecretKey: key, Profile: cfg.Node.RaftProfile,
			SigningKey: signKey, Trust: voterKeys(node, state), KnownInstance: topo.knownInstance,
			Logger: logger.With("pkg", "gossip"),
		})
		if err != nil {
			d.prober.Close()
			return nil, fmt.Errorf("gossip on node.gossip_addr %s: %w", cfg.Node.GossipAddr, err)
		}
		d.gossip, exchange = g, g
	}
	d.det, err = detector.New(detector.Config{
		Controller: cfg.Node.ID, Zone: cfg.Node.Zone,
		ProbeInterval: cfg.Detector.ProbeInterval, ProbeTimeout: cfg.Detector.ProbeTimeout,
		FailureThreshold: cfg.Detector.FailureThreshold,
		Rules: detector.Rules{Quorum: quorum, ReplicaCheck: cfg.Detector.ReplicaCheck,
			Freshness: cfg.Detector.FreshnessWindow, MultiZone: true},
		Clusters: specs, GroupSize: groupSize, Logger: logger.With("pkg", "detector"), Registerer: reg,
		LeaseGrant: leaseGrant,
		Agents:     newHostAgents(cfg),
	}, d.prober, exchange)
	if err != nil {
		d.close(context.Background())
		return nil, fmt.Errorf("detector: %w", err)
	}
	return d, nil
}

func (d *detection) close(ctx context.Context) {
	if d.gossip != nil {
		_ = d.gossip.Shutdown(ctx) // leaves first, and logs when that fails
	}
	d.prober.Close()
}

// masterFinder discovers a cluster's topology with short timeouts and names
// its master only when there is exactly one writable master.
func masterFinder(c config.Cluster, dbTLS *tls.Config, timeout time.Duration, logger *slog.Logger) detector.MasterFinder {
	cred := topology.Credentials{User: c.User, Password: c.Password.Reveal(), TLS: dbTLS}
	to := topology.Timeouts{Connect: timeout, Read: 2 * timeout, Write: 2 * timeout}
	return func(ctx context.Context, seeds []string) (string, bool) {
		ctx, cancel := context.WithTimeout(ctx, 10*timeout+5*time.Second)
		defer cancel()
		dial := topology.OnlyConfigured(seeds, func(ctx context.Context, addr string) (*topology.Conn, error) {
			return topology.Open(ctx, addr, cred, to, nil)
		})
		topo, err := topology.Discover(ctx, seeds, dial, logger)
		if err != nil || topo.Master == nil || topo.HasAnomaly(topology.MultipleWritableMasters, "") {
			return "", false
		}
		return topo.Master.Key, true
	}
}

// readGossipKey reads a memberlist key: base64 (as `openssl rand -base64 32`
// prints) or raw, of 16, 24 or 32 bytes. "" means no encryption.
func readGossipKey(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("node.gossip_key_file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if k, err := base64.StdEncoding.DecodeString(s); err == nil && validKeyLen(len(k)) {
		return k, nil
	}
	if validKeyLen(len(s)) {
		return []byte(s), nil
	}
	return nil, fmt.Errorf("node.gossip_key_file %s: key must be 16, 24 or 32 bytes (raw or base64)", path)
}

func validKeyLen(n int) bool { return n == 16 || n == 24 || n == 32 }

// voterKeys trusts a controller's verdicts only while it is a voter of the
// raft configuration, and only with the key recorded for it in the
// replicated state.
func voterKeys(node *consensus.Node, state *fsm.FSM) detector.Trust {
	return func(id string) (ed25519.PublicKey, bool) {
		peers, err := node.Peers()
		if err != nil {
			return nil, false
		}
		for _, p := range peers {
			if p.ID == id && p.Suffrage == "voter" {
				return state.NodeKey(id)
			}
		}
		return nil, false
	}
}

// voterCount is the number of voters in the raft configuration: the group
// the detection quorum is a share of.
func voterCount(node *consensus.Node) func() int {
	return func() int {
		peers, err := node.Peers()
		if err != nil {
			return 0
		}
		n := 0
		for _, p := range peers {
			if p.Suffrage == "voter" {
				n++
			}
		}
		return n
	}
}
