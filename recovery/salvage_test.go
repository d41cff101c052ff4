package recovery

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/topology"
)

// fakeAgent serves a dead master's binlog of one file in which transaction
// 0-1-k occupies bytes [100k, 100k+100); Raw writes one line per transaction
// in the range (and "header" for the header), which fakeApplier replays.
type fakeAgent struct {
	upTo       int   // last complete transaction
	incomplete int64 // trailing bytes after it
	hang       bool  // every call waits for the context
	running    *bool // what Tail says of the server process
	scans      int
	have       string // the position the last Scan was asked to leave out
}

const fakeBinlog = "bin.000001"

func (a *fakeAgent) wait(ctx context.Context) error {
	if a.hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (a *fakeAgent) Files(ctx context.Context) ([]BinlogFile, error) {
	return []BinlogFile{{Name: fakeBinlog, Size: int64(100*(a.upTo+1)) + a.incomplete}}, a.wait(ctx)
}

func (a *fakeAgent) Scan(ctx context.Context, name string, from int64, have string) (BinlogScan, error) {
	a.scans++
	a.have = have
	sc := BinlogScan{Name: name, HeaderEnd: 100, CompleteEnd: int64(100 * (a.upTo + 1)), IncompleteBytes: a.incomplete}
	for k := 1; k <= a.upTo; k++ {
		if int64(100*k) >= from {
			sc.Transactions = append(sc.Transactions, BinlogTrx{GTID: gtid(k), File: name, Start: int64(100 * k), End: int64(100*k + 100)})
		}
	}
	return sc, a.wait(ctx)
}

func (a *fakeAgent) Raw(ctx context.Context, _ string, from, to int64, w io.Writer) (int64, error) {
	if err := a.wait(ctx); err != nil {
		return 0, err
	}
	for off := from; off < to; off += 100 {
		line := "header"
		if off > 0 {
			line = gtid(int(off / 100))
		}
		fmt.Fprintln(w, line)
	}
	return to - from, nil
}

func (a *fakeAgent) Tail(ctx context.Context) (BinlogTail, error) {
	return BinlogTail{File: fakeBinlog, Pos: int64(100 * (a.upTo + 1)), GTID: gtid(a.upTo), ServerRunning: a.running}, a.wait(ctx)
}

// fakeApplier replays the lines written by fakeAgent.Raw onto a fake node,
// in strict GTID order as gtid_strict_mode would insist.
func fakeApplier(f *fakeCluster, fail error) BinlogApplier {
	return func(_ context.Context, addr string, _ topology.Credentials, _ topology.Flavor, files []string) error {
		if fail != nil {
			return fail
		}
		for _, path := range files {
			fh, err := os.Open(path)
			if err != nil {
				return err
			}
			sc := bufio.NewScanner(fh)
			for sc.Scan() {
				if sc.Text() == "header" {
					continue
				}
				var seq int
				if _, err := fmt.Sscanf(sc.Text(), "0-1-%d", &seq); err != nil {
					fh.Close()
					return err
				}
				var bad error
				f.set(addr, func(n *fakeNode) {
					if seq != n.seq+1 {
						bad = fmt.Errorf("gtid_strict_mode: %s after %s", gtid(seq), gtid(n.seq))
						return
					}
					n.seq = seq
				})
				if bad != nil {
					fh.Close()
					return bad
				}
			}
			fh.Close()
		}
		return nil
	}
}

func (e *execEnv) salvager(ag BinlogAgent, apply BinlogApplier, timeout time.Duration) *Executor {
	e.cc.Instances[0].Agent = "http://agent.test:7080"
	return NewExecutor(ExecutorConfig{NodeID: "c1", ApplyTimeout: time.Second, Now: func() time.Time { return t0 }, Lease: leaseLapsed(),
		Agents: func(cluster, url string) (BinlogAgent, error) {
			if cluster != "app1" || url != "http://agent.test:7080" {
				return nil, fmt.Errorf("unexpected agent %s %s", cluster, url)
			}
			return ag, nil
		}, ApplyBinlog: apply, SalvageTimeout: timeout},
		e.g, e.g.f, e.f.dial, e.hooks.run)
}

func stepOf(r fsm.Record, name string) fsm.Step {
	for _, s := range r.Steps {
		if s.Name == name {
			return s
		}
	}
	return fsm.Step{}
}

func TestSalvage_AppliesWhatOnlyTheDeadMasterHad(t *testing.T) {
	e := newExecEnv(t)
	ag := &fakeAgent{upTo: 15, incomplete: 57} // replicas got up to 12
	id := e.open(t, "")
	res, err := e.salvager(ag, fakeApplier(e.f, nil), time.Second).Execute(context.Background(), e.cc, id)
	if err != nil || res != fsm.ResultSuccess {
		t.Fatalf("Execute = %q, %v", res, err)
	}
	r := e.record(t, id)
	if a, b := e.f.node(rA), e.f.node(rB); a.seq != 15 || b.seq != 15 || b.master != rA {
		t.Fatalf("new master at %d, other replica at %d following %q; want both at 15", a.seq, b.seq, b.master)
	}
	s := r.Salvage
	if s == nil || s.Outcome != fsm.SalvageApplied || s.Applied != 3 || !slices.Equal(s.GTIDs, []string{"0-1-13", "0-1-14", "0-1-15"}) {
		t.Fatalf("salvage report %+v", s)
	}
	if s.Before != "0-1-12" || s.Recovered != "0-1-15" || s.MasterLast != "0-1-15" || s.LossWindow != "" || s.Target != rA {
		t.Errorf("salvage positions %+v", s)
	}
	if ag.have != "0-1-12" {
		t.Errorf("the agent was asked for what %q lacks, want what the new master has (0-1-12)", ag.have)
	}
	if len(s.Skipped) != 1 || s.Skipped[0].Bytes != 57 || s.Skipped[0].Start != 1600 || !strings.Contains(s.Skipped[0].Reason, "incomplete") {
		t.Errorf("skipped = %+v, want the 57 trailing bytes at 1600", s.Skipped)
	}
	if st := stepOf(r, StepSalvage); st.Outcome != fsm.OutcomeOK || !strings.Contains(st.Detail, "3 transactions") {
		t.Errorf("salvage step %+v", st)
	}
	// Salvage came before promote, which came before repoint.
	var order []string
	for _, st := range r.Steps {
		order = append(order, st.Name)
	}
	if i, j := slices.Index(order, StepSalvage), slices.Index(order, StepPromote); i < 0 || j < i {
		t.Errorf("steps %v: salvage must precede promote", order)
	}
}

// An agent that sees the server process still running makes the salvage a
// warning: the server may commit more after it was read.
func TestSalvage_ServerStillRunningIsAWarning(t *testing.T) {
	e := newExecEnv(t)
	running := true
	id := e.open(t, "")
	if res, err := e.salvager(&fakeAgent{upTo: 13, running: &running}, fakeApplier(e.f, nil), time.Second).Execute(context.Background(), e.cc, id); err != nil || res != fsm.ResultSuccess {
		t.Fatalf("Execute = %q, %v", res, err)
	}
	r := e.record(t, id)
	if st := stepOf(r, StepSalvage); st.Outcome != fsm.OutcomeWarning || !strings.Contains(st.Detail, "still running") {
		t.Errorf("salvage step %+v", st)
	}
	if r.Salvage == nil || r.Salvage.Applied != 1 || e.f.node(rA).seq != 13 {
		t.Errorf("salvage %+v, new master at %d", r.Salvage, e.f.node(rA).seq)
	}
}

func TestSalvage_NothingMissing(t *testing.T) {
	e := newExecEnv(t)
	id := e.open(t, "")
	if res, err := e.salvager(&fakeAgent{upTo: 12}, fakeApplier(e.f, nil), time.Second).Execute(context.Background(), e.cc, id); err != nil || res != fsm.ResultSuccess {
		t.Fatalf("Execute = %q, %v", res, err)
	}
	e.requireFailedOver(t, id)
	if s := e.record(t, id).Salvage; s == nil || s.Outcome != fsm.SalvageNothing || s.Applied != 0 || s.LossWindow != "" {
		t.Fatalf("salvage report %+v", s)
	}
}

func TestSalvage_FailoverGoesOnWithoutIt(t *testing.T) {
	tests := []struct {
		name    string
		agent   *fakeAgent
		apply   error
		noAgent bool
		outcome string
		step    fsm.Outcome
	}{
		{"agent does not answer", &fakeAgent{upTo: 15, hang: true}, nil, false, fsm.SalvageUnreachable, fsm.OutcomeWarning},
		{"apply fails", &fakeAgent{upTo: 15}, errors.New("mariadb: ERROR 1045"), false, fsm.SalvageFailed, fsm.OutcomeWarning},
		{"no agent configured", nil, nil, true, fsm.SalvageNoAgent, fsm.OutcomeSkipped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newExecEnv(t)
			id := e.open(t, "")
			var ex *Executor
			if tt.noAgent {
				ex = e.executor("c1")
			} else {
				ex = e.salvager(tt.agent, fakeApplier(e.f, tt.apply), 50*time.Millisecond)
			}
			if res, err := ex.Execute(context.Background(), e.cc, id); err != nil || res != fsm.ResultSuccess {
				t.Fatalf("Execute = %q, %v", res, err)
			}
			e.requireFailedOver(t, id) // at 12: what the survivors had
			r := e.record(t, id)
			s := r.Salvage
			if s == nil || s.Outcome != tt.outcome || s.Applied != 0 {
				t.Fatalf("salvage report %+v", s)
			}
			if !strings.Contains(s.LossWindow, "0-1-12") || !strings.Contains(s.LossWindow, mOld) {
				t.Errorf("loss window %q does not name the dead master and the recovered position", s.LossWindow)
			}
			if st := stepOf(r, StepSalvage); st.Outcome != tt.step {
				t.Errorf("salvage step %+v, want %s", st, tt.step)
			}
		})
	}
}

func TestSelectMissing(t *testing.T) {
	trx := func(file string, seq int) BinlogTrx {
		return BinlogTrx{GTID: gtid(seq), File: file, Start: int64(100 * seq), End: int64(100*seq + 100)}
	}
	scan := func(name, list string, incomplete int64, seqs ...int) BinlogScan {
		sc := BinlogScan{Name: name, HeaderEnd: 100, GTIDList: list, IncompleteBytes: incomplete}
		for _, s := range seqs {
			sc.Transactions = append(sc.Transactions, trx(name, s))
			sc.CompleteEnd = int64(100*s + 100)
		}
		return sc
	}
	have := func(s string) salvageFrom { return salvageFrom{GTID: true, Have: topology.MustParseMariaDBPos(s)} }
	tests := []struct {
		name    string
		from    salvageFrom
		scans   []BinlogScan
		want    []string
		skipped int
		wantErr string
	}{
		{"gtid: only what the target lacks", have("0-1-11"), []BinlogScan{scan("b.1", "0-1-9", 0, 10, 11, 12, 13)}, []string{"0-1-12", "0-1-13"}, 0, ""},
		{"gtid: across files", have("0-1-11"), []BinlogScan{scan("b.1", "", 0, 10, 11, 12), scan("b.2", "0-1-12", 30, 13)}, []string{"0-1-12", "0-1-13"}, 1, ""},
		{"gtid: nothing missing", have("0-1-13"), []BinlogScan{scan("b.1", "", 0, 12, 13)}, nil, 0, ""},
		{"gtid: other domain is missing", have("0-1-13"), []BinlogScan{{Name: "b.1", Transactions: []BinlogTrx{{GTID: "1-1-5", Start: 200, End: 300}}}}, []string{"1-1-5"}, 0, ""},
		{"gtid: MySQL GTIDs refused", have("0-1-1"), []BinlogScan{{Name: "b.1", Transactions: []BinlogTrx{{GTID: "3e11fa47-71ca-11e1-9e33-c80aa9429562:5"}}}}, nil, 0, "not a MariaDB GTID"},
		{"gtid: trx without gtid refused", have("0-1-1"), []BinlogScan{{Name: "b.1", Transactions: []BinlogTrx{{Start: 4}}}}, nil, 0, "without GTID"},
		{"file: from the coordinate", salvageFrom{Coord: topology.BinlogCoord{File: "b.1", Pos: 1200}}, []BinlogScan{scan("b.1", "", 0, 11, 12, 13), scan("b.2", "", 0, 14)}, []string{"0-1-12", "0-1-13", "0-1-14"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := selectMissing(tt.from, tt.scans)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, x := range plan.trxs() {
				got = append(got, trxID(x))
			}
			if !slices.Equal(got, tt.want) || len(plan.Skipped) != tt.skipped {
				t.Errorf("got %v skipped %d, want %v skipped %d", got, len(plan.Skipped), tt.want, tt.skipped)
			}
		})
	}
}

func TestFetchScans_StopsWhereTheTargetsKnowledgeEnds(t *testing.T) {
	ag := &multiAgent{scans: map[string]BinlogScan{
		"b.1": {Name: "b.1", GTIDList: ""},
		"b.2": {Name: "b.2", GTIDList: "0-1-10"},
		"b.3": {Name: "b.3", GTIDList: "0-1-20"},
	}}
	got, err := fetchScans(context.Background(), ag, salvageFrom{GTID: true, Have: topology.MustParseMariaDBPos("0-1-15")})
	if err != nil || len(got) != 2 || got[0].Name != "b.2" || got[1].Name != "b.3" {
		t.Fatalf("fetchScans = %v, %v; want b.2, b.3", got, err)
	}
	if _, err := fetchScans(context.Background(), &multiAgent{scans: map[string]BinlogScan{"b.3": {Name: "b.3", GTIDList: "0-1-20"}}},
		salvageFrom{GTID: true, Have: topology.MustParseMariaDBPos("0-1-15")}); err == nil || !strings.Contains(err.Error(), "purged") {
		t.Fatalf("purged binlogs: err = %v", err)
	}
	if r := mergeRanges([]BinlogTrx{{Start: 100, End: 200}, {Start: 200, End: 300}, {Start: 400, End: 500}}); !slices.Equal(r, [][2]int64{{100, 300}, {400, 500}}) {
		t.Errorf("mergeRanges = %v", r)
	}
}

type multiAgent struct{ scans map[string]BinlogScan }

func (m *multiAgent) Files(context.Context) ([]BinlogFile, error) {
	var out []BinlogFile
	for _, n := range []string{"b.1", "b.2", "b.3"} {
		if _, ok := m.scans[n]; ok {
			out = append(out, BinlogFile{Name: n})
		}
	}
	return out, nil
}
func (m *multiAgent) Scan(_ context.Context, name string, _ int64, _ string) (BinlogScan, error) {
	return m.scans[name], nil
}
func (m *multiAgent) Raw(context.Context, string, int64, int64, io.Writer) (int64, error) {
	return 0, nil
}
func (m *multiAgent) Tail(context.Context) (BinlogTail, error) { return BinlogTail{}, nil }

// With file/position replication a salvage that a dead leader began is not
// applied again: nothing tells which of its transactions already landed.
func TestSalvage_FilePositionResumeIsNotReapplied(t *testing.T) {
	e := newExecEnv(t)
	e.cc.ReplicationMode = "file"
	ex := e.salvager(&fakeAgent{upTo: 15}, func(context.Context, string, topology.Credentials, topology.Flavor, []string) error {
		t.Error("a resumed file/position salvage applied binlog files")
		return nil
	}, time.Second)
	id := e.open(t, "")
	run := &failoverRun{e: ex, cc: e.cc, id: id, conns: map[string]Instance{}}
	run.rec = e.record(t, id)
	run.rec.Candidates = []fsm.Candidate{{Address: rA, Chosen: true}}
	run.rec.Steps = []fsm.Step{{Seq: 6, Name: StepSalvage, Leader: "c2", Outcome: fsm.OutcomeRunning}}
	res := run.salvage(context.Background())
	if res.outcome != fsm.OutcomeWarning || !strings.Contains(res.detail, "previous salvage was interrupted") {
		t.Fatalf("resumed salvage = %+v", res)
	}
	if s := e.record(t, id).Salvage; s == nil || s.Outcome != fsm.SalvageNotPossible {
		t.Fatalf("salvage report %+v", s)
	}
}
