package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// MaxMasterWait bounds GET /v1/clusters/{name}/master?wait=D: a proxy or
// writer re-asks at least this often, and the server's write timeout stays
// above it.
const MaxMasterWait = 60 * time.Second

// MasterIndexHeader carries the recorded master's change index on every
// answer of the master endpoint, 503s included, so a client can long-poll
// from it.
const MasterIndexHeader = "X-Quorumha-Master-Index"

// masterWatcher is implemented by *fsm.FSM: the broadcast a long poll of
// the master endpoint waits on. Without it, wait is ignored.
type masterWatcher interface {
	MasterChanged() <-chan struct{}
}

// masterWaitParams parses ?wait=D&index=N. A wait without an index does not
// wait: there is nothing to compare with.
func masterWaitParams(r *http.Request) (time.Duration, uint64, bool, error) {
	q := r.URL.Query()
	var wait time.Duration
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return 0, 0, false, fmt.Errorf("%w: wait=%q is not a duration such as 30s", ErrBadRequest, v)
		}
		wait = min(d, MaxMasterWait)
	}
	v := q.Get("index")
	if v == "" {
		return 0, 0, false, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, 0, false, fmt.Errorf("%w: index=%q is not a non-negative integer", ErrBadRequest, v)
	}
	return wait, n, true, nil
}

// masterIndex is the cluster's recorded master change index (0: none yet).
func (s *Server) masterIndex(name string) uint64 {
	cs, _ := s.state.Cluster(name)
	return cs.MasterIndex
}

// waitMasterChange blocks until the cluster's master index differs from
// index, wait passes or the client goes away. It needs no goroutine: the
// FSM closes the channel it hands out at the next change, and the channel
// is taken before the index is read, so a change in between is not missed.
func (s *Server) waitMasterChange(ctx context.Context, name string, index uint64, wait time.Duration) {
	mw, ok := s.state.(masterWatcher)
	if !ok || wait <= 0 {
		return
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		changed := mw.MasterChanged()
		if s.masterIndex(name) != index {
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}
