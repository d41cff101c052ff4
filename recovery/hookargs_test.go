package recovery

import (
	"errors"
	"slices"
	"testing"
)

var testHosts = HookHosts{
	OrigHost: "db1", OrigIP: "10.0.1.20", OrigPort: 3306, OrigUser: "admin", OrigPassword: "o-secret", OrigSSHUser: "root",
	NewHost: "db2", NewIP: "10.0.2.20", NewPort: 3307, NewUser: "admin2", NewPassword: "n-secret", NewSSHUser: "mha",
}

func TestIPFailoverArgs_MatchMHA(t *testing.T) {
	withArgs := testHosts
	withArgs.PassPasswordArgs = true
	orig := []string{"--orig_master_host=db1", "--orig_master_ip=10.0.1.20", "--orig_master_port=3306"}
	newm := []string{"--new_master_host=db2", "--new_master_ip=10.0.2.20", "--new_master_port=3307", "--new_master_user=admin2"}
	cat := func(parts ...[]string) []string { return slices.Concat(parts...) }
	tests := []struct {
		name    string
		command HookCommand
		hosts   HookHosts
		args    []string
		env     []string
	}{
		{"status", CommandStatus, testHosts,
			cat([]string{"--command=status", "--ssh_user=root"}, orig), nil},
		{"stop", CommandStop, testHosts,
			cat(orig, []string{"--command=stop"}), nil},
		{"stopssh", CommandStopSSH, testHosts,
			cat(orig, []string{"--command=stopssh", "--ssh_user=root"}), nil},
		{"start, password in env", CommandStart, testHosts,
			cat([]string{"--command=start", "--ssh_user=mha"}, orig, newm),
			[]string{"QUORUMHA_NEW_MASTER_PASSWORD=n-secret"}},
		{"start, password as MHA argument", CommandStart, withArgs,
			cat([]string{"--command=start", "--ssh_user=mha"}, orig, newm, []string{"--new_master_password=n-secret"}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			call, err := IPFailoverArgs(tt.command, tt.hosts)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(call.Args, tt.args) {
				t.Errorf("args\n got %q\nwant %q", call.Args, tt.args)
			}
			if !slices.Equal(call.Env, tt.env) {
				t.Errorf("env got %q, want %q", call.Env, tt.env)
			}
		})
	}
}

func TestOnlineChangeArgs_MatchMHA(t *testing.T) {
	base := []string{
		"--orig_master_host=db1", "--orig_master_ip=10.0.1.20", "--orig_master_port=3306", "--orig_master_user=admin",
		"--new_master_host=db2", "--new_master_ip=10.0.2.20", "--new_master_port=3307", "--new_master_user=admin2",
		"--orig_master_ssh_user=root", "--new_master_ssh_user=mha",
	}
	withArgs := testHosts
	withArgs.PassPasswordArgs = true
	env := []string{"QUORUMHA_ORIG_MASTER_PASSWORD=o-secret", "QUORUMHA_NEW_MASTER_PASSWORD=n-secret"}
	tests := []struct {
		name     string
		command  HookCommand
		hosts    HookHosts
		newSlave bool
		args     []string
		env      []string
	}{
		{"stop", CommandStop, testHosts, false, slices.Concat([]string{"--command=stop"}, base), env},
		{"start, old master becomes replica", CommandStart, testHosts, true,
			slices.Concat([]string{"--command=start"}, base, []string{"--orig_master_is_new_slave"}), env},
		{"stop with password arguments", CommandStop, withArgs, true,
			slices.Concat([]string{"--command=stop"}, base, []string{"--orig_master_is_new_slave",
				"--orig_master_password=o-secret", "--new_master_password=n-secret"}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			call, err := OnlineChangeArgs(tt.command, tt.hosts, tt.newSlave)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(call.Args, tt.args) {
				t.Errorf("args\n got %q\nwant %q", call.Args, tt.args)
			}
			if !slices.Equal(call.Env, tt.env) {
				t.Errorf("env got %q, want %q", call.Env, tt.env)
			}
		})
	}
}

func TestShutdownArgs_MatchMHA(t *testing.T) {
	tests := []struct {
		name    string
		command HookCommand
		pidFile string
		want    []string
	}{
		{"status", CommandStatus, "/run/mysqld.pid",
			[]string{"--command=status", "--ssh_user=root", "--host=db1", "--ip=10.0.1.20"}},
		{"stop", CommandStop, "",
			[]string{"--command=stop", "--host=db1", "--ip=10.0.1.20", "--port=3306"}},
		{"stopssh with pid file", CommandStopSSH, "/run/mysqld.pid",
			[]string{"--command=stopssh", "--ssh_user=root", "--host=db1", "--ip=10.0.1.20", "--port=3306", "--pid_file=/run/mysqld.pid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ShutdownArgs(tt.command, "db1", "10.0.1.20", 3306, tt.pidFile, "root")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestHookArgs_UnknownCommand(t *testing.T) {
	if _, err := IPFailoverArgs("restart", testHosts); !errors.Is(err, ErrHookCommand) {
		t.Errorf("ip failover: err = %v", err)
	}
	if _, err := OnlineChangeArgs(CommandStopSSH, testHosts, false); !errors.Is(err, ErrHookCommand) {
		t.Errorf("online change: err = %v", err)
	}
	if _, err := ShutdownArgs(CommandStart, "h", "i", 1, "", "u"); !errors.Is(err, ErrHookCommand) {
		t.Errorf("shutdown: err = %v", err)
	}
}

func TestReportArgs_MatchMHA(t *testing.T) {
	tests := []struct {
		name      string
		newMaster string
		slaves    []string
		want      []string
	}{
		{"failover succeeded", "db2", []string{"db3", "db4"}, []string{
			"--orig_master_host=db1", "--new_master_host=db2", "--new_slave_hosts=db3,db4",
			"--conf=/etc/app1.cnf", "--subject=app1: MySQL Master failover db1", "--body=Master db1 is down!\n"}},
		{"no new master activated", "", []string{"db3"}, []string{
			"--orig_master_host=db1",
			"--conf=/etc/app1.cnf", "--subject=app1: MySQL Master failover db1", "--body=Master db1 is down!\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ReportArgs("db1", tt.newMaster, tt.slaves, "/etc/app1.cnf", "app1: MySQL Master failover db1", "Master db1 is down!\n")
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestInterpret_MHAExitCodes(t *testing.T) {
	tests := []struct {
		kind HookKind
		code int
		want Action
	}{
		{HookIPFailover, 0, Proceed},
		{HookIPFailover, 10, Warn},
		{HookIPFailover, 1, Abort},
		{HookIPFailover, 255, Abort},
		{HookOnlineChange, 0, Proceed},
		{HookOnlineChange, 10, Warn},
		{HookOnlineChange, 2, Abort},
		{HookShutdown, 0, Proceed}, // powered off
		{HookShutdown, 10, Warn},   // mysqld stopped over ssh
		{HookShutdown, 1, Abort},   // could not fence
		{HookReport, 0, Proceed},
		{HookReport, 10, Warn},
		{HookReport, 1, Warn}, // report hooks never abort
		{HookReport, -1, Warn},
	}
	for _, tt := range tests {
		if got := Interpret(tt.kind, tt.code); got != tt.want {
			t.Errorf("Interpret(%s, %d) = %s, want %s", tt.kind, tt.code, got, tt.want)
		}
	}
}

func TestRedact_HidesPasswords(t *testing.T) {
	got := redact([]string{"--command=start", "--new_master_password=s3cret", "--orig_master_password=x=y", "--new_master_user=u",
		"--password=p", "--api_token=t", "--Secret=s"})
	want := "--command=start --new_master_password=xxx --orig_master_password=xxx --new_master_user=u --password=xxx --api_token=xxx --Secret=xxx"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
