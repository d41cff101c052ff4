package lease

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/detector"
	"github.com/quorumha/quorumha/fsm"
)

type fakeVerdicts map[string][]detector.Verdict

func (f fakeVerdicts) Verdicts() map[string][]detector.Verdict { return f }

type fakeRecords map[string]fsm.Record

func (f fakeRecords) OpenRecord(c string) (fsm.Record, bool) { r, ok := f[c]; return r, ok }

func TestWitness_CollectsOwnAndGossipedGrantsOfVoters(t *testing.T) {
	now := time.Date(2026, 12, 3, 18, 0, 10, 0, time.UTC)
	peerClock := now.Add(time.Hour) // c2's wall clock runs an hour ahead: only elapsed time may count
	records := fakeRecords{"app1": {ID: 42, Cluster: "app1", Kind: fsm.KindFailover, OldMaster: m1}}
	own := func(cluster, instance string) *detector.LeaseGrant {
		if cluster == "app1" && instance == m1 {
			return &detector.LeaseGrant{Bound: now.Add(-5 * time.Second), Enforced: true, Armed: true, StoppedFor: 42}
		}
		return nil
	}
	// peer is c2's verdict: its grant was read age after its last renewal
	// (c2's wall clock shows bound, an hour off), and reached us at received.
	peer := func(id string, age time.Duration, received time.Time) detector.Verdict {
		return detector.Verdict{Controller: id, Cluster: "app1", Instance: m1, ObservedAt: peerClock, ReceivedAt: received, Seq: 9,
			Lease: &detector.LeaseGrant{Bound: peerClock.Add(-age), BoundAge: age, Enforced: true, StoppedFor: 42}}
	}
	voters := func() ([]string, error) { return []string{"c1", "c2", "c3"}, nil }
	cases := []struct {
		name    string
		gossip  fakeVerdicts
		records fakeRecords
		voters  func() ([]string, error)
		want    bool
		why     string
	}{
		{"own and a peer's grant lapsed, the peer's measured by elapsed time",
			fakeVerdicts{strings.ToUpper(m1): {peer("c2", 3*time.Second, now.Add(-900*time.Millisecond))}},
			records, voters, true, "2 of 3 voters lapsed"},
		{"the peer's grant reached us too recently to prove its lapse",
			fakeVerdicts{m1: {peer("c2", time.Second, now.Add(-100*time.Millisecond))}},
			records, voters, false, "c2: stopped for record 42, last renewal by 18:00:08.900Z, lapses after 18:00:11.400Z"},
		{"a non-voter's gossiped grant does not count",
			fakeVerdicts{m1: {peer("g9", time.Minute, now)}},
			records, voters, false, "ignored (not voters): g9"},
		{"a grant gossiped about another cluster does not count",
			fakeVerdicts{m1: {func() detector.Verdict {
				v := peer("c2", time.Minute, now)
				v.Cluster = "app2"
				return v
			}()}},
			records, voters, false, "c2: no grant known"},
		{"our own gossiped verdict is not taken for our grant",
			fakeVerdicts{m1: {peer("c1", time.Minute, time.Time{})}},
			records, voters, false, "1 of 3"},
		{"an open switchover is no failover decision",
			fakeVerdicts{m1: {peer("c2", time.Minute, now)}},
			fakeRecords{"app1": {ID: 42, Kind: fsm.KindSwitchover, OldMaster: m1}}, voters, false, "no open failover record"},
		{"voters unknown", nil, records, func() ([]string, error) { return nil, errors.New("raft is shut down") }, false, "raft voters unknown: raft is shut down"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, err := NewWitness(WitnessConfig{Controller: "c1", TTL: 2 * time.Second, Drift: 500 * time.Millisecond,
				Own: own, Gossip: tc.gossip, Voters: tc.voters, Records: tc.records})
			if err != nil {
				t.Fatal(err)
			}
			got, why := w.LeaseLapsed("app1", m1, now)
			if got != tc.want || !strings.Contains(why, tc.why) {
				t.Errorf("LeaseLapsed = %t, %q; want %t, containing %q", got, why, tc.want, tc.why)
			}
		})
	}
}
