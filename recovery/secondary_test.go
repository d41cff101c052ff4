package recovery

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/detector"
)

// TestRunner_SecondaryCheck runs a real script as hooks.secondary_check
// right before the decision: only exit 0 (dead from every route) lets the
// decision through, and its result is in the evidence.
func TestRunner_SecondaryCheck(t *testing.T) {
	cases := []struct {
		name    string
		exit    string
		decided bool
		verdict string
	}{
		{"exit 0: dead from every route", "exit 0", true, "unreachable from every route"},
		{"exit 2: reachable from another route", "exit 2", false, "reachable from at least one route"},
		{"exit 3: a route of the check is down", "exit 3", false, "network problem"},
		{"exit 1: error", "exit 1", false, "unexpected exit 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "called")
			script := filepath.Join(dir, "secondary_check")
			body := "#!/bin/sh\necho \"$@\" > " + out + "\necho \"pw=$" + EnvOrigMasterPassword + "\" >> " + out + "\necho checked\n" + c.exit + "\n"
			if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
				t.Fatal(err)
			}
			e := newExecEnv(t)
			e.cc.Password, e.cc.SSHUser = "s3cret", "root"
			e.cc.Hooks.SecondaryCheck = script
			a := &fakeAssessor{ch: make(chan detector.Assessment, 1), recheck: detector.ProbeResult{Instance: mOld, Reason: detector.ReasonRefused}}
			r := NewRunner(RunnerConfig{NodeID: "c1", AntiFlap: time.Hour, Now: func() time.Time { return t0 }, Clusters: []ClusterConfig{e.cc},
				Executor: ExecutorConfig{ApplyTimeout: time.Second}}, e.g, e.g.f, a, e.f.dial, HookRunner{Timeout: 10 * time.Second}.Run)
			if err := r.Handle(context.Background(), deadApp(mOld)); err != nil {
				t.Fatal(err)
			}
			called, err := os.ReadFile(out)
			if err != nil {
				t.Fatalf("secondary check not run: %v", err)
			}
			for _, want := range []string{"--user=root", "--master_host=10.0.0.1", "--master_ip=10.0.0.1", "--master_port=3306", "--master_user=admin", "--ping_type=SELECT", "pw=s3cret"} {
				if !strings.Contains(string(called), want) {
					t.Fatalf("script got %q, missing %q", called, want)
				}
			}
			if strings.Contains(strings.SplitN(string(called), "\n", 2)[0], "s3cret") {
				t.Fatalf("password passed as an argument: %q", called)
			}
			recs := e.g.f.History("app1", 0)
			if !c.decided {
				if len(recs) != 0 {
					t.Fatalf("decision committed despite the secondary check: %+v", recs)
				}
				return
			}
			if len(recs) != 1 {
				t.Fatalf("records = %d, want 1", len(recs))
			}
			var ev Evidence
			if err := json.Unmarshal(recs[0].Evidence, &ev); err != nil {
				t.Fatal(err)
			}
			sc := ev.SecondaryCheck
			if sc == nil || !sc.Dead || sc.ExitCode != 0 || !strings.Contains(sc.Verdict, c.verdict) || !strings.Contains(sc.Output, "checked") {
				t.Fatalf("evidence secondary check %+v", sc)
			}
		})
	}
}

func TestSecondaryVerdict(t *testing.T) {
	for _, c := range []struct {
		res  HookResult
		dead bool
	}{
		{HookResult{ExitCode: 0}, true},
		{HookResult{ExitCode: 2}, false},
		{HookResult{ExitCode: 3}, false},
		{HookResult{ExitCode: 10}, false},
		{HookResult{ExitCode: -1, Err: ErrHookTimeout}, false},
	} {
		if dead, why := SecondaryVerdict(c.res); dead != c.dead || why == "" {
			t.Errorf("SecondaryVerdict(%+v) = %t %q, want %t", c.res, dead, why, c.dead)
		}
	}
}
