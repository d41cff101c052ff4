package recovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"
)

// maxHookOutput is how much of a hook's output is kept: the tail, where
// scripts print why they failed. Unbounded output from a chatty script would
// otherwise end up in memory and in the replicated failover record.
const maxHookOutput = 4096

// hookWaitDelay bounds how long Run waits for the output pipes to close after
// the hook exited or was killed: a daemon the script left behind may hold them.
const hookWaitDelay = 2 * time.Second

// HookRunner runs operator hooks (MHA-compatible scripts). It is safe for
// concurrent use; it holds configuration only.
type HookRunner struct {
	// Timeout bounds one run; 0 means only the context bounds it. The whole
	// process group is killed when it expires, so a script's children
	// (ssh, arping) cannot keep a failover waiting.
	Timeout time.Duration
	// Logger receives one line per run; nil discards.
	Logger *slog.Logger
	// Env is added to the minimal environment of every hook (for example a
	// site variable the scripts expect). Hooks never inherit the
	// controller's whole environment: it holds every cluster's
	// QUORUMHA_CLUSTERS_* password and the API tokens.
	Env []string
	// Secrets are values (cluster passwords, tokens) replaced by "xxx" in
	// the output kept from a hook, which goes into the replicated record
	// and the log. The passwords a hook gets in its environment are
	// redacted too.
	Secrets []string
}

// inheritedEnv names the variables a hook inherits from the controller:
// what finding programs, the locale, the time zone and ssh (MHA hooks
// often ssh to the servers) need, and nothing that could hold a secret.
var inheritedEnv = []string{"PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "HOME", "USER", "LOGNAME", "TMPDIR", "SSH_AUTH_SOCK"}

// hookEnv is the environment of a hook: inheritedEnv from environ, then
// extra (HookRunner.Env) and call (the hook contract's variables).
func hookEnv(environ, extra, call []string) []string {
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		for _, keep := range inheritedEnv {
			if name == keep {
				out = append(out, kv)
				break
			}
		}
	}
	return append(append(out, extra...), call...)
}

// secretValues returns the values of env entries whose name suggests a
// credential (the hook contract passes the masters' passwords this way).
func secretValues(env []string) []string {
	var out []string
	for _, kv := range env {
		name, v, ok := strings.Cut(kv, "=")
		if ok && v != "" && secretArgName(name) {
			out = append(out, v)
		}
	}
	return out
}

// redactSecrets replaces every secret in out with "xxx". When out is a tail
// (truncated), a secret cut at its start would survive as a fragment, so
// the first line of a truncated output is dropped.
func redactSecrets(out string, truncated bool, secrets []string) string {
	secrets = slices.DeleteFunc(slices.Clone(secrets), func(s string) bool { return s == "" })
	if len(secrets) == 0 {
		return out
	}
	if truncated {
		if i := strings.IndexByte(out, '\n'); i >= 0 {
			out = "[...]" + out[i:]
		} else {
			out = "[...]"
		}
	}
	// Longest first, so a secret containing another is replaced whole.
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, sec := range secrets {
		out = strings.ReplaceAll(out, sec, "xxx")
	}
	return out
}

// HookResult is what happened when a hook ran.
type HookResult struct {
	// ExitCode is the process's exit status; -1 when it did not exit on its
	// own (not started, killed on timeout or cancellation).
	ExitCode int
	// Output is the tail (last 4 KiB) of stdout and stderr, interleaved.
	Output string
	// Truncated reports that earlier output was dropped.
	Truncated bool
	Duration  time.Duration
	// Err is set when the hook did not run to completion: it could not be
	// started, it timed out (ErrHookTimeout), or ctx was cancelled. A
	// non-zero exit alone is not an error: Interpret decides what it means.
	Err error
}

// Action is what the failover does after this result: Interpret on the exit
// code, and for a hook that never completed Abort (Warn for a report hook).
func (r HookResult) Action(kind HookKind) Action {
	if r.Err != nil {
		if kind == HookReport {
			return Warn
		}
		return Abort
	}
	return Interpret(kind, r.ExitCode)
}

// Run executes the hook at path with args (passed verbatim, no shell), stdin
// from /dev/null, and env added to the environment (HookCall.Env carries the
// passwords). Cancelling ctx or reaching Timeout kills the process group.
func (h HookRunner) Run(ctx context.Context, path string, args []string, env ...string) HookResult {
	logger := h.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	runCtx := ctx
	if h.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, h.Timeout)
		defer cancel()
	}
	// A configured hook is a program optionally followed by its own
	// arguments (config validates the first word as an executable); MHA's
	// arguments come after them, as when MHA runs "$script --command=...".
	if words := strings.Fields(path); len(words) > 1 {
		path, args = words[0], append(words[1:len(words):len(words)], args...)
	}
	cmd := exec.CommandContext(runCtx, path, args...)
	cmd.Env = hookEnv(os.Environ(), h.Env, env)
	out := &tailBuffer{max: maxHookOutput}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = hookWaitDelay
	setProcessGroup(cmd)

	start := time.Now()
	err := cmd.Run()
	res := HookResult{ExitCode: -1, Duration: time.Since(start)}
	res.Output, res.Truncated = out.String()
	res.Output = redactSecrets(res.Output, res.Truncated, append(secretValues(env), h.Secrets...))

	var exitErr *exec.ExitError
	switch {
	case err == nil:
		res.ExitCode = 0
	case errors.As(err, &exitErr) && exitErr.Exited():
		// It exited on its own, even if the deadline passed just after.
		res.ExitCode = exitErr.ExitCode()
	case errors.Is(err, exec.ErrWaitDelay):
		// Exited, but a leftover child kept the output open past WaitDelay.
		res.ExitCode = cmd.ProcessState.ExitCode()
	case ctx.Err() != nil:
		res.Err = fmt.Errorf("hook %s: %w", path, ctx.Err())
	case runCtx.Err() != nil:
		res.Err = fmt.Errorf("hook %s: %w after %s", path, ErrHookTimeout, h.Timeout)
	default:
		res.Err = fmt.Errorf("run hook %s: %w", path, err)
	}
	level, attrs := slog.LevelInfo, []any{"path", path, "args", redact(args),
		"exit_code", res.ExitCode, "duration", res.Duration}
	if res.Err != nil || res.ExitCode != 0 {
		// The output tail is what tells an operator why a hook failed.
		level, attrs = slog.LevelWarn, append(attrs, "error", res.Err, "output", res.Output)
	}
	logger.Log(ctx, level, "hook ran", attrs...)
	return res
}

// redact hides credential arguments in logs: MHA logged them as xxx too.
// Besides MHA's --*_password, any --name=value whose name mentions a
// password, secret or token is hidden, since hooks may take their own.
func redact(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		name, _, ok := strings.Cut(a, "=")
		if ok && secretArgName(name) {
			a = name + "=xxx"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

// secretArgName reports whether an option name suggests a credential.
func secretArgName(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"password", "passwd", "secret", "token"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// tailBuffer keeps the last max bytes written to it. exec writes stdout and
// stderr from separate goroutines when they are distinct writers; it is one
// writer here, but the lock keeps that an implementation detail.
type tailBuffer struct {
	mu        sync.Mutex
	max       int
	buf       []byte
	truncated bool
}

// Write appends p, dropping the oldest bytes beyond max.
func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.truncated = true
	}
	return len(p), nil
}

// String returns the kept tail and whether anything was dropped.
func (t *tailBuffer) String() (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	// The cut may split a UTF-8 sequence; drop the fragment so the output
	// stays valid text in logs and JSON records.
	return strings.ToValidUTF8(string(t.buf), ""), t.truncated
}
