package config

import (
	"errors"
	"strings"
	"testing"
)

func TestParseMHA_Syntax(t *testing.T) {
	f, err := ParseMHA(strings.NewReader("\ufeff# comment\n; other comment\n\n  [ server default ]  \n user = root \npassword=a=b\n[server1]\nhostname=h1\n[binlog1]\nhostname=b1\n"), "app.cnf")
	if err != nil {
		t.Fatal(err)
	}
	if f.Default == nil || len(f.Servers) != 1 || len(f.Binlogs) != 1 {
		t.Fatalf("sections: %+v", f)
	}
	if p, _ := f.Default.Get("user"); p.Value != "root" || p.Line != 5 {
		t.Errorf("user = %+v, want root at line 5", p)
	}
	if p, _ := f.Default.Get("password"); p.Value != "a=b" {
		t.Errorf("password = %q, want a=b (split at the first '=')", p.Value)
	}
}

func TestParseMHA_Errors(t *testing.T) {
	tests := []struct {
		name, input, want string
	}{
		{"no equals", "[server1]\nhostname h1\n", "app.cnf:2: \"hostname h1\": expected key=value"},
		{"key outside section", "hostname=h1\n", "app.cnf:1: hostname: key outside of any section"},
		{"unknown section", "[global]\n", "app.cnf:1: \"[global]\": unknown section"},
		{"unterminated", "[server1\n", "app.cnf:1: \"[server1\": unterminated section header"},
		{"empty key", "[server1]\n=x\n", "app.cnf:2: \"=x\": expected key=value"},
		{"duplicate server", "[server1]\n[server1]\n", "app.cnf:2: \"[server1]\": duplicate section (first at line 1)"},
		{"second default", "[server default]\n[server default]\n", "app.cnf:2: \"[server default]\": second [server default]"},
		{"huge line", "[server1]\nhostname=" + strings.Repeat("x", maxMHALine) + "\n", "app.cnf:2: line longer than 65536 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMHA(strings.NewReader(tt.input), "app.cnf")
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("err = %v, want ErrSyntax", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want containing %q", err, tt.want)
			}
		})
	}
}

const sampleMHA = `[server default]
user=mha
password=topsecret
repl_user=repl
repl_password=replsecret
ssh_user=root
manager_workdir=/var/log/masterha/app1
manager_log=/var/log/masterha/app1/manager.log
remote_workdir=/var/tmp
master_binlog_dir=/var/lib/mysql
ping_interval=3
ping_type=SELECT
secondary_check_script=masterha_secondary_check -s remote1 -s remote2
master_ip_failover_script=/usr/local/bin/master_ip_failover
master_ip_online_change_script=/usr/local/bin/master_ip_online_change
shutdown_script=/usr/local/bin/power_manager
report_script=/usr/local/bin/send_report
use_gtid_auto_pos=0

[server1]
hostname=10.0.1.20
ip=10.0.1.20
candidate_master=1

[server2]
hostname=10.0.2.20
port=3307
check_repl_delay=0
no_master=1

[server3]
hostname=fe80::1
ignore_fail=1
`

func TestImportMHA_Mapping(t *testing.T) {
	f, err := ParseMHA(strings.NewReader(sampleMHA), "app1.cnf")
	if err != nil {
		t.Fatal(err)
	}
	cl, warns, err := ImportMHA(f, nil, "app1")
	if err != nil {
		t.Fatal(err)
	}
	off := false
	want := Cluster{
		Name: "app1", User: "mha", Password: "topsecret", ReplUser: "repl", ReplPassword: "replsecret",
		SSHUser: "root", MasterBinlogDir: "/var/lib/mysql", ReplicationMode: ReplicationFile, Source: "app1.cnf",
		Hooks: Hooks{
			IPFailover: "/usr/local/bin/master_ip_failover", IPOnlineChange: "/usr/local/bin/master_ip_online_change",
			Shutdown: "/usr/local/bin/power_manager", Report: "/usr/local/bin/send_report",
		},
		Instances: []Instance{
			{Address: "10.0.1.20:3306", CandidateMaster: true},
			{Address: "10.0.2.20:3307", NoMaster: true, CheckReplDelay: &off},
			{Address: "[fe80::1]:3306", IgnoreFail: true},
		},
	}
	if cl.Password.Reveal() != "topsecret" || cl.ReplPassword.Reveal() != "replsecret" {
		t.Errorf("passwords not imported")
	}
	got := cl
	if len(got.Instances) != 3 || got.Instances[1].CheckReplDelay == nil || *got.Instances[1].CheckReplDelay {
		t.Fatalf("instances = %+v", got.Instances)
	}
	got.Instances[1].CheckReplDelay, want.Instances[1].CheckReplDelay = nil, nil
	if gs, ws := fmtCluster(got), fmtCluster(want); gs != ws {
		t.Errorf("cluster\n got %s\nwant %s", gs, ws)
	}
	byKey := map[string]Warning{}
	for _, w := range warns {
		byKey[w.Key] = w
	}
	for _, k := range []string{"manager_workdir", "manager_log", "remote_workdir", "ping_interval", "ping_type", "secondary_check_script"} {
		if _, ok := byKey["[server default] "+k]; !ok {
			t.Errorf("no warning for %s; got %v", k, warns)
		}
	}
	if w := byKey["[server default] ping_interval"]; w.Value != "3" || !strings.Contains(w.Message, "detector.probe_interval is global") || w.File != "app1.cnf:11" {
		t.Errorf("ping_interval warning = %+v", w)
	}
	if w := byKey["[server default] secondary_check_script"]; !strings.Contains(w.Message, "multi-vantage") {
		t.Errorf("secondary_check warning = %+v", w)
	}
	if _, ok := byKey["[server1] ip"]; !ok {
		t.Errorf("no warning for ip")
	}
	if len(warns) != 7 {
		t.Errorf("got %d warnings, want 7: %v", len(warns), warns)
	}
	for _, w := range warns {
		if strings.Contains(w.String(), "topsecret") {
			t.Errorf("warning reveals password: %s", w)
		}
	}
}

func fmtCluster(c Cluster) string {
	var b strings.Builder
	b.WriteString(c.Name + "|" + c.User + "|" + c.ReplUser + "|" + c.SSHUser + "|" + c.MasterBinlogDir + "|" + c.ReplicationMode + "|" + c.Source)
	b.WriteString("|" + c.Hooks.IPFailover + "|" + c.Hooks.IPOnlineChange + "|" + c.Hooks.Shutdown + "|" + c.Hooks.Report + "|" + c.Hooks.SecondaryCheck)
	for _, in := range c.Instances {
		b.WriteString("|" + in.Address)
		for _, f := range []bool{in.CandidateMaster, in.NoMaster, in.IgnoreFail, in.CheckReplDelay != nil} {
			if f {
				b.WriteString("+")
			} else {
				b.WriteString("-")
			}
		}
	}
	return b.String()
}

func TestImportMHA_Inheritance(t *testing.T) {
	defaults, err := ParseMHA(strings.NewReader("[server default]\nuser=fromdefaults\nport=3310\nrepl_user=r0\ncheck_repl_delay=0\n"), "/etc/masterha_default.cnf")
	if err != nil {
		t.Fatal(err)
	}
	app, err := ParseMHA(strings.NewReader("[server default]\nrepl_user=r1\n[server1]\nhostname=a\n[server2]\nhostname=b\nport=3320\ncheck_repl_delay=1\n"), "app.cnf")
	if err != nil {
		t.Fatal(err)
	}
	cl, _, err := ImportMHA(app, defaults, "app")
	if err != nil {
		t.Fatal(err)
	}
	if cl.User != "fromdefaults" || cl.ReplUser != "r1" {
		t.Errorf("user=%q repl_user=%q, want fromdefaults and r1", cl.User, cl.ReplUser)
	}
	if cl.Instances[0].Address != "a:3310" || cl.Instances[1].Address != "b:3320" {
		t.Errorf("addresses = %v, %v", cl.Instances[0].Address, cl.Instances[1].Address)
	}
	if d := cl.Instances[0].CheckReplDelay; d == nil || *d {
		t.Errorf("server1 check_repl_delay should inherit 0 from defaults, got %v", d)
	}
	if d := cl.Instances[1].CheckReplDelay; d == nil || !*d {
		t.Errorf("server2 check_repl_delay should be 1, got %v", d)
	}

	builtin, _ := ParseMHA(strings.NewReader("[server1]\nhostname=a\n[server2]\nhostname=b\n"), "b.cnf")
	cl, _, err = ImportMHA(builtin, nil, "b")
	if err != nil {
		t.Fatal(err)
	}
	if cl.User != "root" || cl.Instances[0].Address != "a:3306" || cl.ReplicationMode != ReplicationGTID || cl.Instances[0].CheckReplDelay != nil {
		t.Errorf("built-in defaults not applied: %+v", cl)
	}
}

func TestImportMHA_PerServerDifferenceWarns(t *testing.T) {
	f, _ := ParseMHA(strings.NewReader("[server1]\nhostname=a\nuser=u1\npassword=p1\n[server2]\nhostname=b\nuser=u2\npassword=p2\n"), "d.cnf")
	cl, warns, err := ImportMHA(f, nil, "d")
	if err != nil {
		t.Fatal(err)
	}
	if cl.User != "u1" {
		t.Errorf("user = %q, want first server's", cl.User)
	}
	if len(warns) != 2 {
		t.Fatalf("warnings = %v, want user and password", warns)
	}
	for _, w := range warns {
		if strings.Contains(w.String(), "p2") {
			t.Errorf("warning reveals password: %s", w)
		}
	}
}

func TestImportMHA_Errors(t *testing.T) {
	tests := []struct {
		name, input string
		sentinel    error
		want        string
	}{
		{"unknown key", "[server default]\nping_intervall=3\n[server1]\nhostname=a\n", ErrUnknownKey, "x.cnf:2: [server default] ping_intervall: \"3\": unknown MHA parameter"},
		{"cli option", "[server default]\nlast_failover_minute=60\n[server1]\nhostname=a\n", ErrUnknownKey, "use recovery.anti_flap"},
		{"missing hostname", "[server1]\nport=3306\n[server2]\nhostname=b\n", ErrMissing, "x.cnf:1: [server1] hostname: every [serverN] section needs a hostname"},
		{"no servers", "[server default]\nuser=x\n", ErrMissing, "no [serverN] sections"},
		{"bad bool", "[server1]\nhostname=a\ncandidate_master=maybe\n", ErrInvalidValue, "x.cnf:3: [server1] candidate_master: \"maybe\": must be 0 or 1"},
		{"bad port", "[server1]\nhostname=a\nport=99999\n", ErrInvalidValue, "[server1] port: \"99999\""},
		{"bad gtid flag", "[server default]\nuse_gtid_auto_pos=x\n[server1]\nhostname=a\n", ErrInvalidValue, "use_gtid_auto_pos: \"x\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseMHA(strings.NewReader(tt.input), "x.cnf")
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = ImportMHA(f, nil, "x")
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("err = %v, want %v", err, tt.sentinel)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want containing %q", err, tt.want)
			}
		})
	}
}

func TestImportMHA_EveryKnownKeyAccepted(t *testing.T) {
	var b strings.Builder
	b.WriteString("[server default]\n")
	perServer := ""
	for k, def := range mhaKeys() {
		if def.perServer {
			perServer += k + "=1\n"
			continue
		}
		v := "1"
		if k == "port" {
			v = "3306"
		}
		b.WriteString(k + "=" + v + "\n")
	}
	b.WriteString("[server1]\n" + strings.Replace(perServer, "no_master=1\n", "", 1) + "hostname=a\n")
	f, err := ParseMHA(strings.NewReader(b.String()), "all.cnf")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(mhaKeys()); n != 42 {
		t.Errorf("mhaKeys has %d keys, want MHA 0.58's 42", n)
	}
	if _, _, err := ImportMHA(f, nil, "all"); err != nil {
		t.Errorf("every MHA key should be accepted: %v", err)
	}
}
