package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/sandbox"
	"github.com/quorumha/quorumha/tests/harness"
)

// detCluster is the cluster name the detection tests configure.
const detCluster = "sandbox"

// detVote is one controller's verdict as the API shows it.
type detVote struct {
	Controller string `json:"controller"`
	Zone       string `json:"zone"`
	Instance   string `json:"instance"`
	State      string `json:"state"`
	Reason     string `json:"reason"`
	// LastPosition is the master's GTID position as this controller's last
	// successful probe read it.
	LastPosition string `json:"last_position"`
}

// detAssessment is detector.Assessment as the API shows it.
type detAssessment struct {
	Master    string    `json:"master"`
	State     string    `json:"state"`
	Reason    string    `json:"reason"`
	Votes     []detVote `json:"votes"`
	DownCount int       `json:"down_count"`
	Needed    int       `json:"needed"`
	Zones     []string  `json:"zones"`
}

func (a detAssessment) vote(controller string) (detVote, bool) {
	for _, v := range a.Votes {
		if v.Controller == controller {
			return v, true
		}
	}
	return detVote{}, false
}

// detRecord is fsm.Record with the detection evidence decoded.
type detRecord struct {
	ID        uint64 `json:"id"`
	Cluster   string `json:"cluster"`
	Kind      string `json:"kind"`
	Trigger   string `json:"trigger"`
	OldMaster string `json:"old_master"`
	NewMaster string `json:"new_master"`
	OpenedBy  string `json:"opened_by"`
	Result    string `json:"result"`
	Detail    string `json:"detail"`
	Evidence  struct {
		Assessment detAssessment `json:"assessment"`
		Recheck    struct {
			OK     bool   `json:"ok"`
			Reason string `json:"reason"`
		} `json:"recheck"`
		Rule string `json:"rule"`
	} `json:"evidence"`
}

func detHistory(ctx context.Context, c *harness.Controller) ([]detRecord, error) {
	var h struct {
		Records []detRecord `json:"records"`
	}
	if _, err := harness.Do(ctx, http.MethodGet, c.URL("/v1/history?cluster="+detCluster), nil, &h); err != nil {
		return nil, err
	}
	return h.Records, nil
}

// detAssess returns a controller's live assessment and watched master.
func detAssess(ctx context.Context, c *harness.Controller) (detAssessment, string, error) {
	var r struct {
		Cluster struct {
			Topology struct {
				Assessment    *detAssessment `json:"assessment"`
				WatchedMaster string         `json:"watched_master"`
			} `json:"topology"`
		} `json:"cluster"`
	}
	if _, err := harness.Do(ctx, http.MethodGet, c.URL("/v1/clusters/"+detCluster), nil, &r); err != nil {
		return detAssessment{}, "", err
	}
	if r.Cluster.Topology.Assessment == nil {
		return detAssessment{}, r.Cluster.Topology.WatchedMaster, fmt.Errorf("%s: no assessment yet", c.ID)
	}
	return *r.Cluster.Topology.Assessment, r.Cluster.Topology.WatchedMaster, nil
}

// newRecords returns the records with an id above after.
func newRecords(recs []detRecord, after uint64) []detRecord {
	var out []detRecord
	for _, r := range recs {
		if r.ID > after {
			out = append(out, r)
		}
	}
	return out
}

// detEnv is a sandbox watched by a controller group.
type detEnv struct {
	sb     *sandbox.Sandbox
	g      *harness.Group
	master string // the master's address as configured (host:port)
	// failover is set when the test lets automatic failover run: a decision
	// is then a failover record closed as success. Otherwise the detection
	// tests hold failovers with a maintenance window (holdFailovers), so the
	// topology stays as it is and a decision is a failover record closed as
	// refused, once per incident.
	failover bool
}

// holdFailovers starts a maintenance window on the cluster so every
// decision is recorded but refused: the detection scenarios restart the
// same master after each incident.
func (e *detEnv) holdFailovers(ctx context.Context, t *testing.T) {
	t.Helper()
	li, err := e.g.WaitLeader(ctx, e.g.Nodes)
	if err != nil {
		t.Fatal(err)
	}
	body := map[string]string{"duration": "1h", "reason": "detection test", "by": "e2e"}
	if code, err := harness.Do(ctx, http.MethodPost, e.g.Node(li.ID).URL("/v1/clusters/"+detCluster+"/maintenance"), body, nil); err != nil {
		t.Fatalf("maintenance: %d %v", code, err)
	}
}

// detClustersYAML configures the sandbox with every instance at host:port.
func detClustersYAML(sb *sandbox.Sandbox, host string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: %s\n    user: %s\n    password: %s\n    repl_user: %s\n    repl_password: %s\n    instances:\n",
		detCluster, sandbox.AdminUser, sandbox.AdminPassword, sandbox.ReplUser, sandbox.ReplPassword)
	for _, in := range sb.Instances() {
		fmt.Fprintf(&b, "      - address: %s:%d\n", host, in.Port)
	}
	return b.String()
}

// lastRecordID is the newest record id any running controller knows.
func (e *detEnv) lastRecordID(ctx context.Context, t *testing.T) uint64 {
	t.Helper()
	var last uint64
	for _, c := range e.g.Running() {
		recs, err := detHistory(ctx, c)
		if err != nil {
			t.Fatalf("history of %s: %v", c.ID, err)
		}
		for _, r := range recs {
			last = max(last, r.ID)
		}
	}
	return last
}

// waitHealthy polls until every running controller watches the master and
// assesses it healthy with every vote up (no degraded note).
func (e *detEnv) waitHealthy(ctx context.Context, t *testing.T) {
	t.Helper()
	err := harness.Poll(ctx, 200*time.Millisecond, func() error {
		for _, c := range e.g.Running() {
			a, watched, err := detAssess(ctx, c)
			if err != nil {
				return err
			}
			if watched != e.master || a.State != "healthy" {
				return fmt.Errorf("%s watches %s: %s (%s)", c.ID, watched, a.State, a.Reason)
			}
			if len(a.Votes) != len(e.g.Nodes) {
				return fmt.Errorf("%s counts %d votes: %s", c.ID, len(a.Votes), a.Reason)
			}
			for _, v := range a.Votes {
				if v.State != "up" {
					return fmt.Errorf("%s: vote of %s is %s (%s)", c.ID, v.Controller, v.State, v.Reason)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("controllers never saw %s healthy: %v", e.master, err)
	}
}

// waitDetection polls until every controller in nodes holds exactly one new
// record (id > after), a closed failover record (refused under
// holdFailovers, success otherwise), with the same id everywhere, and
// returns it after checking what every decision must say.
func (e *detEnv) waitDetection(ctx context.Context, t *testing.T, nodes []*harness.Controller, after uint64) detRecord {
	t.Helper()
	var got detRecord
	for _, c := range nodes {
		err := harness.Poll(ctx, 100*time.Millisecond, func() error {
			recs, err := detHistory(ctx, c)
			if err != nil {
				return err
			}
			fresh := newRecords(recs, after)
			if len(fresh) == 0 {
				return fmt.Errorf("%s: no record after id %d", c.ID, after)
			}
			if len(fresh) > 1 {
				t.Fatalf("%s holds %d new records for one incident: %+v", c.ID, len(fresh), fresh)
			}
			r := fresh[0]
			if r.Result == "open" || r.Result == "" {
				return fmt.Errorf("%s: record %d still open", c.ID, r.ID)
			}
			if got.ID != 0 && r.ID != got.ID {
				t.Fatalf("%s holds record %d, another controller %d", c.ID, r.ID, got.ID)
			}
			got = r
			return nil
		})
		if err != nil {
			t.Fatalf("no detection record on %s: %v", c.ID, err)
		}
	}
	want := "refused"
	if e.failover {
		want = "success"
	}
	if got.Cluster != detCluster || got.Kind != "failover" || got.Result != want ||
		got.OldMaster != e.master || got.Trigger != "automatic" {
		t.Fatalf("record %d: cluster %q kind %q result %q old_master %q trigger %q (%s); want %s failover %s %s automatic",
			got.ID, got.Cluster, got.Kind, got.Result, got.OldMaster, got.Trigger, got.Detail, detCluster, want, e.master)
	}
	if !e.failover && !strings.Contains(got.Detail, "maintenance") {
		t.Fatalf("record %d refused for %q, want the maintenance window", got.ID, got.Detail)
	}
	a := got.Evidence.Assessment
	if a.State != "dead_confirmed" || a.Master != e.master || got.Evidence.Recheck.OK {
		t.Fatalf("record %d evidence: state %q master %q recheck ok=%t; reason %s",
			got.ID, a.State, a.Master, got.Evidence.Recheck.OK, a.Reason)
	}
	down := 0
	for _, v := range a.Votes {
		if v.State == "down" {
			down++
		}
	}
	if down < a.Needed || a.Needed < 2 || len(a.Zones) < 2 {
		t.Fatalf("record %d: %d down votes from zones %v, %d needed: %+v", got.ID, down, a.Zones, a.Needed, a.Votes)
	}
	return got
}

// requireVoters fails unless every named controller voted in the record.
func requireVoters(t *testing.T, r detRecord, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, ok := r.Evidence.Assessment.vote(id); !ok {
			t.Fatalf("record %d: no vote of %s: %+v", r.ID, id, r.Evidence.Assessment.Votes)
		}
	}
}

// observeNoRecord watches every node for window and fails as soon as one
// holds a record newer than after. check, when set, is called with each
// controller's assessment on every round. This is a bounded observation of
// an absence, not a wait for a condition.
func (e *detEnv) observeNoRecord(ctx context.Context, t *testing.T, nodes []*harness.Controller, after uint64,
	window time.Duration, check func(c *harness.Controller, a detAssessment) error) map[string]int {
	t.Helper()
	seen := map[string]int{}
	end := time.Now().Add(window)
	for time.Now().Before(end) {
		for _, c := range nodes {
			recs, err := detHistory(ctx, c)
			if err != nil {
				t.Fatalf("history of %s: %v", c.ID, err)
			}
			if fresh := newRecords(recs, after); len(fresh) > 0 {
				t.Fatalf("%s recorded a decision that must not happen: %+v", c.ID, fresh)
			}
			if check == nil {
				continue
			}
			a, _, err := detAssess(ctx, c)
			if err != nil {
				t.Fatalf("assessment of %s: %v", c.ID, err)
			}
			seen[a.State]++
			if err := check(c, a); err != nil {
				t.Fatalf("%s: %v", c.ID, err)
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
	return seen
}

// waitVote polls until ctrl's assessment shows voter's vote in state.
func waitVote(ctx context.Context, t *testing.T, ctrl *harness.Controller, voter, state string) {
	t.Helper()
	err := harness.Poll(ctx, 200*time.Millisecond, func() error {
		a, _, err := detAssess(ctx, ctrl)
		if err != nil {
			return err
		}
		if v, ok := a.vote(voter); !ok || v.State != state {
			return fmt.Errorf("%s sees %s's vote %+v (want %s); %s: %s", ctrl.ID, voter, v, state, a.State, a.Reason)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// startLoad starts a write load on the sandbox master over loopback and
// waits until it has been acknowledged a few times.
func startLoad(ctx context.Context, t *testing.T, sb *sandbox.Sandbox) *harness.WriteLoad {
	t.Helper()
	w := harness.StartWriteLoad(t, func() string { return sb.DSN(0, sandbox.AppUser, sandbox.AppPassword) }, 100*time.Millisecond)
	err := harness.Poll(ctx, 50*time.Millisecond, func() error {
		if s := w.Snapshot(); len(s.Acked) < 3 {
			return fmt.Errorf("%d writes acknowledged, %d failed (%s)", len(s.Acked), s.Failed, s.LastErr)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("write load: %v", err)
	}
	return w
}

// requireNothingLost checks that instance i holds every acknowledged write.
func requireNothingLost(ctx context.Context, t *testing.T, sb *sandbox.Sandbox, i int, st harness.Stats) {
	t.Helper()
	db, err := sb.AdminDB(i)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	missing, err := harness.MissingAcked(ctx, db, st.Acked)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		t.Fatalf("%s lost %d of %d acknowledged writes: %v", sb.Instance(i).Name, len(missing), len(st.Acked), missing)
	}
}

// restartMaster starts instance 0 again and waits for the controllers to see
// it healthy, which ends the incident (a later death is a new decision).
func (e *detEnv) restartMaster(ctx context.Context, t *testing.T) {
	t.Helper()
	if err := e.sb.StartInstance(ctx, 0); err != nil {
		t.Fatalf("restart master: %v", err)
	}
	e.waitHealthy(ctx, t)
}

// detExec runs statements on one connection of db.
func detExec(ctx context.Context, t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func oneOf(s string, set ...string) bool { return slices.Contains(set, s) }
