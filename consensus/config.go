package consensus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/raft"
)

// Errors returned by Node. Callers match them with errors.Is; the api layer maps
// them to HTTP statuses and the forwarder uses ErrNotLeader to decide to forward.
var (
	// ErrNotLeader means the operation needs the leader and this node is not it
	// (or lost leadership before the operation committed). Forward or redirect.
	ErrNotLeader = errors.New("consensus: not the leader")
	// ErrNoLeader means no leader became known before the caller's deadline,
	// so there is nowhere to forward to; it maps to 503.
	ErrNoLeader = errors.New("consensus: no leader known")
	// ErrOutcomeUnknown means leadership was lost after an Apply's entry
	// reached the log: it may or may not commit, so the caller must check
	// the state before retrying (elsewhere it could apply twice). It also
	// matches ErrNotLeader (this node no longer leads), so callers that
	// only stop on a lost leadership need not know it; callers that would
	// forward or retry on ErrNotLeader must test it first.
	ErrOutcomeUnknown = errors.New("consensus: outcome unknown")
	// ErrUnknownPeer means Remove was asked for a server ID that is not in the
	// raft configuration, so a typo in an operator's command is not silent.
	ErrUnknownPeer = errors.New("consensus: unknown peer")
	// ErrShutdown means the node has been shut down and accepts no more work.
	ErrShutdown = errors.New("consensus: node is shut down")
	// ErrInvalidConfig means New was given a Config it cannot run with; the
	// wrapped message names the field.
	ErrInvalidConfig = errors.New("consensus: invalid config")
)

// Config holds the plain values and the few injected collaborators a Node needs.
// Tests inject Transport and set InMemory; production sets RaftAddr and DataDir.
type Config struct {
	// ID is this controller's raft server ID; it must be unique and stable.
	ID string
	// RaftAddr is the host:port the TCP transport binds to and advertises.
	RaftAddr string
	// DataDir holds raft.db (bbolt log and stable store) and snapshots/.
	DataDir string
	// Bootstrap is the initial voter set, used only on the very first start
	// (no existing state). It must include this node. Empty means "do not
	// bootstrap; wait to be joined by a leader".
	Bootstrap []Peer
	// Timings tunes raft; zero fields take LANTimings values.
	Timings Timings
	// TLS, when set, runs the transport on RaftAddr over mutual TLS: it
	// must hold this node's certificate, RootCAs and ClientCAs (the CA
	// peers' certificates chain to) and ClientAuth
	// tls.RequireAndVerifyClientCert. Peers' raft addresses must then be
	// names or IPs their certificates are valid for. Nil means plain TCP.
	TLS *tls.Config
	// Transport, when set, replaces the TCP transport (tests use
	// raft.NewInmemTransport). The caller owns it and closes it.
	Transport raft.Transport
	// InMemory selects in-memory log, stable and snapshot stores (tests only:
	// nothing survives a restart).
	InMemory bool
	// Logger receives this package's logs and raft's (component=raft).
	// Nil discards them.
	Logger *slog.Logger
	// OnLeader is leader-only work. It starts after a Barrier succeeded on
	// becoming leader, so the FSM has applied everything earlier leaders
	// committed. Its ctx is cancelled on leadership loss or shutdown, and it
	// must return soon after ctx is done: the next term waits for it.
	OnLeader func(ctx context.Context)

	// transportTimeout replaces tcpTimeout (tests: an RPC to a frozen
	// peer that would hold raft's shutdown for an hour without abort).
	transportTimeout time.Duration
}

// Timings are raft's timeouts plus this package's own bounds. They are a
// separate type because LAN and WAN deployments need very different values and
// operators choose between the two presets rather than tune each field.
type Timings struct {
	// HeartbeatTimeout is how long a follower waits without contact before
	// it starts an election.
	HeartbeatTimeout time.Duration
	// ElectionTimeout is how long a candidate waits before retrying.
	ElectionTimeout time.Duration
	// LeaderLeaseTimeout is how long a leader stays leader without hearing
	// from a quorum; it bounds how long a partitioned leader believes it leads.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout is the longest a follower waits for a heartbeat carrying
	// a new commit index when the log is idle.
	CommitTimeout time.Duration
	// ApplyTimeout bounds Apply when the caller's ctx has no deadline.
	ApplyTimeout time.Duration
	// BarrierTimeout bounds the Barrier taken on becoming leader, and
	// Barrier calls whose ctx has no deadline.
	BarrierTimeout time.Duration
	// SnapshotInterval is how often raft checks whether to snapshot.
	SnapshotInterval time.Duration
	// SnapshotThreshold is how many new log entries trigger a snapshot.
	SnapshotThreshold uint64
}

// LANTimings returns timings for controllers in one region (sub-millisecond to
// a few ms RTT). They halve hashicorp's 1s/1s/500ms defaults so a dead leader
// is replaced in roughly 0.5–1.5s, which matters because a failover cannot be
// decided while there is no leader; 500ms is still far above LAN RTT and GC
// pauses, so elections are not triggered by noise. Our write rate is tiny, so
// snapshots every 1024 entries keep restarts fast without costing much.
func LANTimings() Timings {
	return Timings{
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      50 * time.Millisecond,
		ApplyTimeout:       5 * time.Second,
		BarrierTimeout:     10 * time.Second,
		SnapshotInterval:   2 * time.Minute,
		SnapshotThreshold:  1024,
	}
}

// WANTimings returns timings for controllers spread across regions (tens to a
// few hundred ms RTT, occasional loss). 3s/3s/1.5s tolerates several lost
// heartbeats and RTT spikes without needless elections, at the cost of a slower
// (about 3–6s) leader failover; a spurious election is worse here because it
// stalls every decision cluster-wide.
func WANTimings() Timings {
	return Timings{
		HeartbeatTimeout:   3 * time.Second,
		ElectionTimeout:    3 * time.Second,
		LeaderLeaseTimeout: 1500 * time.Millisecond,
		CommitTimeout:      100 * time.Millisecond,
		ApplyTimeout:       15 * time.Second,
		BarrierTimeout:     30 * time.Second,
		SnapshotInterval:   2 * time.Minute,
		SnapshotThreshold:  1024,
	}
}

// withDefaults fills every zero field from LANTimings.
func (t Timings) withDefaults() Timings {
	d := LANTimings()
	fill := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	fill(&t.HeartbeatTimeout, d.HeartbeatTimeout)
	fill(&t.ElectionTimeout, d.ElectionTimeout)
	fill(&t.LeaderLeaseTimeout, d.LeaderLeaseTimeout)
	fill(&t.CommitTimeout, d.CommitTimeout)
	fill(&t.ApplyTimeout, d.ApplyTimeout)
	fill(&t.BarrierTimeout, d.BarrierTimeout)
	fill(&t.SnapshotInterval, d.SnapshotInterval)
	if t.SnapshotThreshold == 0 {
		t.SnapshotThreshold = d.SnapshotThreshold
	}
	return t
}

// validate checks what raft would reject later with a less helpful message,
// plus this package's own rules.
func (c *Config) validate() error {
	if c.ID == "" {
		return fmt.Errorf("%w: ID is empty", ErrInvalidConfig)
	}
	if c.Transport == nil && c.RaftAddr == "" {
		return fmt.Errorf("%w: RaftAddr is empty and no Transport was given", ErrInvalidConfig)
	}
	if c.TLS != nil && c.Transport != nil {
		return fmt.Errorf("%w: TLS applies to the TCP transport; an injected Transport brings its own", ErrInvalidConfig)
	}
	if !c.InMemory && c.DataDir == "" {
		return fmt.Errorf("%w: DataDir is empty", ErrInvalidConfig)
	}
	if len(c.Bootstrap) > 0 {
		self := false
		seen := make(map[string]bool, len(c.Bootstrap))
		for _, p := range c.Bootstrap {
			if p.ID == "" || p.RaftAddr == "" {
				return fmt.Errorf("%w: Bootstrap peer %q has an empty ID or address", ErrInvalidConfig, p.ID+"="+p.RaftAddr)
			}
			if seen[p.ID] {
				return fmt.Errorf("%w: Bootstrap lists %q twice", ErrInvalidConfig, p.ID)
			}
			seen[p.ID] = true
			if p.ID == c.ID {
				self = true
			}
		}
		if !self {
			return fmt.Errorf("%w: Bootstrap does not include this node %q", ErrInvalidConfig, c.ID)
		}
	}
	t := c.Timings
	if t.LeaderLeaseTimeout > t.HeartbeatTimeout {
		return fmt.Errorf("%w: Timings.LeaderLeaseTimeout %v exceeds HeartbeatTimeout %v", ErrInvalidConfig, t.LeaderLeaseTimeout, t.HeartbeatTimeout)
	}
	if t.ElectionTimeout < t.HeartbeatTimeout {
		return fmt.Errorf("%w: Timings.ElectionTimeout %v is below HeartbeatTimeout %v", ErrInvalidConfig, t.ElectionTimeout, t.HeartbeatTimeout)
	}
	return nil
}

// raftConfig builds raft's Config from ours.
func (c *Config) raftConfig(notify chan<- bool, logger *slog.Logger) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.ID)
	rc.HeartbeatTimeout = c.Timings.HeartbeatTimeout
	rc.ElectionTimeout = c.Timings.ElectionTimeout
	rc.LeaderLeaseTimeout = c.Timings.LeaderLeaseTimeout
	rc.CommitTimeout = c.Timings.CommitTimeout
	rc.SnapshotInterval = c.Timings.SnapshotInterval
	rc.SnapshotThreshold = c.Timings.SnapshotThreshold
	rc.NotifyCh = notify
	rc.Logger = newHCLogAdapter(logger.With("component", "raft", "node", c.ID), "raft")
	return rc
}
