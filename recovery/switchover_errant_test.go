package recovery

import (
	"errors"
	"testing"

	"github.com/quorumha/quorumha/topology"
)

func TestErrantOnTarget(t *testing.T) {
	maria := topology.Version{Flavor: topology.MariaDB, Major: 10, Minor: 11}
	master := func(binlogPos string) *topology.Instance {
		return &topology.Instance{Key: "m:3306", Version: maria, GTIDBinlogPos: binlogPos,
			MasterStatus: &topology.BinlogCoord{File: "mysql-bin.000001", Pos: 328}}
	}
	target := func(current string) *topology.Instance {
		return &topology.Instance{Key: "r:3306", Version: maria, GTIDCurrentPos: current,
			Replica: &topology.ReplicaStatus{UsingGTID: "Slave_Pos"}}
	}
	gtid := ClusterConfig{ReplicationMode: "gtid"}
	tests := []struct {
		name   string
		cc     ClusterConfig
		m, r   *topology.Instance
		refuse bool
	}{
		{"fresh cluster: no GTID anywhere", gtid, master(""), target(""), false},
		{"level", gtid, master("0-1-5"), target("0-1-5"), false},
		{"behind", gtid, master("0-1-5"), target("0-1-3"), false},
		{"target ahead of a fresh master", gtid, master(""), target("0-2-1"), true},
		{"target has a local write", gtid, master("0-1-5"), target("0-1-5,1-2-1"), true},
		{"file/position setup is not compared", ClusterConfig{ReplicationMode: "file"}, master(""), target("0-2-1"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := errantOnTarget(tt.cc, tt.m, tt.r)
			if got := err != nil; got != tt.refuse || (err != nil && !errors.Is(err, ErrSwitchoverRefused)) {
				t.Errorf("errantOnTarget = %v, want refusal %t", err, tt.refuse)
			}
		})
	}
}
