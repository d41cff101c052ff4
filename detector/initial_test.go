package detector

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/quorumha/quorumha/fsm"
)

func TestInitialMaster_Precedence(t *testing.T) {
	found := func(m string) MasterFinder {
		return func(context.Context, []string) (string, bool) { return m, m != "" }
	}
	addrs := []string{"a:1", "b:1", "c:1"}
	cases := []struct {
		name, recorded string
		find           MasterFinder
		want           string
	}{
		{"discovery wins over the record", "a:1", found("b:1"), "b:1"},
		{"record when discovery finds none", "c:1", found(""), "c:1"},
		{"first address when nothing else", "", found(""), "a:1"},
		{"no finder", "c:1", nil, "c:1"},
		// Security review item 2: never an address the config does not name.
		{"unconfigured discovered master ignored", "c:1", found("evil:1"), "c:1"},
		{"unconfigured recorded master ignored", "evil:1", found(""), "a:1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, why := InitialMaster(context.Background(), addrs, c.recorded, c.find)
			if got != c.want || why == "" {
				t.Fatalf("InitialMaster = %q (%s), want %q", got, why, c.want)
			}
		})
	}
}

type fakeMasters struct {
	mu sync.Mutex
	m  map[string]fsm.ClusterState
}

func (f *fakeMasters) Cluster(name string) (fsm.ClusterState, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cs, ok := f.m[name]
	return cs, ok
}

func (f *fakeMasters) set(name, master string, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[name] = fsm.ClusterState{Name: name, Master: master, MasterSetAt: at}
}

func TestFollowRecordedMasters_MovesOnNewRecordOnly(t *testing.T) {
	d, err := New(Config{Controller: "c1", Clusters: []ClusterSpec{{Name: "app1", Master: "b:1", Replicas: []string{"a:1", "c:1"}}}},
		newFakeProber(RealClock{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The record predates start-up and names another master: discovery's
	// choice (b:1) stands.
	src := &fakeMasters{m: map[string]fsm.ClusterState{}}
	src.set("app1", "a:1", t0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		d.FollowRecordedMasters(ctx, src, 5*time.Millisecond, slog.New(slog.DiscardHandler))
		close(done)
	}()
	defer func() { cancel(); <-done }()

	time.Sleep(50 * time.Millisecond) // let several rounds pass; nothing may move
	if spec, _ := d.Cluster("app1"); spec.Master != "b:1" {
		t.Fatalf("master = %s before any new record, want b:1", spec.Master)
	}
	src.set("app1", "c:1", t0.Add(time.Minute))
	deadline := time.Now().Add(10 * time.Second)
	for {
		spec, _ := d.Cluster("app1")
		if spec.Master == "c:1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("master = %s, want c:1 after the record changed", spec.Master)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
