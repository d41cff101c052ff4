package detector

import (
	"context"
	"errors"
	"fmt"
)

// Sentinel errors of the detector; callers match them with errors.Is.
var (
	// ErrBadQuorum means the quorum setting is neither "majority" nor a positive number.
	ErrBadQuorum = errors.New("detector: invalid quorum")
	// ErrBadConfig means a Config or GossipConfig value is missing or out of range.
	ErrBadConfig = errors.New("detector: invalid config")
	// ErrUnknownCluster means a cluster name is not in the detector's config.
	ErrUnknownCluster = errors.New("detector: unknown cluster")
	// ErrBadMessage means a gossip message could not be decoded.
	ErrBadMessage = errors.New("detector: malformed gossip message")
	// ErrProberClosed means a probe was asked of a Prober after Close.
	ErrProberClosed = errors.New("detector: prober closed")
	// errInFlight means the previous probe of the same instance has not
	// finished; it wraps context.DeadlineExceeded because that is what it is.
	errInFlight = fmt.Errorf("previous probe still in flight: %w", context.DeadlineExceeded)
)
