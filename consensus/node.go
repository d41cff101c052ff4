package consensus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

const (
	// snapshotsRetained is how many snapshots the file store keeps on disk.
	snapshotsRetained = 3
	// tcpMaxPool and tcpTimeout are the TCP transport's connection pool size
	// per peer and its I/O timeout (hashicorp's usual values).
	tcpMaxPool = 3
	tcpTimeout = 10 * time.Second
	// notifyBuffer sizes NotifyCh so raft never blocks on a slow leader loop.
	notifyBuffer = 16
)

// Node is this controller's member of the raft group. It owns the raft
// instance, its stores, the TCP or TLS transport it created (not an injected one),
// the leadership loop and the OnLeader goroutine; Shutdown stops them all.
type Node struct {
	cfg   Config
	log   *slog.Logger
	raft  *raft.Raft
	trans raft.Transport
	owned []io.Closer // closed after raft shuts down, in order
	// abortNet cuts this node's dials and dialled connections short when
	// raft shuts down (see abortableStream); a no-op for injected transports.
	abortNet func()
	notify   chan bool

	loopCancel context.CancelFunc
	loopWG     sync.WaitGroup // leadership loop, its OnLeader goroutine, promotions
	// loopCtx is cancelled by Shutdown; promotions of joined nonvoters
	// run under it, in loopWG.
	loopCtx context.Context

	mu       sync.RWMutex
	closed   bool           // Shutdown started: public calls fail with ErrShutdown
	waitersW bool           // waiters closed: no more waiter goroutines may start
	waiters  sync.WaitGroup // goroutines waiting on raft futures for a ctx-aware caller
	pending  atomic.Int64   // how many of them still wait
	// stopped is closed when Shutdown is done with raft: callers still
	// waiting on a future then get ErrShutdown (see await).
	stopped chan struct{}

	leaderChanges atomic.Uint64
}

// New opens the stores, bootstraps a brand-new cluster when cfg.Bootstrap is
// set and there is no existing state, starts raft and the leadership loop.
// On restart with existing state, Bootstrap is ignored: raft recovers its
// configuration from the log and snapshots.
func New(cfg Config, fsm raft.FSM) (*Node, error) {
	if fsm == nil {
		return nil, fmt.Errorf("%w: fsm is nil", ErrInvalidConfig)
	}
	cfg.Timings = cfg.Timings.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{
		cfg:      cfg,
		log:      logger.With("component", "consensus", "node", cfg.ID),
		notify:   make(chan bool, notifyBuffer),
		stopped:  make(chan struct{}),
		abortNet: func() {},
	}
	if err := n.open(fsm, logger); err != nil {
		n.closeOwned()
		return nil, err
	}
	// Register before the first election can finish so no leader is missed.
	obsCh := make(chan raft.Observation, observerBuffer)
	obs := raft.NewObserver(obsCh, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(obs)
	ctx, cancel := context.WithCancel(context.Background())
	n.loopCancel, n.loopCtx = cancel, ctx
	n.loopWG.Go(func() { n.leadershipLoop(ctx, obsCh, obs) })
	return n, nil
}

// open builds stores and transport, bootstraps if asked, and starts raft.
func (n *Node) open(fsm raft.FSM, logger *slog.Logger) error {
	cfg := &n.cfg
	rc := cfg.raftConfig(n.notify, logger)
	var (
		logs   raft.LogStore
		stable raft.StableStore
		snaps  raft.SnapshotStore
	)
	if cfg.InMemory {
		mem := raft.NewInmemStore()
		logs, stable, snaps = mem, mem, raft.NewInmemSnapshotStore()
	} else {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return fmt.Errorf("consensus: create data dir: %w", err)
		}
		bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.DataDir, "raft.db")})
		if err != nil {
			return fmt.Errorf("consensus: open raft.db: %w", err)
		}
		n.owned = append(n.owned, bolt)
		fss, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, snapshotsRetained, rc.Logger.Named("snapshots"))
		if err != nil {
			return fmt.Errorf("consensus: open snapshot store: %w", err)
		}
		logs, stable, snaps = bolt, bolt, fss
	}

	n.trans = cfg.Transport
	if n.trans == nil {
		t, abort, err := networkTransport(cfg, rc.Logger.Named("transport"))
		if err != nil {
			return fmt.Errorf("consensus: listen on %s: %w", cfg.RaftAddr, err)
		}
		n.abortNet = abort
		// Close the transport before the stores: raft must be shut down first,
		// which closeOwned's callers guarantee.
		n.owned = append([]io.Closer{t}, n.owned...)
		n.trans = t
	}

	if !cfg.InMemory {
		if err := n.recoverPeers(rc, fsm, logs, stable, snaps); err != nil {
			return err
		}
	}

	existing, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		return fmt.Errorf("consensus: check existing state: %w", err)
	}
	switch {
	case existing && len(cfg.Bootstrap) > 0:
		n.log.Info("existing raft state found; ignoring bootstrap peers")
	case !existing && len(cfg.Bootstrap) > 0:
		conf := raft.Configuration{}
		for _, p := range cfg.Bootstrap {
			conf.Servers = append(conf.Servers, raft.Server{
				Suffrage: raft.Voter,
				ID:       raft.ServerID(p.ID),
				Address:  raft.ServerAddress(p.RaftAddr),
			})
		}
		if err := raft.BootstrapCluster(rc, logs, stable, snaps, n.trans, conf); err != nil {
			return fmt.Errorf("consensus: bootstrap: %w", err)
		}
		n.log.Info("bootstrapped new raft cluster", "peers", len(conf.Servers))
	case !existing:
		n.log.Info("no raft state and no bootstrap peers; waiting to be joined")
	}

	r, err := raft.NewRaft(rc, fsm, logs, stable, snaps, n.trans)
	if err != nil {
		return fmt.Errorf("consensus: start raft: %w", err)
	}
	n.raft = r
	return nil
}

// closeOwned closes what New opened (transport, bolt store). Errors are
// joined so none is lost.
func (n *Node) closeOwned() error {
	var errs []error
	for _, c := range n.owned {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	n.owned = nil
	if len(errs) > 0 {
		return fmt.Errorf("consensus: close stores: %w", errors.Join(errs...))
	}
	return nil
}

// Shutdown stops the node gracefully. A leader first hands leadership to
// another voter (bounded by ctx) so the cluster does not wait a full election
// timeout; then leader-only work is cancelled and waited for, raft is shut
// down, and stores and the owned transport are closed. Every wait is
// bounded by ctx: when ctx ends first, Shutdown returns an error naming
// what has not stopped (raft's goroutines go to the log), closes the
// owned transport at once and the stores once raft has stopped. Calling
// it twice returns ErrShutdown.
func (n *Node) Shutdown(ctx context.Context) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrShutdown
	}
	n.closed = true
	n.mu.Unlock()

	if n.raft.State() == raft.Leader && n.otherVoters() > 0 {
		// The transfer gets half of what is left of ctx: a transfer to a
		// voter that is down waits out raft's election timeout, and must
		// not leave nothing for the shutdown itself.
		tctx := ctx
		if dl, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			tctx, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(dl)/2))
			defer cancel()
		}
		if err := n.await(tctx, n.raft.LeadershipTransfer()); err != nil {
			n.log.Warn("leadership transfer before shutdown failed", "err", err)
		} else {
			n.log.Info("leadership transferred before shutdown")
		}
	}

	// Every wait below is bounded by ctx: a controller asked to stop must
	// stop, and a wait that does not end is reported (with raft's stacks in
	// the log) instead of holding the process.
	var errs []error
	n.loopCancel()
	if !waitCtx(ctx, n.loopWG.Wait) {
		errs = append(errs, fmt.Errorf("consensus: leader work still running: %w", ctx.Err()))
	}

	// raft stops its goroutines once Shutdown returns the future; aborting
	// the transport between the two makes those blocked on a vanished peer
	// give up now instead of after the transport timeout.
	shut := n.raft.Shutdown()
	n.abortNet()
	raftDone := make(chan error, 1)
	go func() { raftDone <- shut.Error() }() // returns once raft's goroutines have ended
	err, raftStopped := recvCtx(ctx, raftDone)
	if raftStopped {
		if err != nil {
			errs = append(errs, fmt.Errorf("consensus: raft shutdown: %w", err))
		}
		if err := n.closeOwned(); err != nil {
			errs = append(errs, err)
		}
	} else {
		errs = append(errs, fmt.Errorf("consensus: raft still stopping: %w", ctx.Err()))
		n.log.Error("raft did not stop in time; closing its transport now, its stores once it stops",
			"raft_goroutines", raftStacks())
		// The transport goes now: it frees the port and ends the peers'
		// RPCs waiting on this node. The stores must outlive raft (raft
		// panics on some store errors), so they close when it stops.
		if c, ok := n.trans.(raft.WithClose); ok && n.cfg.Transport == nil {
			_ = c.Close()
		}
		go func() {
			<-raftDone
			_ = n.closeOwned()
		}()
	}

	n.mu.Lock()
	n.waitersW = true
	n.mu.Unlock()
	close(n.stopped)
	if raftStopped {
		// A future raft answered reaches its waiter at once; one raft took
		// and never answered (an entry still queued for the FSM when raft
		// stopped: raft v1.7 drops those) never will. Its caller got
		// ErrShutdown from await; the waiting goroutine is abandoned.
		gctx, cancel := context.WithTimeout(ctx, abandonGrace)
		if !waitCtx(gctx, n.waiters.Wait) {
			n.log.Info("raft stopped without answering some operations; their callers were told the outcome is unknown",
				"operations", n.pending.Load())
		}
		cancel()
	}
	return errors.Join(errs...)
}

// otherVoters counts voters other than this node in the latest configuration.
func (n *Node) otherVoters() int {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return 0
	}
	c := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter && string(s.ID) != n.cfg.ID {
			c++
		}
	}
	return c
}

// isClosed reports whether Shutdown has started.
func (n *Node) isClosed() bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.closed
}

// await waits for a raft future but returns early when ctx is done. Raft's
// futures block without a context, so a waiter goroutine owned by the Node
// (Shutdown waits for it) reads the future; it ends when raft resolves the
// future, which raft guarantees at the latest on its own shutdown.
func (n *Node) await(ctx context.Context, f raft.Future) error {
	n.mu.RLock()
	if n.waitersW {
		n.mu.RUnlock()
		return ErrShutdown
	}
	done := make(chan error, 1)
	n.pending.Add(1)
	n.waiters.Go(func() {
		defer n.pending.Add(-1)
		done <- f.Error()
	})
	n.mu.RUnlock()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-n.stopped:
		select { // answered is answered
		case err := <-done:
			return err
		default:
			return fmt.Errorf("%w: %w: the node stopped before raft answered", ErrOutcomeUnknown, ErrShutdown)
		}
	}
}

// abandonGrace is how long Shutdown lets answered futures reach their
// waiters once raft has stopped.
const abandonGrace = time.Second

// timeout turns ctx's deadline into raft's timeout argument, falling back to
// def when ctx has none.
func timeout(ctx context.Context, def time.Duration) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d > 0 {
			return d
		}
		return time.Millisecond
	}
	return def
}
