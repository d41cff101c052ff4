package detector

import (
	"slices"
	"testing"
	"time"
)

func TestDetector_UpsertAndRemoveClusterWhileRunning(t *testing.T) {
	h := startDetector(t, nil, nil)
	h.prober.setMaster("10.0.9.1:3306", ReasonOK)

	// A new cluster gets a probe loop of its own.
	added, err := h.det.UpsertCluster(ClusterSpec{Name: "app2", Master: "10.0.9.1:3306", Instances: []string{"10.0.9.1:3306", "10.0.9.2:3306"}})
	if err != nil || !added {
		t.Fatalf("UpsertCluster(app2) = %v, %v", added, err)
	}
	waitFor(t, 5*time.Second, "app2 assessed", func() (bool, string) {
		_, ok := h.det.Assessment("app2")
		return ok, "no assessment yet"
	})

	// A new instance of a watched cluster becomes a replica; the watched
	// master stays although the caller names another.
	if _, err := h.det.UpsertCluster(ClusterSpec{Name: "app1", Master: testReplica,
		Instances: []string{testMaster, testReplica, "10.0.0.9:3306"}}); err != nil {
		t.Fatal(err)
	}
	spec, _ := h.det.Cluster("app1")
	if spec.Master != testMaster || !slices.Equal(spec.Replicas, []string{testReplica, "10.0.0.9:3306"}) {
		t.Errorf("app1 spec = master %s replicas %v", spec.Master, spec.Replicas)
	}
	// An instance list without the watched master moves to the named one.
	if _, err := h.det.UpsertCluster(ClusterSpec{Name: "app1", Master: testReplica, Instances: []string{testReplica}}); err != nil {
		t.Fatal(err)
	}
	if spec, _ := h.det.Cluster("app1"); spec.Master != testReplica || len(spec.Replicas) != 0 {
		t.Errorf("app1 spec = master %s replicas %v", spec.Master, spec.Replicas)
	}
	// A master outside the instances is refused.
	if _, err := h.det.UpsertCluster(ClusterSpec{Name: "app3", Master: "x:1", Instances: []string{"y:1"}}); err == nil {
		t.Error("UpsertCluster with an unlisted master succeeded")
	}

	if !h.det.RemoveCluster("app2") || h.det.RemoveCluster("app2") {
		t.Error("RemoveCluster(app2) twice: want true then false")
	}
	if _, ok := h.det.Assessment("app2"); ok {
		t.Error("removed cluster still assessed")
	}
	if got := h.det.ClusterNames(); !slices.Equal(got, []string{"app1"}) {
		t.Errorf("ClusterNames = %v", got)
	}
}
