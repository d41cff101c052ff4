package controller

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/quorumha/quorumha/config"
	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/topology"
)

func fileCfg() *config.Config {
	return &config.Config{Clusters: []config.Cluster{
		{Name: "app1", User: "monitor", Password: "inline-pw", ReplicationMode: "gtid",
			Hooks:     config.Hooks{Report: "/bin/report"},
			Instances: []config.Instance{{Address: "10.0.0.1:3306"}, {Address: "10.0.0.2:3306", CandidateMaster: true}}},
		{Name: "app2", User: "monitor", PasswordFile: "/etc/q/app2.pass", Password: "from-file",
			Instances: []config.Instance{{Address: "10.0.1.1:3306"}}},
	}}
}

func TestResolveTopology_StateWinsSecretsStayLocal(t *testing.T) {
	cfg := fileCfg()
	files := map[string]string{"/etc/q/app3.pass": "pw3\n"}
	sec := secretSource{
		readFile: func(p string) ([]byte, error) {
			if v, ok := files[p]; ok {
				return []byte(v), nil
			}
			return nil, errors.New("no such file")
		},
		getenv: func(k string) string { return map[string]string{"APP4_PW": "pw4"}[k] },
	}
	defs := []fsm.ClusterDef{
		// app1 in the state: a third instance, another user; no password
		// reference, so the file's inline password is used.
		{Name: "app1", User: "mon2", Instances: []fsm.InstanceDef{{Address: "10.0.0.1:3306"}, {Address: "10.0.0.2:3306"}, {Address: "10.0.0.3:3306", NoMaster: true}}},
		{Name: "app3", User: "m", PasswordFile: "/etc/q/app3.pass", Instances: []fsm.InstanceDef{{Address: "h3:1"}}},
		{Name: "app4", User: "m", PasswordEnv: "APP4_PW", Instances: []fsm.InstanceDef{{Address: "h4:1"}}},
		{Name: "app5", User: "m", PasswordFile: "/missing", Instances: []fsm.InstanceDef{{Address: "h5:1"}}},
	}
	r := resolveTopology(cfg, defs, nil, sec)
	// Bootstrapped: the state alone says what is watched; app2, only in
	// the file, is not.
	if got := r.names(); !slices.Equal(got, []string{"app1", "app3", "app4", "app5"}) {
		t.Fatalf("names = %v", got)
	}
	app1, _ := r.cluster("app1")
	if app1.Origin != originState || app1.User != "mon2" || app1.Password.Reveal() != "inline-pw" ||
		app1.Hooks.Report != "/bin/report" || len(app1.Instances) != 3 || !app1.Instances[2].NoMaster || app1.Instances[1].CandidateMaster {
		t.Errorf("app1 = %+v", app1)
	}
	// Before the bootstrap, the file's clusters are watched as it says.
	if app2, _ := resolveTopology(cfg, nil, nil, sec).cluster("app2"); app2.Origin != originFile || app2.Password.Reveal() != "from-file" {
		t.Errorf("app2 before the bootstrap = %+v", app2)
	}
	if c, _ := r.cluster("app3"); c.Password.Reveal() != "pw3" || c.Source != "replicated state" {
		t.Errorf("app3 password %q source %q", c.Password.Reveal(), c.Source)
	}
	if c, _ := r.cluster("app4"); c.Password.Reveal() != "pw4" {
		t.Errorf("app4 password %q", c.Password.Reveal())
	}
	if c, _ := r.cluster("app5"); c.Password.Reveal() != "" || len(r.problems) != 1 || !strings.Contains(r.problems[0], `"app5"`) {
		t.Errorf("app5 password %q, problems %v", c.Password.Reveal(), r.problems)
	}
	if !r.configured("app1", "10.0.0.3:3306") || r.configured("app2", "10.1.1.1:3306") || !r.anyInstance("H3:1") {
		t.Error("configured/anyInstance wrong")
	}
	// A state-only cluster without a password reference is flagged.
	if r := resolveTopology(cfg, []fsm.ClusterDef{{Name: "app6", User: "m", Instances: []fsm.InstanceDef{{Address: "h6:1"}}}}, nil, sec); len(r.problems) != 1 ||
		!strings.Contains(r.problems[0], "empty password") {
		t.Errorf("app6 problems %v", r.problems)
	}
	// A removed cluster is not watched even though the file lists it, and
	// a state whose only cluster was removed is still bootstrapped.
	if r := resolveTopology(cfg, nil, []string{"app2"}, sec); len(r.names()) != 0 {
		t.Errorf("with app2 removed: %v", r.names())
	}
}

func TestSeedAndDiffTopology(t *testing.T) {
	cfg := fileCfg()
	seeds := SeedClusters(cfg.Clusters, nil, nil)
	if len(seeds) != 2 || seeds[1].PasswordFile != "/etc/q/app2.pass" || seeds[0].PasswordFile != "" {
		t.Fatalf("seeds = %+v", seeds)
	}
	for _, s := range seeds {
		if err := fsm.ValidateClusterDef(s); err != nil {
			t.Errorf("seed %s invalid: %v", s.Name, err)
		}
	}
	if got := DiffTopology(cfg.Clusters, seeds, nil); len(got) != 0 {
		t.Errorf("diff of the seeded state = %v", got)
	}
	// The state differs: app1 has another instance and flags, app2 was
	// removed, app9 exists only in the state. Seeding adds nothing.
	app1 := seeds[0]
	app1.Instances = append(app1.Instances, fsm.InstanceDef{Address: "10.0.0.3:3306", NoMaster: true, AddedBy: "op"})
	app1.Instances[1].CandidateMaster = false
	defs := []fsm.ClusterDef{app1, {Name: "app9", User: "m", Instances: []fsm.InstanceDef{{Address: "h:1"}}}}
	if s := SeedClusters(cfg.Clusters, defs, []string{"app2"}); len(s) != 0 {
		t.Errorf("seeds = %+v", s)
	}
	// A bootstrapped state is never seeded from a file again, even with a
	// cluster it does not hold.
	if s := SeedClusters(cfg.Clusters, defs[1:], nil); len(s) != 0 {
		t.Errorf("seeds into a bootstrapped state = %+v", s)
	}
	if d := strings.Join(DiffTopology(cfg.Clusters, defs[1:], nil), "\n"); !strings.Contains(d, `cluster "app1": in the file, not in the replicated state: not watched`) {
		t.Errorf("diff lacks the unwatched file cluster:\n%s", d)
	}
	diff := strings.Join(DiffTopology(cfg.Clusters, defs, []string{"app2"}), "\n")
	for _, want := range []string{
		`cluster "app1": instance 10.0.0.2:3306: file candidate_master, state (defaults)`,
		`cluster "app1": instance 10.0.0.3:3306: in the state only (no_master, added by op)`,
		`cluster "app2": in the file but removed`,
		`cluster "app9": in the replicated state only`,
	} {
		if !strings.Contains(diff, want) {
			t.Errorf("diff lacks %q:\n%s", want, diff)
		}
	}
}

func TestUnknownReplicas(t *testing.T) {
	configured := []string{"10.0.0.1:3306", "10.0.0.2:3306", "10.0.0.5:3306"}
	hosts := []topology.ReplicaHost{
		{Host: "10.0.0.2", Port: 3306, ServerID: 2},    // configured
		{Host: "db2.example", Port: 3306, ServerID: 2}, // alias of a configured one (server_id)
		{Host: "10.0.0.9", Port: 3306, ServerID: 9},    // unknown
		{Host: "10.0.0.5", Port: 3306, Guessed: true},  // configured, did not register: dropped
		{Host: "10.0.0.7", Port: 3306, Guessed: true},  // unknown, guessed
		{Host: "10.0.0.1", Port: 3306, ServerID: 1},    // the master's own id (odd, but known)
		{Host: "10.0.0.8", Port: 3307, ServerID: 0},    // unknown without an id
	}
	got := unknownReplicas(hosts, "10.0.0.1:3306", configured, map[uint32]bool{1: true, 2: true})
	var addrs []string
	for _, g := range got {
		addrs = append(addrs, g.Address+"/"+g.Source)
	}
	want := []string{"10.0.0.7:3306/dump_thread", "10.0.0.8:3307/slave_hosts", "10.0.0.9:3306/slave_hosts"}
	if !slices.Equal(addrs, want) {
		t.Errorf("unknown = %v, want %v", addrs, want)
	}
}
