package detector

import (
	"maps"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestCountMembers_Table(t *testing.T) {
	tests := []struct {
		name      string
		ms        []Member
		voters    int
		wantState map[string]int
		wantZone  map[string]int
	}{
		{"all alive", []Member{{Name: "c1", Zone: "a", State: "alive"}, {Name: "c2", Zone: "b", State: "alive"}, {Name: "c3", Zone: "b", State: "alive"}}, 3,
			map[string]int{"alive": 3, "dead": 0}, map[string]int{"a": 1, "b": 2}},
		{"one suspect, one missing", []Member{{Name: "c1", Zone: "a", State: "alive"}, {Name: "c2", Zone: "b", State: "suspect"}}, 3,
			map[string]int{"alive": 1, "suspect": 1, "dead": 1}, map[string]int{"a": 1}},
		{"voters unknown", []Member{{Name: "c1", State: "alive"}}, 0,
			map[string]int{"alive": 1, "dead": 0}, map[string]int{"": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotState, gotZone := countMembers(tt.ms, tt.voters)
			if !maps.Equal(gotState, tt.wantState) || !maps.Equal(gotZone, tt.wantZone) {
				t.Errorf("countMembers = %v, %v; want %v, %v", gotState, gotZone, tt.wantState, tt.wantZone)
			}
		})
	}
}

type fixedMembers []Member

func (f fixedMembers) Members() []Member { return f }

func TestMembersCollector_ExportsEveryState(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newMembersCollector(fixedMembers{{Name: "c1", Zone: "a", State: "alive"}}, func() int { return 3 }))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got[mf.GetName()+"/"+m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{"quorumha_gossip_members/alive": 1, "quorumha_gossip_members/suspect": 0,
		"quorumha_gossip_members/dead": 2, "quorumha_gossip_zone_members/a": 1}
	if !maps.Equal(got, want) {
		t.Errorf("gathered %v, want %v", got, want)
	}
}
