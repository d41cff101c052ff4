package recovery

import (
	"fmt"
	"strconv"
	"strings"
)

// HookCommand is the --command= value MHA passes to a hook.
type HookCommand string

// Hook commands, as MHA 0.58 sends them.
const (
	// CommandStatus asks a hook whether it is ready (MHA's start-up check).
	CommandStatus HookCommand = "status"
	// CommandStop fences the old master without ssh (host unreachable).
	CommandStop HookCommand = "stop"
	// CommandStopSSH fences the old master over ssh (host reachable).
	CommandStopSSH HookCommand = "stopssh"
	// CommandStart moves the writer address to the new master.
	CommandStart HookCommand = "start"
)

// Environment variables that carry passwords to hooks unless
// HookHosts.PassPasswordArgs is set. MHA puts passwords on the command line,
// where every local user can read them with ps; the environment of a process
// is readable only by its owner (and root), so quorumha defaults to it.
const (
	EnvNewMasterPassword  = "QUORUMHA_NEW_MASTER_PASSWORD"
	EnvOrigMasterPassword = "QUORUMHA_ORIG_MASTER_PASSWORD"
)

// HookHosts describes the old and new master for the ip-failover and
// online-change hooks, in the terms MHA's hooks receive.
type HookHosts struct {
	OrigHost     string
	OrigIP       string
	OrigPort     int
	OrigUser     string
	OrigPassword string
	OrigSSHUser  string

	NewHost     string
	NewIP       string
	NewPort     int
	NewUser     string
	NewPassword string
	NewSSHUser  string

	// PassPasswordArgs passes passwords as --*_password= arguments exactly
	// like MHA, for existing scripts that read them there. Off by default:
	// arguments are visible to every user through ps and /proc; the
	// passwords then go only in EnvNewMasterPassword/EnvOrigMasterPassword.
	PassPasswordArgs bool
}

// HookCall is one hook invocation: its arguments and the extra environment
// (passwords) it needs. Pass both to HookRunner.Run.
type HookCall struct {
	Args []string
	Env  []string
}

func opt(name, value string) string { return "--" + name + "=" + value }

func port(p int) string { return strconv.Itoa(p) }

// IPFailoverArgs builds the arguments MHA's master_ip_failover_script gets:
//
//	status:  --command=status --ssh_user=U --orig_master_host=H --orig_master_ip=I --orig_master_port=P
//	stop:    --orig_master_host=H --orig_master_ip=I --orig_master_port=P --command=stop
//	stopssh: --orig_master_host=H --orig_master_ip=I --orig_master_port=P --command=stopssh --ssh_user=U
//	start:   --command=start --ssh_user=U --orig_master_host=H --orig_master_ip=I --orig_master_port=P
//	         --new_master_host=H --new_master_ip=I --new_master_port=P --new_master_user=U
//	         [--new_master_password=W]
//
// The order is MHA's (scripts parse with Getopt, but some grep "$@"). The
// ssh user is the old master's for status and stopssh, the new master's for
// start, as in MHA. MHA's ssh_host/ssh_port/ssh_options extras, which it adds
// only for non-default ssh settings, are not passed: quorumha does not ssh.
func IPFailoverArgs(command HookCommand, h HookHosts) (HookCall, error) {
	orig := []string{opt("orig_master_host", h.OrigHost), opt("orig_master_ip", h.OrigIP), opt("orig_master_port", port(h.OrigPort))}
	switch command {
	case CommandStatus:
		args := []string{opt("command", "status"), opt("ssh_user", h.OrigSSHUser)}
		return HookCall{Args: append(args, orig...)}, nil
	case CommandStop:
		return HookCall{Args: append(orig, opt("command", "stop"))}, nil
	case CommandStopSSH:
		return HookCall{Args: append(orig, opt("command", "stopssh"), opt("ssh_user", h.OrigSSHUser))}, nil
	case CommandStart:
		args := []string{opt("command", "start"), opt("ssh_user", h.NewSSHUser)}
		args = append(args, orig...)
		args = append(args, opt("new_master_host", h.NewHost), opt("new_master_ip", h.NewIP),
			opt("new_master_port", port(h.NewPort)), opt("new_master_user", h.NewUser))
		call := HookCall{Args: args}
		if h.PassPasswordArgs {
			call.Args = append(call.Args, opt("new_master_password", h.NewPassword))
		} else {
			call.Env = []string{EnvNewMasterPassword + "=" + h.NewPassword}
		}
		return call, nil
	default:
		return HookCall{}, fmt.Errorf("%w: ip failover hook: %q", ErrHookCommand, command)
	}
}

// OnlineChangeArgs builds the arguments of MHA's
// master_ip_online_change_script (stop before the switch, start after):
//
//	--command=stop|start --orig_master_host=H --orig_master_ip=I --orig_master_port=P
//	--orig_master_user=U --new_master_host=H --new_master_ip=I --new_master_port=P
//	--new_master_user=U --orig_master_ssh_user=U --new_master_ssh_user=U
//	[--orig_master_is_new_slave] [--orig_master_password=W --new_master_password=W]
func OnlineChangeArgs(command HookCommand, h HookHosts, origIsNewSlave bool) (HookCall, error) {
	if command != CommandStop && command != CommandStart {
		return HookCall{}, fmt.Errorf("%w: online change hook: %q", ErrHookCommand, command)
	}
	args := []string{
		opt("command", string(command)),
		opt("orig_master_host", h.OrigHost), opt("orig_master_ip", h.OrigIP),
		opt("orig_master_port", port(h.OrigPort)), opt("orig_master_user", h.OrigUser),
		opt("new_master_host", h.NewHost), opt("new_master_ip", h.NewIP),
		opt("new_master_port", port(h.NewPort)), opt("new_master_user", h.NewUser),
		opt("orig_master_ssh_user", h.OrigSSHUser), opt("new_master_ssh_user", h.NewSSHUser),
	}
	if origIsNewSlave {
		args = append(args, "--orig_master_is_new_slave")
	}
	if h.PassPasswordArgs {
		args = append(args, opt("orig_master_password", h.OrigPassword), opt("new_master_password", h.NewPassword))
		return HookCall{Args: args}, nil
	}
	return HookCall{Args: args, Env: []string{
		EnvOrigMasterPassword + "=" + h.OrigPassword,
		EnvNewMasterPassword + "=" + h.NewPassword,
	}}, nil
}

// ShutdownArgs builds the arguments of MHA's shutdown_script:
//
//	status:  --command=status --ssh_user=U --host=H --ip=I
//	stop:    --command=stop --host=H --ip=I --port=P [--pid_file=F]
//	stopssh: --command=stopssh --ssh_user=U --host=H --ip=I --port=P [--pid_file=F]
func ShutdownArgs(command HookCommand, host, ip string, port int, pidFile, sshUser string) ([]string, error) {
	var args []string
	switch command {
	case CommandStatus:
		return []string{opt("command", "status"), opt("ssh_user", sshUser), opt("host", host), opt("ip", ip)}, nil
	case CommandStop:
		args = []string{opt("command", "stop")}
	case CommandStopSSH:
		args = []string{opt("command", "stopssh"), opt("ssh_user", sshUser)}
	default:
		return nil, fmt.Errorf("%w: shutdown hook: %q", ErrHookCommand, command)
	}
	args = append(args, opt("host", host), opt("ip", ip), opt("port", strconv.Itoa(port)))
	if pidFile != "" {
		args = append(args, opt("pid_file", pidFile))
	}
	return args, nil
}

// ReportArgs builds the arguments of MHA's report_script:
//
//	--orig_master_host=H [--new_master_host=N --new_slave_hosts=a,b] --conf=C --subject=S --body=B
//
// The new master and its replicas are passed only when a new master was
// activated (newMaster non-empty), as MHA does.
func ReportArgs(origMaster, newMaster string, newSlaves []string, conf, subject, body string) []string {
	args := []string{opt("orig_master_host", origMaster)}
	if newMaster != "" {
		args = append(args, opt("new_master_host", newMaster), opt("new_slave_hosts", strings.Join(newSlaves, ",")))
	}
	return append(args, opt("conf", conf), opt("subject", subject), opt("body", body))
}

// HookKind names a hook, since what its exit code means depends on it.
type HookKind string

// Hook kinds.
const (
	HookIPFailover   HookKind = "ip_failover"
	HookOnlineChange HookKind = "online_change"
	HookShutdown     HookKind = "shutdown"
	HookReport       HookKind = "report"
)

// Action is what the failover does after a hook ran.
type Action int

// Actions.
const (
	// Proceed: the hook succeeded.
	Proceed Action = iota
	// Warn: log a warning and go on (MHA's exit 10; any failure of a report
	// hook, which only informs people and must never stop a recovery).
	Warn
	// Abort: stop the recovery before the next step.
	Abort
)

// String names the action for logs and step details.
func (a Action) String() string {
	switch a {
	case Proceed:
		return "proceed"
	case Warn:
		return "warn"
	case Abort:
		return "abort"
	default:
		return "action(" + strconv.Itoa(int(a)) + ")"
	}
}

// Interpret maps a hook's exit code to an action with MHA's contract: 0
// proceed, 10 warn and proceed, anything else abort, except that a report
// hook never aborts. For the shutdown hook, 0 means "powered off" and 10
// "mysqld stopped over ssh": both let the failover go on.
func Interpret(kind HookKind, code int) Action {
	switch {
	case code == 0:
		return Proceed
	case code == 10 || kind == HookReport:
		return Warn
	default:
		return Abort
	}
}
