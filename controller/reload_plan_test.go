package controller

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/config"
)

func baseReloadConfig() *config.Config {
	cfg := config.Default()
	cfg.Source = "/etc/quorumha/c1.yaml"
	cfg.Node = config.Node{ID: "c1", DataDir: "/var/lib/q", RaftAddr: "127.0.0.1:7000", HTTPAddr: "127.0.0.1:8080"}
	cfg.Clusters = []config.Cluster{{
		Name: "app1", User: "mon", Password: "secret1", Source: "/etc/quorumha/c1.yaml",
		Hooks:     config.Hooks{Report: "/bin/report"},
		Instances: []config.Instance{{Address: "10.0.0.1:3306"}, {Address: "10.0.0.2:3306"}},
	}}
	return cfg
}

func TestPlanReload(t *testing.T) {
	cases := []struct {
		name        string
		edit        func(*config.Config)
		apply       []string // "key old->new"
		restart     []string
		restartNote string // a word every restart note must contain
	}{
		{name: "no change", edit: func(*config.Config) {}},
		{name: "source only", edit: func(c *config.Config) { c.Source = "/elsewhere.yaml" }},
		{name: "log level", edit: func(c *config.Config) { c.Log.Level = "debug" },
			apply: []string{"log.level info->debug"}},
		{name: "detector timings", edit: func(c *config.Config) {
			c.Detector.ProbeInterval = 200 * time.Millisecond
			c.Detector.ProbeTimeout = 3 * time.Second
			c.Detector.FailureThreshold = 5
			c.Detector.FreshnessWindow = 9 * time.Second
		}, apply: []string{"detector.failure_threshold 3->5", "detector.freshness_window 5s->9s",
			"detector.probe_interval 500ms->200ms", "detector.probe_timeout 500ms->3s"}},
		{name: "hooks", edit: func(c *config.Config) {
			c.Clusters[0].Hooks.Report = "/bin/report2"
			c.Clusters[0].Hooks.Shutdown = "/bin/stonith"
		}, apply: []string{"clusters[app1].hooks.report /bin/report->/bin/report2", "clusters[app1].hooks.shutdown ->/bin/stonith"}},
		{name: "node keys", edit: func(c *config.Config) {
			c.Node.HTTPAddr = "127.0.0.1:9090"
			c.Node.DataDir = "/data"
			c.Node.RaftTLSCert = "/c.pem"
		}, restart: []string{"node.data_dir /var/lib/q->/data", "node.http_addr 127.0.0.1:8080->127.0.0.1:9090",
			"node.raft_tls_cert ->/c.pem"}, restartNote: "node"},
		{name: "log format", edit: func(c *config.Config) { c.Log.Format = "json" },
			restart: []string{"log.format text->json"}, restartNote: "log handler"},
		{name: "quorum and recovery", edit: func(c *config.Config) {
			c.Detector.Quorum = "2"
			c.Recovery.AntiFlap = time.Minute
		}, restart: []string{"detector.quorum majority->2", "recovery.anti_flap 1h0m0s->1m0s"}, restartNote: "restart"},
		{name: "password masked", edit: func(c *config.Config) { c.Clusters[0].Password = "secret2" },
			restart: []string{"clusters[app1].password ****->****"}, restartNote: "clusters"},
		{name: "api token from file", edit: func(c *config.Config) { c.API.Token = "t" },
			restart: []string{"api.token ->****"}, restartNote: "HTTP"},
		{name: "instance added", edit: func(c *config.Config) {
			c.Clusters[0].Instances = append(c.Clusters[0].Instances, config.Instance{Address: "10.0.0.3:3306", NoMaster: true})
		}, restart: []string{"clusters[app1].instances[10.0.0.3:3306] (absent)->present"}, restartNote: "clusters"},
		{name: "instance flag", edit: func(c *config.Config) { c.Clusters[0].Instances[1].CandidateMaster = true },
			restart: []string{"clusters[app1].instances[10.0.0.2:3306].candidate_master false->true"}, restartNote: "clusters"},
		{name: "cluster added", edit: func(c *config.Config) {
			c.Clusters = append(c.Clusters, config.Cluster{Name: "app2", Hooks: config.Hooks{Report: "/r"}})
		}, restart: []string{"clusters[app2] (absent)->present"}, restartNote: "clusters"},
		{name: "cluster removed", edit: func(c *config.Config) { c.Clusters = nil },
			restart: []string{"clusters[app1] present->(absent)"}, restartNote: "clusters"},
		{name: "mixed", edit: func(c *config.Config) {
			c.Log.Level = "warn"
			c.Node.GossipAddr = "127.0.0.1:7946"
		}, apply: []string{"log.level info->warn"}, restart: []string{"node.gossip_addr ->127.0.0.1:7946"}, restartNote: "gossip"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := baseReloadConfig()
			next := baseReloadConfig()
			tc.edit(next)
			plan := planReload(old, next)
			if got := showChanges(plan.Apply); got != fmt.Sprint(tc.apply) {
				t.Errorf("apply %s, want %v", got, tc.apply)
			}
			if got := showChanges(plan.Restart); got != fmt.Sprint(tc.restart) {
				t.Errorf("restart %s, want %v", got, tc.restart)
			}
			for _, ch := range plan.Restart {
				if !strings.Contains(ch.Note, "restart") || !strings.Contains(ch.Note, tc.restartNote) {
					t.Errorf("%s: note %q does not say restart/%s", ch.Key, ch.Note, tc.restartNote)
				}
			}
			for _, ch := range plan.Apply {
				if ch.Note == "" {
					t.Errorf("%s: applied without a note", ch.Key)
				}
			}
			// After applying, only the restart keys still differ.
			again := planReload(applyLive(old, next), next)
			if len(again.Apply) != 0 || showChanges(again.Restart) != fmt.Sprint(tc.restart) {
				t.Errorf("after applyLive: apply %s restart %s", showChanges(again.Apply), showChanges(again.Restart))
			}
		})
	}
}

func showChanges(cs []keyChange) string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Key+" "+c.Old+"->"+c.New)
	}
	return fmt.Sprint(out)
}

// applyLive never changes the config it was given: the running
// controller's view must not move under it.
func TestApplyLive_CopiesRunning(t *testing.T) {
	old := baseReloadConfig()
	next := baseReloadConfig()
	next.Clusters[0].Hooks.Report = "/new"
	next.Log.Level = "debug"
	out := applyLive(old, next)
	if old.Clusters[0].Hooks.Report != "/bin/report" || old.Log.Level != "info" {
		t.Fatalf("running config modified: %+v %s", old.Clusters[0].Hooks, old.Log.Level)
	}
	if out.Clusters[0].Hooks.Report != "/new" || out.Log.Level != "debug" {
		t.Fatalf("applied config %+v %s", out.Clusters[0].Hooks, out.Log.Level)
	}
}
