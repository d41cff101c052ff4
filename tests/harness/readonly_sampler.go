package harness

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// Access is what one sample saw of a server.
type Access string

// Sample outcomes. A sample that timed out or failed is Unknown: an
// unreachable server may well be taking writes from clients on its side of
// a cut, so it is never counted as read-only.
const (
	Writable Access = "writable"
	ReadOnly Access = "read_only"
	Unknown  Access = "unknown"
)

// Sample is one read of @@global.read_only: by which sampler (its zone),
// of which server, in which of the sampler's rounds, sent when and answered
// (or given up) when. The server's answer describes one instant between
// Sent and Answered.
type Sample struct {
	Sampler  string
	Server   string
	Round    int
	Sent     time.Time
	Answered time.Time
	State    Access
	Err      string `json:",omitempty"`
}

// SampleTarget is one server a sampler reads: its name in the recordings
// (its address) and the DSN it is read through (one that dials from the
// sampler's zone).
type SampleTarget struct {
	Server string
	DSN    string
}

// Sampler defaults.
const (
	// DefaultSampleEvery is the sampling period.
	DefaultSampleEvery = 50 * time.Millisecond
	// DefaultSampleTimeout bounds one read; it also bounds how long a
	// sample's [Sent, Answered] interval can be.
	DefaultSampleTimeout = 300 * time.Millisecond
)

// ReadOnlySampler reads @@global.read_only of every target every period,
// from wherever its DSNs dial from, and records every sample. Each target
// has its own loop, so a server that hangs does not slow the sampling of
// the others; Round numbers the period a sample was sent in, counted from
// the sampler's start, so one round's samples were sent together.
type ReadOnlySampler struct {
	name    string
	every   time.Duration
	timeout time.Duration
	start   time.Time
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once

	mu      sync.Mutex
	samples []Sample
}

// SamplerOptions configures StartReadOnlySampler.
type SamplerOptions struct {
	// Name says where the sampler runs (a zone's name, or "group").
	Name    string
	Targets []SampleTarget
	// Every and Timeout default to DefaultSampleEvery and DefaultSampleTimeout.
	Every, Timeout time.Duration
}

// StartReadOnlySampler starts sampling; it runs until Stop or the end of
// the test.
func StartReadOnlySampler(t testing.TB, opts SamplerOptions) *ReadOnlySampler {
	t.Helper()
	if opts.Every <= 0 {
		opts.Every = DefaultSampleEvery
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultSampleTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &ReadOnlySampler{name: opts.Name, every: opts.Every, timeout: opts.Timeout, start: time.Now(), cancel: cancel}
	for _, tg := range opts.Targets {
		db, err := sql.Open("mysql", tg.DSN)
		if err != nil {
			cancel()
			s.wg.Wait()
			t.Fatalf("sampler %s: open %s: %v", opts.Name, tg.Server, err)
		}
		db.SetMaxOpenConns(1) // reads of one server are sequential
		s.wg.Go(func() { s.loop(ctx, tg.Server, db) })
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

// Name is the sampler's zone.
func (s *ReadOnlySampler) Name() string { return s.name }

// Stop ends sampling and waits for the loops; it may be called more than
// once. It returns every sample.
func (s *ReadOnlySampler) Stop() []Sample {
	s.once.Do(func() {
		s.cancel()
		s.wg.Wait()
	})
	return s.Samples()
}

// Samples returns a copy of the samples so far, in the order they were
// answered.
func (s *ReadOnlySampler) Samples() []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.samples)
}

func (s *ReadOnlySampler) loop(ctx context.Context, server string, db *sql.DB) {
	defer db.Close()
	tick := time.NewTicker(s.every)
	defer tick.Stop()
	for {
		s.sampleOnce(ctx, server, db)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *ReadOnlySampler) sampleOnce(ctx context.Context, server string, db *sql.DB) {
	sent := time.Now()
	qctx, cancel := context.WithTimeout(ctx, s.timeout)
	var ro int
	err := db.QueryRowContext(qctx, "SELECT @@global.read_only").Scan(&ro)
	cancel()
	answered := time.Now()
	if ctx.Err() != nil {
		return // cut short by Stop: says nothing about the server
	}
	smp := Sample{Sampler: s.name, Server: server, Round: int(sent.Sub(s.start) / s.every),
		Sent: sent, Answered: answered, State: Unknown}
	switch {
	case err != nil:
		smp.Err = err.Error()
	case ro == 0:
		smp.State = Writable
	default:
		smp.State = ReadOnly
	}
	s.mu.Lock()
	s.samples = append(s.samples, smp)
	s.mu.Unlock()
}

// WaitSample polls until the sampler has a sample of server answered after
// since with a state in want, and returns it.
func (s *ReadOnlySampler) WaitSample(ctx context.Context, server string, since time.Time, want ...Access) (Sample, error) {
	var got Sample
	err := Poll(ctx, s.every, func() error {
		var last Sample
		for _, smp := range s.Samples() {
			if smp.Server != server || smp.Answered.Before(since) {
				continue
			}
			last = smp
			if slices.Contains(want, smp.State) {
				got = smp
				return nil
			}
		}
		return fmt.Errorf("sampler %s: no %v sample of %s since %s (last: %s %s)", s.name, want, server,
			since.Format("15:04:05.000"), last.State, last.Err)
	})
	return got, err
}
