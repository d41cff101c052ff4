package sandbox

import (
	"context"
	"fmt"
)

// ReplicateFrom makes instance i of s a GTID (slave_pos) replica of master,
// an instance of this or another sandbox, the way Start attaches its own
// replicas. Tests use it to grow a topology at run time: a lone server
// started with Replicas: -1, GTID and its own server_id (ExtraConfig)
// joins another sandbox's master. s must use GTID.
func (s *Sandbox) ReplicateFrom(ctx context.Context, i int, master Instance) error {
	if !s.opts.GTID {
		return fmt.Errorf("sandbox: ReplicateFrom needs a GTID sandbox")
	}
	return s.attachReplica(ctx, i, master, BinlogPos{})
}
