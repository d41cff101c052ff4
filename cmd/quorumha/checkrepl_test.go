package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/config"
	"github.com/quorumha/quorumha/recovery"
	"github.com/quorumha/quorumha/sandbox"
)

// closedPorts returns n loopback addresses nothing listens on.
func closedPorts(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ln.Addr().String())
		ln.Close()
	}
	return out
}

func writeCheckReplConfig(t *testing.T, addrs []string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("clusters:\n  - name: app1\n    user: u\n    password: p\n    repl_user: repl\n    instances:\n")
	for _, a := range addrs {
		b.WriteString("      - address: " + a + "\n")
	}
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func exitCodeOf(err error) int {
	if err == nil {
		return 0
	}
	var ec exitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return -1
}

func TestCheckRepl_ExitCodes(t *testing.T) {
	addrs := closedPorts(t, 2)
	good := writeCheckReplConfig(t, addrs)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("clusters: [{name: x}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"all instances down is a problem", []string{"--config", good, "--json"}, 1},
		{"unknown cluster is a usage error", []string{"--config", good, "--cluster", "nope"}, 2},
		{"invalid config", []string{"--config", bad}, 2},
		{"missing config file", []string{"--config", filepath.Join(t.TempDir(), "none.yaml")}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := newCheckReplCmd()
			var out, errOut bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&errOut)
			cmd.SetArgs(tc.args)
			err := cmd.ExecuteContext(context.Background())
			if got := exitCodeOf(err); got != tc.want {
				t.Fatalf("exit %d (%v), want %d\nstdout: %s\nstderr: %s", got, err, tc.want, out.String(), errOut.String())
			}
		})
	}
}

func TestCheckRepl_UnreachableJSON(t *testing.T) {
	addrs := closedPorts(t, 2)
	cfg, _, err := config.Load(writeCheckReplConfig(t, addrs), config.LoadOptions{Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	opts := checkReplOptions{asJSON: true, connectTimeout: time.Second, readTimeout: time.Second, clusterTimeout: 10 * time.Second}
	err = runCheckRepl(context.Background(), &out, cfg, opts, slog.New(slog.DiscardHandler))
	if exitCodeOf(err) != 1 {
		t.Fatalf("err = %v, want exit 1", err)
	}
	var rep replReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	if rep.OK || len(rep.Clusters) != 1 || rep.Clusters[0].OK || rep.Clusters[0].Master != "" {
		t.Fatalf("report = %+v, want one failed cluster without master", rep)
	}
	var got []string
	for _, p := range rep.Clusters[0].Problems {
		got = append(got, string(p.Code)+" "+p.Instance)
	}
	want := []string{"no_master ", "unreachable " + addrs[0], "unreachable " + addrs[1]}
	slices.Sort(want[1:])
	if !slices.Equal(got, want) {
		t.Fatalf("problems %q, want %q", got, want)
	}
	for _, in := range rep.Clusters[0].Instances {
		if in.Role != "unreachable" || !strings.Contains(in.Error, "refused") {
			t.Errorf("instance %+v: want unreachable with the connect error", in)
		}
	}
}

func TestPrintReplReport_Text(t *testing.T) {
	lag := int64(3)
	rep := replReport{Clusters: []replClusterReport{{
		Name: "app1", Master: "m:1", ReplicationMode: "gtid", ReplUser: "repl",
		Instances: []replInstanceReport{
			{Address: "m:1", Role: "master", Configured: true, Version: "MariaDB 10.11.6", Position: "0-1-5"},
			{Address: "r:2", Role: "replica", Configured: true, CandidateMaster: true, ReadOnly: true, ReplicatesFrom: "m:1",
				IORunning: "Yes", SQLRunning: "No", LagSeconds: &lag, UsingGTID: "Slave_Pos"},
			{Address: "r:3", Role: "unreachable", Configured: true, Error: "connection refused"},
		},
		Problems: []recovery.Problem{
			{Severity: recovery.SeverityError, Code: recovery.ProblemSQLThreadNotRunning, Instance: "r:2", Message: "Slave_SQL_Running=No"},
			{Severity: recovery.SeverityWarning, Code: recovery.ProblemRelayLogPurge, Instance: "r:2", Message: "on"},
		},
		Errors: 1, Warnings: 1,
	}, {Name: "app2", Master: "x:1", Problems: []recovery.Problem{}}}}
	var b bytes.Buffer
	printReplReport(&b, rep)
	text := b.String()
	for _, want := range []string{
		`cluster app1: master m:1, gtid replication, repl user "repl"`,
		"master      m:1  MariaDB 10.11.6  read_only=OFF  pos=0-1-5",
		"replica     r:2    read_only=ON  from m:1  io=Yes  sql=No  lag=3s  Slave_Pos  [candidate_master]",
		"unreachable r:3  connection refused",
		"ERROR [sql_thread_not_running] r:2: Slave_SQL_Running=No",
		"WARN [relay_log_purge] r:2: on",
		"2 problems (1 error, 1 warning)",
		"cluster app2: master x:1",
		"OK: no problems",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
}

func TestReadReplGrant_HostPatterns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a MariaDB server")
	}
	sb := sandbox.New(t, sandbox.Options{Replicas: -1})
	db, err := sb.AdminDB(0)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	for _, s := range []string{
		"CREATE USER 'r2'@'10.%' IDENTIFIED BY 'x'",
		"CREATE USER 'r2'@'localhost' IDENTIFIED BY 'x'",
		"GRANT REPLICATION SLAVE ON *.* TO 'r2'@'localhost'",
	} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	tests := []struct {
		user          string
		with, without []string
	}{
		{sandbox.ReplUser, []string{"%"}, nil},
		{"r2", []string{"localhost"}, []string{"10.%"}},
		{"nobody", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.user, func(t *testing.T) {
			g, err := readReplGrant(ctx, db, tc.user)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(g.WithPrivilege, tc.with) || !slices.Equal(g.WithoutPrivilege, tc.without) {
				t.Fatalf("grant = %+v, want with %q without %q", g, tc.with, tc.without)
			}
		})
	}
}
