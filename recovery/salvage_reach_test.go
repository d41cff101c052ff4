package recovery

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumha/quorumha/fsm"
)

// withReach gives ex a TCP probe that dial answers, with connect timeout ct.
func withReach(ex *Executor, ct time.Duration, dial func(context.Context, string) (net.Conn, error)) *Executor {
	ex.cfg.SalvageConnectTimeout, ex.cfg.DialAgentTCP = ct, dial
	return ex
}

// The old master's host vanished: its agent accepts no connection. Salvage
// is given up once connects have failed for the connect timeout, without
// asking the agent (which would hang for salvage_timeout), and the loss
// window is recorded.
func TestSalvage_VanishedAgentHostIsSkippedAfterTheConnectTimeout(t *testing.T) {
	e := newExecEnv(t)
	id := e.open(t, "")
	ag := &fakeAgent{upTo: 15, hang: true}
	var dialed atomic.Int32
	silent := func(ctx context.Context, addr string) (net.Conn, error) {
		if addr != "agent.test:7080" {
			return nil, errors.New("unexpected address " + addr)
		}
		dialed.Add(1)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	ex := withReach(e.salvager(ag, fakeApplier(e.f, nil), time.Hour), 50*time.Millisecond, silent)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // far below salvage_timeout
	defer cancel()
	if res, err := ex.Execute(ctx, e.cc, id); err != nil || res != fsm.ResultSuccess {
		t.Fatalf("Execute = %q, %v", res, err)
	}
	e.requireFailedOver(t, id)
	r := e.record(t, id)
	s := r.Salvage
	if s == nil || s.Outcome != fsm.SalvageUnreachable || !strings.Contains(s.LossWindow, "no TCP connection") ||
		!strings.Contains(s.LossWindow, "0-1-12") {
		t.Fatalf("salvage report %+v", s)
	}
	if st := stepOf(r, StepSalvage); st.Outcome != fsm.OutcomeWarning {
		t.Errorf("salvage step %+v, want a warning", st)
	}
	if dialed.Load() == 0 {
		t.Error("the agent's host was never dialed")
	}
}

// An agent that accepts connections but is slow keeps the whole
// salvage_timeout: the connect timeout only judges connecting.
func TestSalvage_ReachableSlowAgentKeepsTheSalvageTimeout(t *testing.T) {
	e := newExecEnv(t)
	id := e.open(t, "")
	accepts := func(context.Context, string) (net.Conn, error) {
		a, b := net.Pipe()
		_ = b.Close()
		return a, nil
	}
	ex := withReach(e.salvager(&fakeAgent{upTo: 15}, fakeApplier(e.f, nil), time.Minute), 10*time.Millisecond, accepts)
	if res, err := ex.Execute(context.Background(), e.cc, id); err != nil || res != fsm.ResultSuccess {
		t.Fatalf("Execute = %q, %v", res, err)
	}
	if s := e.record(t, id).Salvage; s == nil || s.Outcome != fsm.SalvageApplied || s.Applied != 3 {
		t.Fatalf("salvage report %+v, want the 3 transactions only the dead master had applied", s)
	}
}
