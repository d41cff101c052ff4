package main

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/quorumha/quorumha/sandbox"
)

// The demo runs a binlog agent beside every server's datadir, as production
// runs one on every database host, so a demo failover shows the salvage
// step. They live under DIR/agents, described by DIR/agents.json.
const (
	sandboxAgentsDir  = "agents"
	sandboxAgentsFile = "agents.json"
	sandboxAgentToken = "agent.token"
	// sandboxAgentFencePW holds the sandbox admin's password, with which
	// each agent fences its server over the server's socket.
	sandboxAgentFencePW = "agent.fence.pw"
	sandboxAgentMarker  = "agent\x00--config"
)

// sandboxAgent is one detached `quorumha agent` of the demo.
type sandboxAgent struct {
	Instance string `json:"instance"` // the server's address
	URL      string `json:"url"`
	Config   string `json:"config"`
	Log      string `json:"log"`
	PID      int    `json:"pid"`
}

// startSandboxAgents starts one agent per server, serving its datadir (where
// the sandbox's binlogs are) with a bearer token in DIR/agent.token.
func startSandboxAgents(s *sandbox.Sandbox) ([]sandboxAgent, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("sandbox agents: find own binary: %w", err)
	}
	dir := s.Dir()
	token := filepath.Join(dir, sandboxAgentToken)
	if err := os.WriteFile(token, []byte(rand.Text()+"\n"), 0o600); err != nil {
		return nil, err
	}
	fencePW := filepath.Join(dir, sandboxAgentFencePW)
	if err := os.WriteFile(fencePW, []byte(sandbox.AdminPassword+"\n"), 0o600); err != nil {
		return nil, err
	}
	ports, err := freeLoopbackPorts(len(s.Instances()))
	if err != nil {
		return nil, err
	}
	var agents []sandboxAgent
	save := func() error {
		b, _ := json.MarshalIndent(agents, "", "  ")
		return os.WriteFile(filepath.Join(dir, sandboxAgentsFile), b, 0o600)
	}
	for i, inst := range s.Instances() {
		adir := filepath.Join(dir, sandboxAgentsDir, inst.Name)
		a := sandboxAgent{Instance: inst.Addr(), URL: fmt.Sprintf("http://127.0.0.1:%d", ports[i]),
			Config: filepath.Join(adir, "agent.yaml"), Log: filepath.Join(adir, "agent.log")}
		// A replica's datadir also holds relay-bin.index: name the binlog's.
		// Fencing is on, as in production: an agent arms once a majority
		// of the controllers renews its server's lease (the master's) and
		// fences it when that lease lapses.
		cfg := fmt.Sprintf("agent:\n  listen: 127.0.0.1:%d\n  binlog_dir: %s\n  binlog_index: %s\n  token_file: %s\n  pid_file: %s\n"+
			"  fence:\n    socket: %s\n    user: %s\n    password_file: %s\n    state_file: %s\n",
			ports[i], inst.DataDir, filepath.Join(inst.DataDir, sandbox.BinlogIndex), token, inst.PIDFile(),
			inst.Socket, sandbox.AdminUser, fencePW, filepath.Join(adir, "fence.json"))
		if err := os.MkdirAll(adir, 0o700); err != nil {
			return agents, err
		}
		if err := os.WriteFile(a.Config, []byte(cfg), 0o600); err != nil {
			return agents, err
		}
		logf, err := os.OpenFile(a.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return agents, err
		}
		cmd := exec.Command(self, "agent", "--config", a.Config)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		err = cmd.Start()
		logf.Close()
		if err != nil {
			return agents, fmt.Errorf("start agent for %s: %w", inst.Name, err)
		}
		a.PID = cmd.Process.Pid
		_ = cmd.Process.Release() // detached: nobody here waits for it
		agents = append(agents, a)
		if err := save(); err != nil {
			return agents, err
		}
	}
	for _, a := range agents {
		if err := waitSandboxAgent(a); err != nil {
			return agents, err
		}
	}
	return agents, nil
}

// waitSandboxAgent polls an agent's /healthz until it answers, or fails
// with its log when the process died or never answered.
func waitSandboxAgent(a sandboxAgent) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(a.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if !detachedAlive(a.PID, sandboxAgentMarker) || time.Now().After(deadline) {
			log, _ := os.ReadFile(a.Log)
			return fmt.Errorf("agent for %s did not start: %s", a.Instance, strings.TrimSpace(string(log)))
		}
		time.Sleep(100 * time.Millisecond) // polling a detached process we do not own
	}
}

// loadSandboxAgents reads DIR/agents.json (none when it does not exist).
func loadSandboxAgents(dir string) ([]sandboxAgent, error) {
	return loadDetached[sandboxAgent](filepath.Join(dir, sandboxAgentsFile))
}

// printSandboxAgents lists the demo's agents with their state.
func printSandboxAgents(w io.Writer, dir string) error {
	agents, err := loadSandboxAgents(dir)
	if err != nil || len(agents) == 0 {
		return err
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENT FOR\tURL\tPID\tSTATE")
	for _, a := range agents {
		state := "dead"
		if detachedAlive(a.PID, sandboxAgentMarker) {
			state = "alive"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", a.Instance, a.URL, a.PID, state)
	}
	return tw.Flush()
}

// stopSandboxAgents kills the demo's agents (they only read) and removes
// their files.
func stopSandboxAgents(dir string) error {
	agents, err := loadSandboxAgents(dir)
	if err != nil {
		return err
	}
	for _, a := range agents {
		if detachedAlive(a.PID, sandboxAgentMarker) {
			_ = syscall.Kill(a.PID, syscall.SIGKILL)
		}
	}
	var errs []error
	for _, p := range []string{sandboxAgentsDir, sandboxAgentsFile, sandboxAgentToken, sandboxAgentFencePW} {
		if err := os.RemoveAll(filepath.Join(dir, p)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
