package recovery

import (
	"context"
	"fmt"
	"time"

	"github.com/quorumha/quorumha/detector"
)

// SecondaryCheck is the outcome of the cluster's hooks.secondary_check
// (MHA's secondary_check_script), kept in a decision's evidence.
type SecondaryCheck struct {
	Path     string        `json:"path"`
	Args     []string      `json:"args"`
	ExitCode int           `json:"exit_code"`
	Output   string        `json:"output,omitempty"`
	Error    string        `json:"error,omitempty"`
	Took     time.Duration `json:"took"`
	// Dead is the script's verdict: the master is unreachable from every
	// route it tried, so the failover may start.
	Dead bool `json:"dead"`
	// Verdict says in words what the exit code means.
	Verdict string `json:"verdict"`
}

// SecondaryCheckArgs builds the arguments MHA 0.58 passes to
// secondary_check_script:
//
//	--user=SSH_USER --master_host=H --master_ip=I --master_port=P --master_user=U --ping_type=SELECT
//
// MHA also passes --master_password=W; quorumha puts the password in
// EnvOrigMasterPassword instead (arguments are visible to every user
// through ps), unless passArgs is set for scripts that read it there.
func SecondaryCheckArgs(h HookHosts) HookCall {
	args := []string{opt("user", h.OrigSSHUser), opt("master_host", h.OrigHost), opt("master_ip", h.OrigIP),
		opt("master_port", port(h.OrigPort)), opt("master_user", h.OrigUser)}
	call := HookCall{Args: append(args, opt("ping_type", "SELECT"))}
	if h.PassPasswordArgs {
		call.Args = append(call.Args, opt("master_password", h.OrigPassword))
	} else {
		call.Env = []string{EnvOrigMasterPassword + "=" + h.OrigPassword}
	}
	return call
}

// SecondaryVerdict interprets a secondary check's exit code as MHA does
// (MasterMonitor.pm): 0 means the master is unreachable from every route
// the script tried, so the failover goes on; 2 means some route still
// reaches it and 3 that the script could not reach a route of its own
// (a network problem): no failover; anything else, or a script that did
// not complete, is an error and no failover either: a check that was
// asked for and did not confirm the death never lets it through.
func SecondaryVerdict(res HookResult) (dead bool, verdict string) {
	switch {
	case res.Err != nil:
		return false, "did not complete (" + res.Err.Error() + "): no failover"
	case res.ExitCode == 0:
		return true, "master unreachable from every route: failover"
	case res.ExitCode == 2:
		return false, "master reachable from at least one route: no failover"
	case res.ExitCode == 3:
		return false, "a route of the check itself is unreachable (network problem): no failover"
	default:
		return false, fmt.Sprintf("unexpected exit %d: no failover", res.ExitCode)
	}
}

// secondaryCheck runs the cluster's secondary check on the assessed master,
// when one is configured (nil otherwise).
func (d *Runner) secondaryCheck(ctx context.Context, a detector.Assessment) *SecondaryCheck {
	cc, ok := d.clusterConfig(a.Cluster)
	if !ok || cc.Hooks.SecondaryCheck == "" {
		return nil
	}
	h, p := hostPort(a.Master)
	call := SecondaryCheckArgs(HookHosts{OrigHost: h, OrigIP: h, OrigPort: p, OrigUser: cc.User, OrigPassword: cc.Password, OrigSSHUser: cc.SSHUser})
	res := d.exec.hooks(ctx, cc.Hooks.SecondaryCheck, call.Args, call.Env...)
	sc := &SecondaryCheck{Path: cc.Hooks.SecondaryCheck, Args: call.Args, ExitCode: res.ExitCode, Output: tail(res.Output), Took: res.Duration}
	if res.Err != nil {
		sc.Error = res.Err.Error()
	}
	sc.Dead, sc.Verdict = SecondaryVerdict(res)
	return sc
}
