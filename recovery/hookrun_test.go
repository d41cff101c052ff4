package recovery

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeScript writes an executable shell script into a fresh temp dir.
func writeScript(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hook.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestHookRunner_ExitCodes(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		code   int
		output string
		action Action
	}{
		{"ok", "echo fenced; exit 0", 0, "fenced\n", Proceed},
		{"warn", "echo partial >&2; exit 10", 10, "partial\n", Warn},
		{"fail", "echo 'no vip'; exit 1", 1, "no vip\n", Abort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := HookRunner{Timeout: 10 * time.Second}.Run(context.Background(), writeScript(t, tt.body), nil)
			if res.Err != nil {
				t.Fatalf("err: %v", res.Err)
			}
			if res.ExitCode != tt.code || res.Output != tt.output || res.Truncated {
				t.Errorf("got code %d output %q truncated %v, want %d %q", res.ExitCode, res.Output, res.Truncated, tt.code, tt.output)
			}
			if got := res.Action(HookIPFailover); got != tt.action {
				t.Errorf("action %s, want %s", got, tt.action)
			}
			if got := res.Action(HookReport); got == Abort {
				t.Errorf("report hook action %s: must never abort", got)
			}
		})
	}
}

func TestHookRunner_ArgsEnvAndStdin(t *testing.T) {
	dir := t.TempDir()
	argsFile := filepath.Join(dir, "args")
	script := writeScript(t, `printf '%s\0' "$@" > "`+argsFile+`"
echo "pw=$QUORUMHA_NEW_MASTER_PASSWORD site=$SITE_VAR"
if read line; then echo "stdin=$line"; else echo "stdin=eof"; fi`)
	call, err := IPFailoverArgs(CommandStart, HookHosts{
		OrigHost: "db 1", OrigIP: "10.0.1.20", OrigPort: 3306, OrigSSHUser: "root",
		NewHost: "db'2", NewIP: "$(reboot)", NewPort: 3307, NewUser: `a"b`, NewPassword: "p w;rm", NewSSHUser: "mha",
	})
	if err != nil {
		t.Fatal(err)
	}
	r := HookRunner{Timeout: 10 * time.Second, Env: []string{"SITE_VAR=zone-a"}}
	res := r.Run(context.Background(), script, call.Args, call.Env...)
	if res.Err != nil || res.ExitCode != 0 {
		t.Fatalf("code %d err %v output %q", res.ExitCode, res.Err, res.Output)
	}
	raw, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(raw), "\x00"), "\x00")
	if !slices.Equal(got, call.Args) {
		t.Errorf("script received\n%q\nwant\n%q", got, call.Args)
	}
	// The password reached the hook, and is redacted in what is kept.
	if want := "pw=xxx site=zone-a\nstdin=eof\n"; res.Output != want {
		t.Errorf("output %q, want %q", res.Output, want)
	}
}

func TestHookRunner_OutputKeepsTail(t *testing.T) {
	script := writeScript(t, `i=0; while [ $i -lt 200 ]; do echo "line $i padded to make it longer than before"; i=$((i+1)); done; printf 'é'; echo LAST`)
	res := HookRunner{}.Run(context.Background(), script, nil)
	if res.Err != nil || res.ExitCode != 0 {
		t.Fatalf("code %d err %v", res.ExitCode, res.Err)
	}
	if !res.Truncated || len(res.Output) > maxHookOutput || len(res.Output) < maxHookOutput-3 {
		t.Errorf("truncated %v, len %d: want the last %d bytes", res.Truncated, len(res.Output), maxHookOutput)
	}
	if !strings.HasSuffix(res.Output, "line 199 padded to make it longer than before\néLAST\n") {
		t.Errorf("tail lost: %q", res.Output[len(res.Output)-80:])
	}
	if strings.Contains(res.Output, "line 0 ") {
		t.Error("head of the output kept")
	}
}

// processGone reports whether pid no longer runs (absent or a zombie that
// no one reaped, which is what a killed orphan becomes in some containers).
func processGone(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	fields := bytes.Fields(stat[bytes.LastIndexByte(stat, ')')+1:])
	return len(fields) > 0 && string(fields[0]) == "Z"
}

func TestHookRunner_TimeoutKillsProcessGroup(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	script := writeScript(t, `sleep 30 & echo $! > "`+pidFile+`"; echo started; wait`)
	res := HookRunner{Timeout: 300 * time.Millisecond}.Run(context.Background(), script, nil)
	if !errors.Is(res.Err, ErrHookTimeout) || res.ExitCode != -1 {
		t.Fatalf("err %v code %d, want ErrHookTimeout and -1", res.Err, res.ExitCode)
	}
	if res.Duration > 5*time.Second {
		t.Errorf("took %s", res.Duration)
	}
	if res.Output != "started\n" || res.Action(HookIPFailover) != Abort || res.Action(HookReport) != Warn {
		t.Errorf("output %q, actions %s/%s", res.Output, res.Action(HookIPFailover), res.Action(HookReport))
	}
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("child %d of the hook still runs", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHookRunner_ContextCancelled(t *testing.T) {
	script := writeScript(t, "sleep 30")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res := HookRunner{Timeout: time.Minute}.Run(ctx, script, nil)
	if !errors.Is(res.Err, context.DeadlineExceeded) || errors.Is(res.Err, ErrHookTimeout) || res.ExitCode != -1 {
		t.Fatalf("err %v code %d, want the context's error", res.Err, res.ExitCode)
	}
}

func TestHookRunner_CannotStart(t *testing.T) {
	tests := []struct {
		name string
		path func(t *testing.T) string
	}{
		{"missing", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") }},
		{"not executable", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "hook.sh")
			if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := HookRunner{}.Run(context.Background(), tt.path(t), nil)
			if res.Err == nil || res.ExitCode != -1 || res.Action(HookShutdown) != Abort {
				t.Errorf("err %v code %d action %s", res.Err, res.ExitCode, res.Action(HookShutdown))
			}
		})
	}
}

func TestHookRunner_LogsRedactPasswords(t *testing.T) {
	var logs bytes.Buffer
	r := HookRunner{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	call, err := OnlineChangeArgs(CommandStop, HookHosts{OrigPassword: "orig-pw", NewPassword: "new-pw", PassPasswordArgs: true}, false)
	if err != nil {
		t.Fatal(err)
	}
	res := r.Run(context.Background(), writeScript(t, `echo "refused"; exit 3`), call.Args, call.Env...)
	if res.ExitCode != 3 {
		t.Fatalf("code %d err %v", res.ExitCode, res.Err)
	}
	out := logs.String()
	if strings.Contains(out, "orig-pw") || strings.Contains(out, "new-pw") {
		t.Errorf("password in logs: %s", out)
	}
	for _, want := range []string{"level=WARN", "--new_master_password=xxx", "exit_code=3", "refused"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q: %s", want, out)
		}
	}
}

// A hook configured with its own arguments gets them before MHA's.
func TestHookRunner_ConfiguredArguments(t *testing.T) {
	out := filepath.Join(t.TempDir(), "args")
	script := writeScript(t, `printf '%s\n' "$@" > `+out)
	res := HookRunner{Timeout: 10 * time.Second}.Run(context.Background(), script+" --vip=10.0.0.9  --dev eth0", []string{"--command=stop"})
	if res.Err != nil || res.ExitCode != 0 {
		t.Fatalf("run: code %d err %v output %q", res.ExitCode, res.Err, res.Output)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := "--vip=10.0.0.9\n--dev\neth0\n--command=stop\n"; string(got) != want {
		t.Errorf("arguments %q, want %q", got, want)
	}
}

// Security review item 8: hooks inherited the controller's environment
// (every cluster's QUORUMHA_CLUSTERS_* password) and their output, kept in
// the replicated record, could hold any secret.
func TestHookRunner_MinimalEnvAndRedactedOutput(t *testing.T) {
	t.Setenv("QUORUMHA_CLUSTERS_APP2_PASSWORD", "other-cluster-pw")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
	t.Setenv("LANG", "C.UTF-8")
	script := writeScript(t, `env; echo "token=api-token-123 pw=$QUORUMHA_NEW_MASTER_PASSWORD"`)
	r := HookRunner{Timeout: 10 * time.Second, Secrets: []string{"api-token-123"}}
	res := r.Run(context.Background(), script, nil, EnvNewMasterPassword+"=new-master-pw")
	if res.Err != nil || res.ExitCode != 0 {
		t.Fatalf("code %d err %v output %q", res.ExitCode, res.Err, res.Output)
	}
	for _, leak := range []string{"other-cluster-pw", "aws-secret", "QUORUMHA_CLUSTERS_", "api-token-123", "new-master-pw"} {
		if strings.Contains(res.Output, leak) {
			t.Errorf("output holds %q:\n%s", leak, res.Output)
		}
	}
	for _, want := range []string{"LANG=C.UTF-8", "PATH=", EnvNewMasterPassword + "=xxx", "token=xxx pw=xxx"} {
		if !strings.Contains(res.Output, want) {
			t.Errorf("output lacks %q:\n%s", want, res.Output)
		}
	}
}

func TestRedactSecrets_TruncatedFragment(t *testing.T) {
	got := redactSecrets("ret-value\nline\nsecret-value again", true, []string{"secret-value"})
	if strings.Contains(got, "ret-value") || strings.Contains(got, "secret-value") || !strings.HasSuffix(got, "xxx again") {
		t.Fatalf("got %q", got)
	}
}
