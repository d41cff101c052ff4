package harness

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

// at is t0 plus ms milliseconds.
func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// smp is a sample sent at ms and answered 2 ms later.
func smp(sampler, server string, ms int, st Access) Sample {
	return Sample{Sampler: sampler, Server: server, Round: ms / 50, Sent: at(ms), Answered: at(ms + 2), State: st}
}

// every makes one sample of server by sampler every 50 ms in [from, to).
func every(sampler, server string, from, to int, st Access) []Sample {
	var out []Sample
	for ms := from; ms < to; ms += 50 {
		out = append(out, smp(sampler, server, ms, st))
	}
	return out
}

func cat(parts ...[]Sample) []Sample { return slices.Concat(parts...) }

func TestCheckNeverTwoWritable(t *testing.T) {
	const old, nu, other = "m:1", "r1:1", "r2:1"
	tests := []struct {
		name    string
		samples []Sample
		want    int    // violations
		detail  string // in the first violation
	}{
		{"clean failover: old fenced, gap, new promoted",
			cat(every("zone", old, 0, 2000, Writable), every("zone", old, 2000, 6000, ReadOnly),
				every("group", old, 0, 1000, Writable), every("group", old, 1000, 6000, Unknown),
				every("group", nu, 0, 4000, ReadOnly), every("group", nu, 4000, 6000, Writable),
				every("group", other, 0, 6000, ReadOnly)), 0, ""},
		{"old master unknown to everyone while new is writable: no evidence either way",
			cat(every("zone", old, 0, 1000, Writable), every("zone", old, 1000, 6000, Unknown),
				every("group", nu, 3000, 6000, Writable)), 0, ""},
		{"one sampler's round sees two writable",
			[]Sample{smp("group", old, 100, Writable), smp("group", nu, 101, Writable)}, 2, "round 2"},
		{"split brain seen only across samplers, phases never overlap sample by sample",
			cat(every("zone", old, 0, 6000, Writable),
				func() []Sample { // the group sampler 25 ms out of phase
					var s []Sample
					for ms := 4025; ms < 6000; ms += 50 {
						s = append(s, smp("group", nu, ms, Writable))
					}
					return s
				}(),
				every("group", old, 1000, 6000, Unknown)), 1, "overlaps"},
		{"read-only sample between two writable ones breaks the span",
			cat([]Sample{smp("zone", old, 0, Writable), smp("zone", old, 50, ReadOnly), smp("zone", old, 100, Writable)},
				[]Sample{smp("group", nu, 60, Writable)}), 0, ""},
		{"a gap larger than maxGap breaks the span",
			cat([]Sample{smp("zone", old, 0, Writable), smp("zone", old, 1000, Writable)},
				[]Sample{smp("group", nu, 500, Writable)}), 0, ""},
		{"unknown samples do not break a span",
			cat([]Sample{smp("zone", old, 0, Writable), smp("group", old, 40, Unknown), smp("zone", old, 100, Writable)},
				[]Sample{smp("group", nu, 60, Writable)}), 1, "overlaps"},
		{"same server seen writable by two samplers is fine",
			cat(every("zone", old, 0, 1000, Writable), every("group", old, 0, 1000, Writable)), 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckNeverTwoWritable(tt.samples, DefaultMaxGap)
			if len(got) != tt.want {
				t.Fatalf("%d violations, want %d:%s", len(got), tt.want, Violations(got))
			}
			if tt.want > 0 && !strings.Contains(got[0].Detail, tt.detail) {
				t.Fatalf("first violation %q lacks %q", got[0], tt.detail)
			}
		})
	}
}

func TestCheckNoAckAfter(t *testing.T) {
	acks := []Ack{{ID: 1, Sent: at(0), At: at(10)}, {ID: 2, Sent: at(100), At: at(2100)}, {ID: 3, Sent: at(2200), At: at(2300)}}
	tests := []struct {
		name  string
		first time.Time
		want  []int64
	}{
		{"all before", at(5000), nil},
		{"the stalled semi-sync ack lands after", at(2000), []int64{2, 3}},
		{"exactly at the observation is not after", at(2300), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ids []int64
			for _, v := range CheckNoAckAfter(acks, tt.first) {
				var id int64
				for _, a := range acks {
					if strings.HasPrefix(v.Detail, "write "+itoa(a.ID)+" ") {
						id = a.ID
					}
				}
				ids = append(ids, id)
			}
			if !slices.Equal(ids, tt.want) {
				t.Fatalf("violating ids %v, want %v", ids, tt.want)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestCheckReadOnlyWithin(t *testing.T) {
	const old = "m:1"
	cut := at(1000)
	tests := []struct {
		name    string
		samples []Sample
		limit   time.Duration
		took    time.Duration
		violate bool
	}{
		{"fenced in time", cat(every("zone", old, 0, 3000, Writable), every("zone", old, 3000, 5000, ReadOnly)), 3 * time.Second, 2002 * time.Millisecond, false},
		{"fenced late", cat(every("zone", old, 0, 5000, Writable), every("zone", old, 5000, 6000, ReadOnly)), 3 * time.Second, 4002 * time.Millisecond, true},
		{"unknown is never read-only", cat(every("zone", old, 0, 1000, Writable), every("zone", old, 1000, 6000, Unknown)), 3 * time.Second, 0, true},
		{"another sampler's read-only does not count", cat(every("zone", old, 0, 6000, Writable), every("group", old, 1500, 6000, ReadOnly)), 3 * time.Second, 0, true},
		{"read-only before the cut does not count", cat(every("zone", old, 0, 1000, ReadOnly), every("zone", old, 1000, 6000, Writable)), 3 * time.Second, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			took, v := CheckReadOnlyWithin(tt.samples, old, cut, tt.limit, "zone")
			if (len(v) > 0) != tt.violate || (tt.took != 0 && took != tt.took) {
				t.Fatalf("took %s violations %s; want took %s violate %v", took, Violations(v), tt.took, tt.violate)
			}
		})
	}
}

func TestCheckNotWritableAfterAndNothingLost(t *testing.T) {
	s := cat(every("zone", "m:1", 0, 1000, ReadOnly), []Sample{smp("group", "m:1", 1500, Writable)})
	if v := CheckNotWritableAfter(s, "m:1", at(1000)); len(v) != 1 {
		t.Fatalf("want the writable sample after healing reported: %s", Violations(v))
	}
	if v := CheckNotWritableAfter(s, "m:1", at(1600)); len(v) != 0 {
		t.Fatalf("nothing writable after 1600: %s", Violations(v))
	}
	if v := CheckNothingLost([]int64{1, 2, 3}, []int64{3, 1, 9}); len(v) != 1 || !strings.Contains(v[0].Detail, "id 2 ") {
		t.Fatalf("want id 2 lost: %s", Violations(v))
	}
	if v := CheckNothingLost([]int64{1, 2}, []int64{1, 2}); len(v) != 0 {
		t.Fatalf("nothing lost: %s", Violations(v))
	}
}
