package topology

import (
	"errors"
	"slices"
	"testing"
)

// fakeInst builds a MariaDB instance for anomaly tests; master "" means not
// a replica.
func fakeInst(key string, readOnly bool, master string) *Instance {
	i := &Instance{Key: key, ReadOnly: readOnly, Version: Version{Major: 10, Minor: 11, Flavor: MariaDB}}
	if master != "" {
		host, port, _ := splitHostPort(master)
		i.Replica = &ReplicaStatus{MasterHost: host, MasterPort: port, IORunning: IOYes, SQLRunning: true}
	}
	return i
}

func with(i *Instance, f func(i *Instance)) *Instance { f(i); return i }

func kinds(t *Topology) []string {
	var out []string
	for _, a := range t.Anomalies {
		out = append(out, string(a.Kind)+"@"+a.Instance)
	}
	slices.Sort(out)
	return out
}

func TestAnalyze_Anomalies(t *testing.T) {
	down := []UnreachableInstance{{Addr: "m:1", Err: errors.New("connection refused")}}
	tests := []struct {
		name        string
		instances   []*Instance
		aliases     map[string]string
		unreachable []UnreachableInstance
		master      string
		want        []string
	}{
		{"healthy", []*Instance{fakeInst("m:1", false, ""), fakeInst("r1:1", true, "m:1"), fakeInst("r2:1", true, "m:1")},
			nil, nil, "m:1", nil},
		{"chain via alias", []*Instance{fakeInst("m:1", false, ""), fakeInst("r1:1", true, "db-master:1"), fakeInst("r2:1", true, "r1:1")},
			map[string]string{"db-master:1": "m:1"}, nil, "m:1", nil},
		{"hostname alias", []*Instance{with(fakeInst("10.0.0.1:1", false, ""), func(i *Instance) { i.Hostname, i.Port = "db1", 1 }),
			fakeInst("r1:1", true, "db1:1")}, nil, nil, "10.0.0.1:1", nil},
		{"two writable masters", []*Instance{fakeInst("m:1", false, ""), fakeInst("old:1", false, ""), fakeInst("r1:1", true, "m:1")},
			nil, nil, "", []string{"MultipleWritableMasters@m:1", "MultipleWritableMasters@old:1"}},
		{"read-only root", []*Instance{fakeInst("m:1", true, ""), fakeInst("r1:1", true, "m:1")},
			nil, nil, "m:1", []string{"MasterReadOnly@m:1"}},
		{"two read-only roots", []*Instance{fakeInst("a:1", true, ""), fakeInst("b:1", true, "")},
			nil, nil, "", []string{"NoMaster@"}},
		{"master down", []*Instance{fakeInst("r1:1", true, "m:1"), fakeInst("r2:1", true, "m:1")},
			nil, down, "", []string{"BrokenChain@r1:1", "BrokenChain@r2:1", "NoMaster@"}},
		{"unknown master", []*Instance{fakeInst("m:1", false, ""), fakeInst("r1:1", true, "elsewhere:1")},
			nil, nil, "m:1", []string{"ReplicaOfUnknownHost@r1:1"}},
		{"writable replica", []*Instance{fakeInst("m:1", false, ""), fakeInst("r1:1", false, "m:1")},
			nil, nil, "m:1", []string{"ReplicaNotReadOnly@r1:1"}},
		{"io stopped", []*Instance{fakeInst("m:1", false, ""), with(fakeInst("r1:1", true, "m:1"), func(i *Instance) {
			i.Replica.IORunning, i.Replica.LastIOErrno, i.Replica.LastIOError = IOConnecting, 2003, "refused"
		})}, nil, nil, "m:1", []string{"ReplicationStopped@r1:1"}},
		{"sql stopped", []*Instance{fakeInst("m:1", false, ""), with(fakeInst("r1:1", true, "m:1"), func(i *Instance) {
			i.Replica.SQLRunning = false
		})}, nil, nil, "m:1", []string{"ReplicationStopped@r1:1"}},
		{"circular", []*Instance{fakeInst("a:1", false, "b:1"), fakeInst("b:1", true, "a:1"), fakeInst("c:1", true, "b:1")},
			nil, nil, "", []string{"CircularReplication@a:1", "NoMaster@", "ReplicaNotReadOnly@a:1"}},
		{"errant mariadb", []*Instance{
			with(fakeInst("m:1", false, ""), func(i *Instance) { i.GTIDBinlogState = "0-1-100" }),
			with(fakeInst("r1:1", true, "m:1"), func(i *Instance) { i.LogBin, i.GTIDBinlogState = true, "0-1-100,0-2-3" }),
			with(fakeInst("r2:1", true, "m:1"), func(i *Instance) { i.GTIDCurrentPos = "0-1-99" }),
		}, nil, nil, "m:1", []string{"ErrantTransactions@r1:1"}},
		{"errant mysql", []*Instance{
			{Key: "m:1", Version: Version{Major: 8, Flavor: MySQL}, GTIDMode: "ON", GTIDExecuted: uuidA + ":1-10"},
			with(&Instance{Key: "r:1", ReadOnly: true, Version: Version{Major: 8, Flavor: MySQL}, GTIDMode: "ON",
				GTIDExecuted: uuidA + ":1-10," + uuidB + ":1"}, func(i *Instance) {
				i.Replica = &ReplicaStatus{MasterHost: "m", MasterPort: 1, IORunning: IOYes, SQLRunning: true}
			}),
		}, nil, nil, "m:1", []string{"ErrantTransactions@r:1"}},
		{"empty", nil, nil, nil, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topo := Analyze(tt.instances, tt.aliases, tt.unreachable)
			if got := kinds(topo); !slices.Equal(got, tt.want) {
				t.Errorf("anomalies = %v, want %v\n%v", got, tt.want, topo.Anomalies)
			}
			gotMaster := ""
			if topo.Master != nil {
				gotMaster = topo.Master.Key
			}
			if gotMaster != tt.master {
				t.Errorf("Master = %q, want %q", gotMaster, tt.master)
			}
		})
	}
}

func TestTopology_Navigation(t *testing.T) {
	m := fakeInst("m:1", false, "")
	r1 := fakeInst("r1:1", true, "m:1")
	r2 := fakeInst("r2:1", true, "r1:1")
	topo := Analyze([]*Instance{r2, m, r1}, nil, nil)
	if got := topo.ReplicasOf(m); len(got) != 1 || got[0] != r1 {
		t.Errorf("ReplicasOf(m) = %v", got)
	}
	if topo.MasterOf(r2) != r1 || topo.MasterOf(m) != nil {
		t.Error("MasterOf wrong")
	}
	if len(topo.Replicas) != 2 || topo.Instances[0].Key != "m:1" {
		t.Errorf("Replicas = %d, Instances[0] = %s", len(topo.Replicas), topo.Instances[0].Key)
	}
	if topo.Lookup("nope:1") != nil || topo.HasAnomaly(NoMaster, "") {
		t.Error("Lookup/HasAnomaly wrong")
	}
}
