package fsm

import (
	"errors"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

func defApp(name string, addrs ...string) ClusterDef {
	d := ClusterDef{Name: name, User: "monitor", PasswordFile: "/etc/quorumha/" + name + ".pass"}
	for _, a := range addrs {
		d.Instances = append(d.Instances, InstanceDef{Address: a})
	}
	return d
}

func addCluster(d ClusterDef, sec int) cmd {
	return cmd{ClusterDefineType, ClusterDefine{Op: OpAdd, Name: d.Name, Def: &d, By: "test", At: at(sec)}}
}

func TestTopology_Commands(t *testing.T) {
	base := []cmd{addCluster(defApp("app1", "10.0.0.1:3306", "10.0.0.2:3306"), 1)}
	tests := []struct {
		name    string
		setup   []cmd
		c       cmd
		wantErr error  // nil: accepted
		errHas  string // the error names what is wrong
		check   func(t *testing.T, f *FSM)
	}{
		{name: "add cluster", c: addCluster(defApp("app2", "h:1"), 2),
			check: func(t *testing.T, f *FSM) {
				c, _ := f.Cluster("app2")
				if c.Topology == nil || c.Topology.Instances[0].Address != "h:1" || c.Topology.By != "test" {
					t.Errorf("topology = %+v", c.Topology)
				}
			}},
		{name: "add existing", setup: base, c: addCluster(defApp("app1", "h:1"), 2), wantErr: ErrClusterExists, errHas: `"app1"`},
		{name: "add without instances", c: addCluster(defApp("app2"), 2), wantErr: ErrInvalid, errHas: "instances"},
		{name: "add without user", c: addCluster(ClusterDef{Name: "x", Instances: []InstanceDef{{Address: "h:1"}}}, 2), wantErr: ErrInvalid, errHas: `cluster "x": user`},
		{name: "add bad address", c: addCluster(defApp("app2", "nohost"), 2), wantErr: ErrInvalid, errHas: `"nohost"`},
		{name: "add bad port", c: addCluster(defApp("app2", "h:99999"), 2), wantErr: ErrInvalid, errHas: `port "99999"`},
		{name: "add duplicate instance", c: addCluster(defApp("app2", "H:1", "h:1"), 2), wantErr: ErrInvalid, errHas: "listed twice"},
		{name: "add bad mode", c: addCluster(func() ClusterDef { d := defApp("a", "h:1"); d.ReplicationMode = "row"; return d }(), 2),
			wantErr: ErrInvalid, errHas: `replication_mode "row"`},
		{name: "add both password refs", c: addCluster(func() ClusterDef { d := defApp("a", "h:1"); d.PasswordEnv = "PW"; return d }(), 2),
			wantErr: ErrInvalid, errHas: "password_env"},
		{name: "set cluster", setup: base,
			c: cmd{ClusterDefineType, ClusterDefine{Op: OpSet, Name: "app1", Patch: &ClusterPatch{AutoAdd: ptr(true), User: ptr("mon2")}, At: at(2)}},
			check: func(t *testing.T, f *FSM) {
				c, _ := f.Cluster("app1")
				if !c.Topology.AutoAdd || c.Topology.User != "mon2" || len(c.Topology.Instances) != 2 {
					t.Errorf("topology = %+v", c.Topology)
				}
			}},
		{name: "set unknown cluster", c: cmd{ClusterDefineType, ClusterDefine{Op: OpSet, Name: "nope", Patch: &ClusterPatch{}, At: at(2)}},
			wantErr: ErrNoSuchCluster, errHas: `"nope"`},
		{name: "set empty user", setup: base, c: cmd{ClusterDefineType, ClusterDefine{Op: OpSet, Name: "app1", Patch: &ClusterPatch{User: ptr("")}, At: at(2)}},
			wantErr: ErrInvalid, errHas: "user"},
		{name: "bad op", setup: base, c: cmd{ClusterDefineType, ClusterDefine{Op: "upsert", Name: "app1", At: at(2)}}, wantErr: ErrInvalid, errHas: `"upsert"`},
		{name: "remove cluster", setup: base, c: cmd{ClusterRemoveType, ClusterRemove{Name: "app1", At: at(2)}},
			check: func(t *testing.T, f *FSM) {
				defs, removed := f.Topology()
				if len(defs) != 0 || len(removed) != 1 || removed[0] != "app1" {
					t.Errorf("Topology() = %v, %v", defs, removed)
				}
			}},
		{name: "remove cluster with open record", setup: append(base[:1:1], openFailover("app1", 2)),
			c: cmd{ClusterRemoveType, ClusterRemove{Name: "app1", At: at(3)}}, wantErr: ErrTopologyLocked, errHas: "failover record"},
		{name: "add instance", setup: base,
			c: cmd{InstanceSetType, InstanceSet{Op: OpAdd, Cluster: "app1", Address: "10.0.0.3:3306", Patch: InstancePatch{NoMaster: ptr(true)}, By: "op", At: at(2)}},
			check: func(t *testing.T, f *FSM) {
				c, _ := f.Cluster("app1")
				in, ok := c.Topology.Instance("10.0.0.3:3306")
				if !ok || !in.NoMaster || in.AddedBy != "op" {
					t.Errorf("instance = %+v, %v", in, ok)
				}
			}},
		{name: "add listed instance", setup: base,
			c:       cmd{InstanceSetType, InstanceSet{Op: OpAdd, Cluster: "app1", Address: "10.0.0.1:3306", At: at(2)}},
			wantErr: ErrInstanceExists, errHas: "10.0.0.1:3306"},
		{name: "add instance to unknown cluster",
			c:       cmd{InstanceSetType, InstanceSet{Op: OpAdd, Cluster: "nope", Address: "h:1", At: at(2)}},
			wantErr: ErrNoSuchCluster, errHas: `"nope"`},
		{name: "set candidate and no_master", setup: base,
			c:       cmd{InstanceSetType, InstanceSet{Op: OpSet, Cluster: "app1", Address: "10.0.0.2:3306", Patch: InstancePatch{CandidateMaster: ptr(true), NoMaster: ptr(true)}, At: at(2)}},
			wantErr: ErrInvalid, errHas: "candidate_master and no_master"},
		{name: "set unknown instance", setup: base,
			c:       cmd{InstanceSetType, InstanceSet{Op: OpSet, Cluster: "app1", Address: "h:9", At: at(2)}},
			wantErr: ErrNoSuchInstance, errHas: "h:9"},
		{name: "instance change during failover", setup: append(base[:1:1], openFailover("app1", 2)),
			c:       cmd{InstanceSetType, InstanceSet{Op: OpSet, Cluster: "app1", Address: "10.0.0.2:3306", Patch: InstancePatch{NoMaster: ptr(true)}, At: at(3)}},
			wantErr: ErrTopologyLocked, errHas: "10.0.0.2:3306"},
		{name: "remove instance", setup: base,
			c: cmd{InstanceRemoveType, InstanceRemove{Cluster: "app1", Address: "10.0.0.2:3306", At: at(2)}},
			check: func(t *testing.T, f *FSM) {
				c, _ := f.Cluster("app1")
				if _, ok := c.Topology.Instance("10.0.0.2:3306"); ok || len(c.Topology.Instances) != 1 {
					t.Errorf("instances = %+v", c.Topology.Instances)
				}
			}},
		{name: "remove master", setup: append(base[:1:1], cmd{SetMasterType, SetMaster{Cluster: "app1", Master: "10.0.0.1:3306", At: at(2)}}),
			c:       cmd{InstanceRemoveType, InstanceRemove{Cluster: "app1", Address: "10.0.0.1:3306", At: at(3)}},
			wantErr: ErrRemoveMaster, errHas: "10.0.0.1:3306"},
		{name: "remove during failover", setup: append(base[:1:1], openFailover("app1", 2)),
			c:       cmd{InstanceRemoveType, InstanceRemove{Cluster: "app1", Address: "10.0.0.2:3306", At: at(3)}},
			wantErr: ErrTopologyLocked},
		{name: "remove last instance", setup: []cmd{addCluster(defApp("one", "h:1"), 1)},
			c:       cmd{InstanceRemoveType, InstanceRemove{Cluster: "one", Address: "h:1", At: at(3)}},
			wantErr: ErrInvalid, errHas: "last instance"},
		{name: "zero time", setup: base, c: cmd{InstanceRemoveType, InstanceRemove{Cluster: "app1", Address: "10.0.0.2:3306"}}, wantErr: ErrInvalid},
		{name: "re-add after remove", setup: append(base[:1:1], cmd{ClusterRemoveType, ClusterRemove{Name: "app1", At: at(2)}}),
			c: addCluster(defApp("app1", "h:1"), 3),
			check: func(t *testing.T, f *FSM) {
				c, _ := f.Cluster("app1")
				if c.Topology == nil || c.TopologyRemoved {
					t.Errorf("state = %+v", c)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := testFSM(t)
			applyAll(t, f, tt.setup)
			before := dump(t, f)
			resp := applyNext(t, f, tt.c)
			err, _ := resp.(error)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if tt.check != nil {
					tt.check(t, f)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("err %q does not name %q", err, tt.errHas)
			}
			// A rejected command changes nothing.
			if after := dump(t, f); after != before {
				t.Errorf("state changed by a rejected command:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

func TestTopology_SnapshotRoundTripAndDeterminism(t *testing.T) {
	log := []cmd{
		addCluster(defApp("app1", "10.0.0.1:3306", "10.0.0.2:3306"), 1),
		addCluster(defApp("app2", "10.0.1.1:3306"), 2),
		{InstanceSetType, InstanceSet{Op: OpAdd, Cluster: "app1", Address: "10.0.0.3:3306", Patch: InstancePatch{NoMaster: ptr(true), CheckReplDelay: ptr(false)}, At: at(3)}},
		{ClusterDefineType, ClusterDefine{Op: OpSet, Name: "app1", Patch: &ClusterPatch{AutoAdd: ptr(true)}, At: at(4)}},
		{ClusterRemoveType, ClusterRemove{Name: "app2", At: at(5)}},
	}
	f, g := testFSM(t), testFSM(t)
	applyAll(t, f, log)
	applyAll(t, g, log)
	if dump(t, f) != dump(t, g) {
		t.Fatal("same log, different states")
	}
	h := testFSM(t)
	if err := h.Restore(persist(t, f).Reader()); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if want, got := dump(t, f), dump(t, h); got != want {
		t.Errorf("restored state differs:\nwant %s\ngot  %s", want, got)
	}
	defs, removed := h.Topology()
	if len(defs) != 1 || len(defs[0].Instances) != 3 || !defs[0].AutoAdd || len(removed) != 1 {
		t.Fatalf("restored Topology() = %+v, %v", defs, removed)
	}
	// Copies share nothing with the state.
	defs[0].Instances[2].NoMaster = false
	*defs[0].Instances[2].CheckReplDelay = true
	c, _ := h.Cluster("app1")
	if in := c.Topology.Instances[2]; !in.NoMaster || *in.CheckReplDelay {
		t.Errorf("state changed through a copy: %+v", in)
	}
}

func TestTopology_ChangeNotifies(t *testing.T) {
	f := testFSM(t)
	ch := f.TopologyChanged()
	applyAll(t, f, []cmd{addCluster(defApp("app1", "h:1", "h:2"), 1)})
	select {
	case <-ch:
	default:
		t.Fatal("cluster add did not notify")
	}
	ch = f.TopologyChanged()
	applyNext(t, f, cmd{InstanceRemoveType, InstanceRemove{Cluster: "app1", Address: "h:9", At: at(2)}}) // rejected
	select {
	case <-ch:
		t.Fatal("a rejected command notified")
	default:
	}
	applyAll(t, f, []cmd{{SetMasterType, SetMaster{Cluster: "app1", Master: "h:2", At: at(3)}}})
	select {
	case <-ch:
	default:
		t.Fatal("a master change did not notify")
	}
}
