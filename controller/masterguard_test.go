package controller

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/quorumha/quorumha/config"
	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/topology"
)

// fakeGroup applies straight to an FSM, as a one-node leader would.
type fakeGroup struct {
	f     *fsm.FSM
	index uint64
}

func (g *fakeGroup) Apply(_ context.Context, cmd []byte) (any, error) {
	g.index++
	resp := g.f.Apply(&raft.Log{Index: g.index, Data: cmd})
	if err, ok := resp.(error); ok {
		return nil, err
	}
	return resp, nil
}
func (g *fakeGroup) VerifyLeader(context.Context) error { return nil }
func (g *fakeGroup) Term() uint64                       { return 1 }

// Item 2 of the security review: a recorded master that is not a
// configured instance would be probed with the admin account by every
// controller. The leader refuses to write one.
func TestMasterGuard_RefusesUnconfiguredMaster(t *testing.T) {
	state := fsm.New(nil)
	g := newMasterGuard(&fakeGroup{f: state}, state, fileTopology(&config.Config{Clusters: []config.Cluster{
		{Name: "app1", Instances: []config.Instance{{Address: "10.0.0.1:3306"}, {Address: "10.0.0.2:3306"}}},
	}}))
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	apply := func(t fsm.MessageType, p any) (any, error) {
		buf, err := fsm.Encode(t, p)
		if err != nil {
			panic(err)
		}
		return g.Apply(context.Background(), buf)
	}
	if _, err := apply(fsm.SetMasterType, fsm.SetMaster{Cluster: "app1", Master: "10.0.0.1:3306", At: at}); err != nil {
		t.Fatalf("configured master refused: %v", err)
	}
	for _, bad := range []fsm.SetMaster{
		{Cluster: "app1", Master: "127.0.0.1:1", At: at},
		{Cluster: "other", Master: "10.0.0.1:3306", At: at},
	} {
		if _, err := apply(fsm.SetMasterType, bad); !errors.Is(err, errUnconfiguredMaster) || !errors.Is(err, fsm.ErrInvalid) {
			t.Fatalf("%+v: %v", bad, err)
		}
	}
	id, err := apply(fsm.RecordOpenType, fsm.RecordOpen{Cluster: "app1", Kind: fsm.KindFailover, Trigger: "manual", OpenedBy: "c1", At: at})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := apply(fsm.RecordCloseType, fsm.RecordClose{RecordID: id.(uint64), At: at, Result: fsm.ResultSuccess, NewMaster: "evil:3306"}); !errors.Is(err, errUnconfiguredMaster) {
		t.Fatalf("close with unconfigured master: %v", err)
	}
	if _, err := apply(fsm.RecordCloseType, fsm.RecordClose{RecordID: id.(uint64), At: at, Result: fsm.ResultSuccess, NewMaster: "10.0.0.2:3306"}); err != nil {
		t.Fatalf("close with configured master: %v", err)
	}
	if cs, _ := state.Cluster("app1"); cs.Master != "10.0.0.2:3306" {
		t.Fatalf("master %q", cs.Master)
	}
}

// Security review item 3: recovery logs in only to configured instances.
func TestDialInstance_RefusesUnconfigured(t *testing.T) {
	cfg := &config.Config{Clusters: []config.Cluster{{Name: "app1", Instances: []config.Instance{{Address: "10.0.0.1:3306"}}}}}
	dial := dialInstance(cfg, fileTopology(cfg), nil)
	_, err := dial(context.Background(), "127.0.0.1:17999", topology.Credentials{User: "admin", Password: "pw"})
	if !errors.Is(err, topology.ErrNotConfigured) {
		t.Fatalf("err = %v, want ErrNotConfigured", err)
	}
}
