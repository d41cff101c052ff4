package consensus

import (
	"errors"
	"testing"

	"github.com/hashicorp/raft"
)

// An Apply that lost leadership in flight is outcome-unknown (and still
// not-leader, for callers that only stop); one refused before sending is
// not-leader only, so it may be forwarded.
func TestMapApplyErr(t *testing.T) {
	tests := []struct {
		err                error
		unknown, notLeader bool
	}{
		{raft.ErrLeadershipLost, true, true},
		{raft.ErrNotLeader, false, true},
		{raft.ErrLeadershipTransferInProgress, false, true},
		{raft.ErrRaftShutdown, false, false},
	}
	for _, tt := range tests {
		got := mapApplyErr(tt.err)
		if errors.Is(got, ErrOutcomeUnknown) != tt.unknown || errors.Is(got, ErrNotLeader) != tt.notLeader || !errors.Is(got, tt.err) {
			t.Errorf("mapApplyErr(%v) = %v: outcome unknown %v, not leader %v; want %v, %v",
				tt.err, got, errors.Is(got, ErrOutcomeUnknown), errors.Is(got, ErrNotLeader), tt.unknown, tt.notLeader)
		}
	}
}
