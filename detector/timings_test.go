package detector

import (
	"errors"
	"testing"
	"time"
)

func TestSetTimings_RefusesInvalidAndKeepsOld(t *testing.T) {
	h := startDetector(t, nil, nil)
	before := h.det.Timings()
	bad := []Timings{
		{ProbeInterval: 0, ProbeTimeout: time.Second, FailureThreshold: 1, Freshness: time.Second},
		{ProbeInterval: time.Second, ProbeTimeout: -1, FailureThreshold: 1, Freshness: time.Second},
		{ProbeInterval: time.Second, ProbeTimeout: time.Second, FailureThreshold: 0, Freshness: time.Second},
		{ProbeInterval: time.Second, ProbeTimeout: time.Second, FailureThreshold: 1},
	}
	for _, tm := range bad {
		if err := h.det.SetTimings(tm); !errors.Is(err, ErrBadConfig) {
			t.Errorf("SetTimings(%+v) = %v, want ErrBadConfig", tm, err)
		}
	}
	if got := h.det.Timings(); got != before {
		t.Fatalf("timings changed by refused sets: %+v, was %+v", got, before)
	}
}

// A lowered failure_threshold counts from the next probe: the running loop
// reads the new value, not the one it started with.
func TestSetTimings_ThresholdTakesEffectOnNextProbe(t *testing.T) {
	h := startDetector(t, nil, nil)
	h.prober.setMaster(testMaster, ReasonRefused)
	h.prober.setReplica(ReplicaObservation{Replica: testReplica, Reachable: true, MasterHost: "10.0.0.1", MasterPort: 3306, IORunning: "Connecting"})
	if a := h.step(); a.State != AssessSuspect {
		t.Fatalf("first failure with threshold 3: %s (%s)", a.State, a.Reason)
	}
	tm := h.det.Timings()
	tm.FailureThreshold = 2
	if err := h.det.SetTimings(tm); err != nil {
		t.Fatal(err)
	}
	if a := h.step(); a.State != AssessDeadConfirmed {
		t.Fatalf("second failure with threshold 2: %s (%s)", a.State, a.Reason)
	}
}

func TestProberSetTimeout(t *testing.T) {
	p := NewProber(ProberConfig{Timeout: time.Second})
	defer p.Close()
	p.SetTimeout(3 * time.Second)
	if p.timeout() != 3*time.Second {
		t.Fatalf("timeout %s", p.timeout())
	}
	p.SetTimeout(0)
	if p.timeout() != 3*time.Second {
		t.Fatalf("a zero timeout replaced the old one: %s", p.timeout())
	}
}
