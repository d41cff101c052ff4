package recovery

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumha/quorumha/fsm"
)

func TestHookOutcome_Table(t *testing.T) {
	tests := []struct {
		name string
		in   HookResult
		want string
	}{
		{"exit 0", HookResult{ExitCode: 0}, HookOutcomeOK},
		{"exit 10 is MHA's warning, not a failure", HookResult{ExitCode: 10}, HookOutcomeOK},
		{"exit 1", HookResult{ExitCode: 1}, HookOutcomeFailed},
		{"killed at the timeout", HookResult{ExitCode: -1, Err: errors.Join(errors.New("hook /x"), ErrHookTimeout)}, HookOutcomeTimeout},
		{"cancelled", HookResult{ExitCode: -1, Err: context.Canceled}, HookOutcomeFailed},
		{"could not start", HookResult{ExitCode: -1, Err: errors.New("exec: no such file")}, HookOutcomeFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HookOutcome(tt.in); got != tt.want {
				t.Errorf("HookOutcome(%+v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

type recordedHookMetrics struct {
	mu   sync.Mutex
	runs []string
}

func (m *recordedHookMetrics) HookRan(kind HookKind, outcome string, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.runs = append(m.runs, string(kind)+" "+outcome)
}

func TestExecutor_ObservesEveryHookRun(t *testing.T) {
	e := newExecEnv(t)
	e.cc.Hooks = ClusterHooks{IPFailover: "/ip", Shutdown: "/shut", Report: "/report"}
	e.hooks.exit = map[string]int{"/report ": 1}
	m := &recordedHookMetrics{}
	ex := NewExecutor(ExecutorConfig{NodeID: "c1", ApplyTimeout: time.Second, Now: func() time.Time { return t0 }, Lease: leaseLapsed(), Metrics: m},
		e.g, e.g.f, e.f.dial, e.hooks.run)
	id := e.open(t, "")
	if res, err := ex.Execute(context.Background(), e.cc, id); err != nil || res != fsm.ResultSuccess {
		t.Fatalf("Execute = %q, %v", res, err)
	}
	want := []string{"ip_failover ok", "shutdown ok", "ip_failover ok", "report failed"}
	if !slices.Equal(m.runs, want) {
		t.Fatalf("observed %v, want %v", m.runs, want)
	}
}

func TestHookMetrics_RegistersZeroSeriesAndNilIsSafe(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewHookMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.HookRan(HookShutdown, HookOutcomeTimeout, 2*time.Second)
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 {
		t.Fatalf("Gather = %d families, %v", len(mfs), err)
	}
	if got := len(mfs[0].GetMetric()); got != 12 {
		t.Errorf("series = %d, want 4 hooks x 3 outcomes", got)
	}
	var nilMetrics *HookMetrics
	nilMetrics.HookRan(HookReport, HookOutcomeOK, time.Second) // must not panic
	if _, err := NewHookMetrics(reg); err == nil {
		t.Error("registering twice on one registry succeeded")
	}
}

// TestExecutor_EveryLogLineNamesClusterAndRecord: the executor logs through
// a per-record logger, so an operator can grep one failover.
func TestExecutor_EveryLogLineNamesClusterAndRecord(t *testing.T) {
	e := newExecEnv(t)
	e.cc.Hooks = ClusterHooks{IPFailover: "/ip", Report: "/report"}
	var buf strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &buf, mu: &mu}, nil))
	ex := NewExecutor(ExecutorConfig{NodeID: "c1", ApplyTimeout: time.Second, Now: func() time.Time { return t0 }, Lease: leaseLapsed(), Logger: logger},
		e.g, e.g.f, e.f.dial, e.hooks.run)
	id := e.open(t, "")
	if res, err := ex.Execute(context.Background(), e.cc, id); err != nil || res != fsm.ResultSuccess {
		t.Fatalf("Execute = %q, %v", res, err)
	}
	mu.Lock()
	defer mu.Unlock()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) < 5 {
		t.Fatalf("only %d log lines", len(lines))
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		if m["cluster"] != "app1" || m["record"] != float64(id) {
			t.Errorf("log line without cluster=app1 record=%d: %s", id, l)
		}
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
