package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
	"github.com/quorumha/quorumha/tests/harness"
)

// foOptions configures one failover scenario's sandbox and controllers.
type foOptions struct {
	// Instances adds YAML keys (e.g. "candidate_master: true") to the
	// instance with that index.
	Instances map[int][]string
	// Hooks are the lines under the cluster's hooks: key.
	Hooks []string
	// Env is added to every controller's environment.
	Env []string
	// Async replicates without semi-sync, so the master can commit what no
	// replica has received.
	Async bool
	// ClusterYAML adds lines (indented 4 spaces) to the cluster entry.
	ClusterYAML []string
	// ExtraYAML is added to every controller's config after the detector
	// settings (e.g. a recovery: section).
	ExtraYAML string
	// NoAgents runs no host agents. By default, unless ClusterYAML already
	// configures agents, an agent (with the server's pid file) runs beside
	// every instance: recovery.fence is required, and after a kill -9 the
	// agent saying the server is not running is the failover's fence proof.
	NoAgents bool
	// Fence sets recovery.fence ("" keeps the default, required).
	Fence string
	// Net runs the controllers in its zones 0..2.
	Net *harness.Net
}

// foAgentToken is the bearer token of the agents startFailoverEnvOn runs.
const foAgentToken = "fo-agent-token"

// withAgents starts an agent beside every instance of sb and returns opts
// configured to use them, unless opts asks for none or names its own.
func withAgents(ctx context.Context, t *testing.T, sb *sandbox.Sandbox, opts foOptions) foOptions {
	t.Helper()
	if opts.NoAgents || slices.Contains(opts.ClusterYAML, "agent:") {
		return opts
	}
	tokenFile := filepath.Join(t.TempDir(), "fo-agent.token")
	if err := os.WriteFile(tokenFile, []byte(foAgentToken), 0o600); err != nil {
		t.Fatal(err)
	}
	opts.ClusterYAML = append(slices.Clone(opts.ClusterYAML), "agent:", "  token_file: "+tokenFile)
	inst := map[int][]string{}
	for i, kv := range opts.Instances {
		inst[i] = slices.Clone(kv)
	}
	for i := range sb.Instances() {
		if slices.ContainsFunc(inst[i], func(kv string) bool { return strings.HasPrefix(kv, "agent:") }) {
			continue // the test brings its own agent for this instance
		}
		ag := startAgent(ctx, t, sb, i, foAgentToken)
		inst[i] = append(inst[i], "agent: "+ag.url)
	}
	opts.Instances = inst
	return opts
}

// foEnv is one failover scenario: a GTID, semi-sync sandbox (master and two
// replicas) watched by three controllers on loopback, with the split-brain
// sampler running from the start.
type foEnv struct {
	det     *detEnv
	sb      *sandbox.Sandbox
	g       *harness.Group
	sampler *splitBrainSampler
}

// foClustersYAML configures the sandbox cluster with opts' per-instance keys
// and hooks.
func foClustersYAML(sb *sandbox.Sandbox, opts foOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: %s\n    user: %s\n    password: %s\n    repl_user: %s\n    repl_password: %s\n",
		detCluster, sandbox.AdminUser, sandbox.AdminPassword, sandbox.ReplUser, sandbox.ReplPassword)
	for _, l := range opts.ClusterYAML {
		fmt.Fprintf(&b, "    %s\n", l)
	}
	if len(opts.Hooks) > 0 {
		b.WriteString("    hooks:\n")
		for _, h := range opts.Hooks {
			fmt.Fprintf(&b, "      %s\n", h)
		}
	}
	b.WriteString("    instances:\n")
	for i, in := range sb.Instances() {
		fmt.Fprintf(&b, "      - address: %s\n", in.Addr())
		for _, kv := range opts.Instances[i] {
			fmt.Fprintf(&b, "        %s\n", kv)
		}
	}
	return b.String()
}

// startFailoverEnv starts the sandbox, the controllers and the sampler, and
// waits until every controller sees the master healthy.
func startFailoverEnv(ctx context.Context, t *testing.T, opts foOptions) *foEnv {
	t.Helper()
	sb := sandbox.New(t, sandbox.Options{Replicas: 2, GTID: true, SemiSync: !opts.Async})
	return startFailoverEnvOn(ctx, t, sb, opts)
}

// startFailoverEnvOn is startFailoverEnv on a sandbox the caller started.
func startFailoverEnvOn(ctx context.Context, t *testing.T, sb *sandbox.Sandbox, opts foOptions) *foEnv {
	t.Helper()
	path := bin.Path(t)
	if slices.ContainsFunc(opts.Env, func(e string) bool { return strings.HasPrefix(e, "QUORUMHA_TEST_") }) {
		path = bin.TestHooksPath(t) // a production binary ignores QUORUMHA_TEST_*
	}
	opts = withAgents(ctx, t, sb, opts)
	extra := detectYAML + opts.ExtraYAML
	if opts.Fence != "" {
		// One recovery: section: YAML refuses a key twice.
		if strings.Contains(extra, "recovery:\n") {
			extra = strings.Replace(extra, "recovery:\n", "recovery:\n  fence: "+opts.Fence+"\n", 1)
		} else {
			extra += "recovery:\n  fence: " + opts.Fence + "\n"
		}
	}
	g := harness.StartGroup(t, path, harness.GroupOptions{N: 3, ClustersYAML: foClustersYAML(sb, opts),
		ExtraYAML: extra, Env: opts.Env, Net: opts.Net})
	if _, err := g.WaitLeader(ctx, g.Nodes); err != nil {
		t.Fatal(err)
	}
	e := &foEnv{det: &detEnv{sb: sb, g: g, master: sb.Instance(0).Addr()}, sb: sb, g: g}
	e.det.waitHealthy(ctx, t)
	e.sampler = startSplitBrainSampler(t, sb)
	return e
}

// addr is instance i's address as configured.
func (e *foEnv) addr(i int) string { return e.sb.Instance(i).Addr() }

// index returns the sandbox index of an address, or -1.
func (e *foEnv) index(addr string) int {
	for i, in := range e.sb.Instances() {
		if in.Addr() == addr {
			return i
		}
	}
	return -1
}

// ---- the write load, following the master --------------------------------

// masterFollower gives a write load the DSN of the current master: the
// address GET /v1/clusters/sandbox/master names on any running controller.
// The answer is cached and asked again when a write has failed since the
// last look, or every two seconds; while no controller names a master
// (during a failover) the last one is kept.
type masterFollower struct {
	sb *sandbox.Sandbox
	g  *harness.Group

	mu         sync.Mutex
	idx        int
	checked    time.Time
	failedSeen int
	failed     func() int // the load's failure count; nil until set
}

func (m *masterFollower) setFailed(f func() int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failed = f
}

// dsn is the WriteLoad's dsnFunc.
func (m *masterFollower) dsn() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	failed := 0
	if m.failed != nil {
		failed = m.failed()
	}
	if failed != m.failedSeen || time.Since(m.checked) > 2*time.Second {
		m.failedSeen, m.checked = failed, time.Now()
		if i, ok := m.resolve(); ok {
			m.idx = i
		}
	}
	return m.sb.DSN(m.idx, sandbox.AppUser, sandbox.AppPassword)
}

// resolve asks the running controllers, in turn, for the master.
func (m *masterFollower) resolve() (int, bool) {
	for _, c := range m.g.Running() {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		var r struct {
			Master string `json:"master"`
		}
		_, err := harness.Do(ctx, http.MethodGet, c.URL("/v1/clusters/"+detCluster+"/master"), nil, &r)
		cancel()
		if err != nil {
			continue
		}
		for i, in := range m.sb.Instances() {
			if in.Addr() == r.Master {
				return i, true
			}
		}
	}
	return 0, false
}

// startFollowingLoad starts a write load that follows the master and waits
// for a few acknowledged writes.
func (e *foEnv) startFollowingLoad(ctx context.Context, t *testing.T) *harness.WriteLoad {
	t.Helper()
	f := &masterFollower{sb: e.sb, g: e.g}
	w := harness.StartWriteLoad(t, f.dsn, 100*time.Millisecond)
	f.setFailed(func() int { return w.Snapshot().Failed })
	err := harness.Poll(ctx, 50*time.Millisecond, func() error {
		if s := w.Snapshot(); len(s.Acked) < 5 {
			return fmt.Errorf("%d writes acknowledged, %d failed (%s)", len(s.Acked), s.Failed, s.LastErr)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("write load: %v", err)
	}
	return w
}

// waitAckedAfter polls until the load has acknowledged more than n writes:
// after a failover, that proves writes reach the new master.
func waitAckedAfter(ctx context.Context, t *testing.T, w *harness.WriteLoad, n int) {
	t.Helper()
	err := harness.Poll(ctx, 100*time.Millisecond, func() error {
		if s := w.Snapshot(); len(s.Acked) < n+5 {
			return fmt.Errorf("%d writes acknowledged (%d before), %d failed (%s)", len(s.Acked), n, s.Failed, s.LastErr)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("writes never reached the new master: %v", err)
	}
}

// ---- the split-brain sampler ---------------------------------------------

// splitBrainSampler is a harness.ReadOnlySampler over every instance of the
// sandbox, read from the root namespace, checked at the end of the test by
// harness.CheckNeverTwoWritable. A sample that times out or fails is
// unknown, never read-only: a server that cannot be reached may still take
// writes from clients that can reach it.
type splitBrainSampler struct {
	s     *harness.ReadOnlySampler
	addrs []string
	once  sync.Once
}

// startSplitBrainSampler starts sampling sb; it stops (and fails the test
// on a violation) at the end of the test.
func startSplitBrainSampler(t *testing.T, sb *sandbox.Sandbox) *splitBrainSampler {
	t.Helper()
	s := newSplitBrainSampler(t, sb)
	t.Cleanup(func() {
		s.stop()
		s.require(t)
	})
	return s
}

// newSplitBrainSampler starts sampling sb without checking at the end (the
// negative control checks by itself).
func newSplitBrainSampler(t *testing.T, sb *sandbox.Sandbox) *splitBrainSampler {
	t.Helper()
	s := &splitBrainSampler{}
	var targets []harness.SampleTarget
	for i, in := range sb.Instances() {
		s.addrs = append(s.addrs, in.Addr())
		targets = append(targets, harness.SampleTarget{Server: in.Addr(), DSN: sb.DSN(i, sandbox.AdminUser, sandbox.AdminPassword)})
	}
	s.s = harness.StartReadOnlySampler(t, harness.SamplerOptions{Name: "group", Targets: targets})
	return s
}

// stop ends sampling; it may be called more than once.
func (s *splitBrainSampler) stop() { s.once.Do(func() { s.s.Stop() }) }

// require fails the test if two instances were ever writable together by
// harness.CheckNeverTwoWritable.
func (s *splitBrainSampler) require(t *testing.T) {
	t.Helper()
	if v := s.violations(); len(v) > 0 {
		t.Errorf("split brain over %d samples:%s", len(s.s.Samples()), harness.Violations(v))
	}
}

// violations checks the samples so far.
func (s *splitBrainSampler) violations() []harness.Violation {
	return harness.CheckNeverTwoWritable(s.s.Samples(), harness.DefaultMaxGap)
}

// writable returns the instances whose latest sample (after waiting for
// two fresh answered samples of every instance, unknown ones included) was
// writable. An instance whose latest sample is unknown is in neither list:
// callers that need "only i is writable" get i alone only when every other
// instance answered read-only or is down, so a down instance must be
// skipped by the caller's expectation, not counted as read-only here.
func (s *splitBrainSampler) writable(ctx context.Context, t *testing.T) []int {
	t.Helper()
	since := time.Now()
	latest := make([]harness.Sample, len(s.addrs))
	err := harness.Poll(ctx, 20*time.Millisecond, func() error {
		n := make([]int, len(s.addrs))
		for _, smp := range s.s.Samples() {
			for i, a := range s.addrs {
				if smp.Server == a && smp.Sent.After(since) {
					n[i]++
					latest[i] = smp
				}
			}
		}
		for i, c := range n {
			if c < 2 {
				return fmt.Errorf("sampler read %s %d times since %s", s.addrs[i], c, since.Format("15:04:05.000"))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for i, smp := range latest {
		if smp.State == harness.Writable {
			out = append(out, i)
		}
	}
	return out
}

// ---- records --------------------------------------------------------------

// foStep is fsm.Step as the API shows it.
type foStep struct {
	Seq     int       `json:"seq"`
	Name    string    `json:"name"`
	Leader  string    `json:"leader"`
	Term    uint64    `json:"term"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Outcome string    `json:"outcome"`
	Detail  string    `json:"detail"`
}

// foRecord is fsm.Record as the API shows it.
type foRecord struct {
	ID         uint64          `json:"id"`
	Cluster    string          `json:"cluster"`
	Kind       string          `json:"kind"`
	Trigger    string          `json:"trigger"`
	OldMaster  string          `json:"old_master"`
	NewMaster  string          `json:"new_master"`
	OpenedBy   string          `json:"opened_by"`
	Opened     time.Time       `json:"opened"`
	Closed     time.Time       `json:"closed"`
	Evidence   json.RawMessage `json:"evidence"`
	Candidates []struct {
		Address string `json:"address"`
		Chosen  bool   `json:"chosen"`
		Reason  string `json:"reason"`
	} `json:"candidates"`
	Steps   []foStep   `json:"steps"`
	Result  string     `json:"result"`
	Detail  string     `json:"detail"`
	Salvage *foSalvage `json:"salvage"`
	Fence   *foFence   `json:"fence"`
}

// foFence is fsm.FenceInfo as the API shows it.
type foFence struct {
	State   string `json:"state"`
	Proof   string `json:"proof"`
	Reason  string `json:"reason"`
	Detail  string `json:"detail"`
	By      string `json:"by"`
	Targets []struct {
		Address string `json:"address"`
		Proof   string `json:"proof"`
		Detail  string `json:"detail"`
	} `json:"targets"`
}

// foSalvage is fsm.Salvage as the API shows it.
type foSalvage struct {
	From    string   `json:"from"`
	Agent   string   `json:"agent"`
	Target  string   `json:"target"`
	Outcome string   `json:"outcome"`
	Applied int      `json:"applied"`
	GTIDs   []string `json:"gtids"`
	Skipped []struct {
		GTID   string `json:"gtid"`
		File   string `json:"file"`
		Start  int64  `json:"start"`
		Bytes  int64  `json:"bytes"`
		Reason string `json:"reason"`
	} `json:"skipped"`
	Before         string        `json:"before"`
	Recovered      string        `json:"recovered"`
	MasterLast     string        `json:"master_last"`
	MasterLastSeen string        `json:"master_last_seen"`
	LossWindow     string        `json:"loss_window"`
	Error          string        `json:"error"`
	Took           time.Duration `json:"took"`
}

func (r foRecord) open() bool { return r.Result == "" }

// step returns the latest journal entry of the named step.
func (r foRecord) step(name string) (foStep, bool) {
	for i := len(r.Steps) - 1; i >= 0; i-- {
		if r.Steps[i].Name == name {
			return r.Steps[i], true
		}
	}
	return foStep{}, false
}

// summary is a one-line description of the record for failure messages.
func (r foRecord) summary() string {
	var steps []string
	for _, s := range r.Steps {
		steps = append(steps, fmt.Sprintf("%s(%s by %s: %s)", s.Name, s.Outcome, s.Leader, s.Detail))
	}
	var cands []string
	for _, c := range r.Candidates {
		cands = append(cands, fmt.Sprintf("%s(chosen=%t: %s)", c.Address, c.Chosen, c.Reason))
	}
	return fmt.Sprintf("record %d %s/%s trigger %s %s→%s result %q detail %q candidates %v steps %v",
		r.ID, r.Kind, r.Cluster, r.Trigger, r.OldMaster, r.NewMaster, r.Result, r.Detail, cands, steps)
}

func foHistory(ctx context.Context, c *harness.Controller) ([]foRecord, error) {
	var h struct {
		Records []foRecord `json:"records"`
	}
	if _, err := harness.Do(ctx, http.MethodGet, c.URL("/v1/history?cluster="+detCluster), nil, &h); err != nil {
		return nil, err
	}
	return h.Records, nil
}

// failoversAfter returns the failover records with an id above after.
func failoversAfter(recs []foRecord, after uint64) []foRecord {
	var out []foRecord
	for _, r := range recs {
		if r.ID > after && r.Kind == "failover" {
			out = append(out, r)
		}
	}
	return out
}

// waitFailoverClosed polls until every controller in nodes holds exactly
// one failover record newer than after, closed, with the same id, result
// and journal everywhere, and returns it.
func (e *foEnv) waitFailoverClosed(ctx context.Context, t *testing.T, nodes []*harness.Controller, after uint64) foRecord {
	t.Helper()
	var got foRecord
	for _, c := range nodes {
		err := harness.Poll(ctx, 200*time.Millisecond, func() error {
			recs, err := foHistory(ctx, c)
			if err != nil {
				return err
			}
			fresh := failoversAfter(recs, after)
			switch {
			case len(fresh) == 0:
				return fmt.Errorf("%s: no failover record after id %d", c.ID, after)
			case len(fresh) > 1:
				var all []string
				for _, r := range fresh {
					all = append(all, r.summary())
				}
				t.Fatalf("%s holds %d failover records for one incident: %v", c.ID, len(fresh), all)
			}
			r := fresh[0]
			if r.open() {
				return fmt.Errorf("%s: %s still open", c.ID, r.summary())
			}
			if got.ID != 0 && (r.ID != got.ID || r.Result != got.Result || len(r.Steps) != len(got.Steps)) {
				t.Fatalf("controllers disagree:\n%s: %s\nother: %s", c.ID, r.summary(), got.summary())
			}
			got = r
			return nil
		})
		if err != nil {
			t.Fatalf("no closed failover record on %s: %v", c.ID, err)
		}
	}
	return got
}

// lastRecordID is the newest record id any running controller knows.
func (e *foEnv) lastRecordID(ctx context.Context, t *testing.T) uint64 {
	t.Helper()
	return e.det.lastRecordID(ctx, t)
}

// requireSuccessRecord checks what a successful failover's record must
// explain: the old and new master, a chosen candidate with its reason and
// the others' reasons, and a journal in which every step ended well and was
// run by a named leader.
func requireSuccessRecord(t *testing.T, r foRecord, oldMaster, newMaster, trigger string) {
	t.Helper()
	if r.Result != "success" || r.Kind != "failover" || r.Cluster != detCluster || r.Trigger != trigger ||
		r.OldMaster != oldMaster || (newMaster != "" && r.NewMaster != newMaster) || r.NewMaster == "" {
		t.Fatalf("want a %s failover %s → %s with result success; got %s", trigger, oldMaster, newMaster, r.summary())
	}
	chosen := 0
	for _, c := range r.Candidates {
		if c.Reason == "" {
			t.Fatalf("candidate %s has no reason: %s", c.Address, r.summary())
		}
		if c.Chosen {
			chosen++
			if c.Address != r.NewMaster {
				t.Fatalf("chosen candidate %s is not the new master %s", c.Address, r.NewMaster)
			}
		}
	}
	if len(r.Candidates) < 2 || chosen != 1 {
		t.Fatalf("want both replicas considered, one chosen; got %+v", r.Candidates)
	}
	for _, name := range []string{"fence", "select", "promote", "repoint"} {
		if _, ok := r.step(name); !ok {
			t.Fatalf("journal lacks step %s: %s", name, r.summary())
		}
	}
	for _, s := range r.Steps {
		if s.Outcome == "running" && s.Leader != "" && !s.Start.IsZero() && resumedLater(r, s) {
			continue
		}
		if s.Leader == "" || s.Start.IsZero() || s.End.IsZero() || !oneOf(s.Outcome, "ok", "skipped", "warning") {
			t.Fatalf("step %d %s: leader %q outcome %q start %s end %s: %s", s.Seq, s.Name, s.Leader, s.Outcome, s.Start, s.End, r.summary())
		}
	}
}

// resumedLater reports whether step s, left running, was run again to an
// end by a later leader (a higher term): a leader that loses leadership in
// the middle of a step (a kill, or raft's 250 ms leader lease missed on a
// loaded machine) leaves that step running in the journal, and its
// successor resumes the failover from it.
func resumedLater(r foRecord, s foStep) bool {
	for _, o := range r.Steps {
		if o.Seq > s.Seq && o.Name == s.Name && o.Term > s.Term && !o.End.IsZero() && oneOf(o.Outcome, "ok", "skipped", "warning") {
			return true
		}
	}
	return false
}

// ---- instances -------------------------------------------------------------

// readOnly returns @@global.read_only of instance i.
func (e *foEnv) readOnly(ctx context.Context, i int) (bool, error) {
	db, err := e.sb.AdminDB(i)
	if err != nil {
		return false, err
	}
	defer db.Close()
	var ro int
	if err := db.QueryRowContext(ctx, "SELECT @@global.read_only").Scan(&ro); err != nil {
		return false, err
	}
	return ro == 1, nil
}

// waitMasterEverywhere polls until every running controller names addr at
// GET /v1/clusters/sandbox/master.
func (e *foEnv) waitMasterEverywhere(ctx context.Context, t *testing.T, addr string) {
	t.Helper()
	err := harness.Poll(ctx, 200*time.Millisecond, func() error {
		for _, c := range e.g.Running() {
			var r struct {
				Master string `json:"master"`
			}
			if _, err := harness.Do(ctx, http.MethodGet, c.URL("/v1/clusters/"+detCluster+"/master"), nil, &r); err != nil {
				return fmt.Errorf("%s: %w", c.ID, err)
			}
			if r.Master != addr {
				return fmt.Errorf("%s names %s", c.ID, r.Master)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("controllers never named %s the master: %v", addr, err)
	}
}

// requireNewMaster checks that instance i is the master everywhere: the
// controllers name it, it is writable, and the sampler sees it alone
// writable.
func (e *foEnv) requireNewMaster(ctx context.Context, t *testing.T, i int) {
	t.Helper()
	e.waitMasterEverywhere(ctx, t, e.addr(i))
	if ro, err := e.readOnly(ctx, i); err != nil || ro {
		t.Fatalf("new master %s: read_only=%v err=%v", e.addr(i), ro, err)
	}
	if w := e.sampler.writable(ctx, t); len(w) != 1 || w[0] != i {
		t.Fatalf("writable instances %v, want only %d", w, i)
	}
}

// waitReplicatesFrom polls until instance i replicates from masterIdx with
// both threads running.
func (e *foEnv) waitReplicatesFrom(ctx context.Context, t *testing.T, i, masterIdx int) {
	t.Helper()
	want := e.sb.Instance(masterIdx).Port
	err := harness.Poll(ctx, 200*time.Millisecond, func() error {
		st, err := e.sb.ReplicaStatus(ctx, i)
		if err != nil {
			return err
		}
		if st == nil {
			return fmt.Errorf("%s is not a replica", e.addr(i))
		}
		if st.MasterPort != want || st.IORunning != "Yes" || st.SQLRunning != "Yes" {
			return fmt.Errorf("%s replicates from port %d (want %d) IO %s SQL %s: %s %s",
				e.addr(i), st.MasterPort, want, st.IORunning, st.SQLRunning, st.LastIOError, st.LastSQLError)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// requireAllReadOnly fails unless every running instance is read_only.
func (e *foEnv) requireAllReadOnly(ctx context.Context, t *testing.T) {
	t.Helper()
	for i := range e.sb.Instances() {
		if !e.sb.Alive(i) {
			continue
		}
		ro, err := e.readOnly(ctx, i)
		if err != nil || !ro {
			t.Fatalf("%s: read_only=%v err=%v; want every instance read-only", e.addr(i), ro, err)
		}
	}
	if w := e.sampler.writable(ctx, t); len(w) != 0 {
		t.Fatalf("writable instances %v, want none", w)
	}
}

// requireNoNewFailover watches every running controller for window and
// fails as soon as one holds a failover record newer than after. It is a
// bounded observation of an absence, not a wait for a condition.
func (e *foEnv) requireNoNewFailover(ctx context.Context, t *testing.T, after uint64, window time.Duration) {
	t.Helper()
	end := time.Now().Add(window)
	for time.Now().Before(end) {
		for _, c := range e.g.Running() {
			recs, err := foHistory(ctx, c)
			if err != nil {
				t.Fatalf("history of %s: %v", c.ID, err)
			}
			if fresh := failoversAfter(recs, after); len(fresh) > 0 {
				t.Fatalf("%s recorded a failover that must not happen: %s", c.ID, fresh[0].summary())
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// restartReadOnly restarts instance i with read_only=ON in its my.cnf, as
// MHA asks of every server so that a crashed master that comes back cannot
// take writes before anyone looks at it.
func (e *foEnv) restartReadOnly(ctx context.Context, t *testing.T, i int) {
	t.Helper()
	cnf := filepath.Join(e.sb.Instance(i).DataDir, "my.cnf")
	f, err := os.OpenFile(cnf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("read_only=ON\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := e.sb.StartInstance(ctx, i); err != nil {
		t.Fatalf("restart %s: %v", e.addr(i), err)
	}
}

// cli runs the quorumha binary with args and returns its combined output
// and exit code.
func cli(ctx context.Context, t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin.Path(t), args...)
	cmd.Env = append(os.Environ(), "QUORUMHA_TOKEN=", "QUORUMHA_ADDR=")
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run quorumha %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	t.Logf("$ quorumha %s  (exit %d)\n%s", strings.Join(args, " "), code, out)
	return string(out), code
}

// leaderAndFollower returns the current leader and one follower.
func (e *foEnv) leaderAndFollower(ctx context.Context, t *testing.T) (*harness.Controller, *harness.Controller) {
	t.Helper()
	li, err := e.g.WaitLeader(ctx, e.g.Running())
	if err != nil {
		t.Fatal(err)
	}
	leader := e.g.Node(li.ID)
	others := otherThan(e.g.Running(), li.ID)
	if len(others) == 0 {
		t.Fatal("no follower running")
	}
	return leader, others[0]
}

// waitAckedEverywhere polls until every running controller's replicated
// state of the sandbox cluster shows the acknowledgement by by.
func (e *foEnv) waitAckedEverywhere(ctx context.Context, t *testing.T, by string) {
	t.Helper()
	for _, c := range e.g.Running() {
		err := harness.Poll(ctx, 100*time.Millisecond, func() error {
			var cl map[string]any
			if _, err := harness.Do(ctx, http.MethodGet, c.URL("/v1/clusters/"+detCluster), nil, &cl); err != nil {
				return err
			}
			if got := findString(cl, "acked_by"); got != by {
				return fmt.Errorf("%s: acked_by=%q want %q", c.ID, got, by)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
