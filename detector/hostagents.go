package detector

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// HostAgents asks the agents beside the database servers (`quorumha agent`)
// what their hosts see. cmd adapts *agent.Client to it; tests use fakes.
type HostAgents interface {
	// Reach asks the agent at agentURL (of cluster's instance) whether its
	// host reaches the MySQL server at addr: TCP connect and greeting,
	// within timeout.
	Reach(ctx context.Context, cluster, agentURL, addr string, timeout time.Duration) (AgentReach, error)
	// ServerProcess asks the agent at agentURL whether its database server
	// process runs.
	ServerProcess(ctx context.Context, cluster, agentURL string) (HostProcess, error)
}

// AgentReach is one replica host agent's answer about the master.
type AgentReach struct {
	// Answered is false when the agent did not answer (Error says why):
	// unknown, never "lost the master".
	Answered bool `json:"answered"`
	// Reachable: the master's port answered with a MySQL greeting (or an
	// error packet, which only a running server sends).
	Reachable bool `json:"reachable"`
	// Stage is how far the check got: connect, greeting or ok.
	Stage string `json:"stage,omitempty"`
	// Error is the check's error, or why the agent did not answer.
	Error string `json:"error,omitempty"`
	// ElapsedMillis is how long the agent's check took.
	ElapsedMillis int64 `json:"elapsed_ms,omitempty"`
	// At is when this controller got the answer (its clock).
	At time.Time `json:"at"`
}

// HostProcess is a master host agent's answer about its server process.
type HostProcess struct {
	// Known is false when the agent has no pid file configured.
	Known   bool
	Running bool
	PID     int
	// Since is when the agent first saw the current state.
	Since time.Time
	// Error is why the agent could not read its pid file: unknown.
	Error string
}

// Gone reports whether the answer proves the server process is not running.
func (p HostProcess) Gone() bool { return p.Known && !p.Running && p.Error == "" }

// agentCallSlack is added to a reach check's own timeout to bound the HTTP
// call that carries it.
const agentCallSlack = 250 * time.Millisecond

// reachTimeout is the check's timeout the agents are asked for: the probe
// timeout, within the agent's bounds (50ms-5s).
func reachTimeout(probeTimeout time.Duration) time.Duration {
	return min(max(probeTimeout, 50*time.Millisecond), 5*time.Second)
}

// askReach asks the agents of the given replicas (replica address -> agent
// URL) in parallel whether their hosts reach master, each call bounded.
// Replicas without an agent are left out; an agent that fails to answer
// gets an unanswered AgentReach.
func askReach(ctx context.Context, agents HostAgents, cluster, master string, urls map[string]string,
	replicas []string, timeout time.Duration, clock Clock) map[string]AgentReach {
	out := make(map[string]AgentReach, len(replicas))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, r := range replicas {
		u := agentURL(urls, r)
		if u == "" {
			continue
		}
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, timeout+agentCallSlack)
			defer cancel()
			a, err := agents.Reach(cctx, cluster, u, master, timeout)
			if err != nil {
				a = AgentReach{Error: fmt.Sprintf("agent %s: %v", u, err)}
			} else {
				a.Answered = true
			}
			a.At = clock.Now()
			mu.Lock()
			out[r] = a
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// agentURL finds addr's agent; addresses compare case-insensitively.
func agentURL(urls map[string]string, addr string) string {
	if u, ok := urls[addr]; ok {
		return u
	}
	for k, u := range urls {
		if strings.EqualFold(k, addr) {
			return u
		}
	}
	return ""
}

// processCheck asks the master host's agent about its server process after
// a refused probe, and folds the answer into res: ProcessGone when the agent
// proves the process gone, and a note in Detail either way so the vote says
// what the host saw.
func processCheck(ctx context.Context, agents HostAgents, cluster, url string, res ProbeResult, timeout time.Duration) ProbeResult {
	cctx, cancel := context.WithTimeout(ctx, timeout+agentCallSlack)
	defer cancel()
	p, err := agents.ServerProcess(cctx, cluster, url)
	switch {
	case err != nil:
		res.Detail += fmt.Sprintf("; agent did not say whether the server runs: %v", err)
	case !p.Known:
		res.Detail += "; agent has no pid file to tell whether the server runs"
	case p.Error != "":
		res.Detail += "; agent cannot read the pid file: " + p.Error
	case p.Running:
		res.Detail += fmt.Sprintf("; agent: server process %d running", p.PID)
	default:
		res.ProcessGone = true
		res.Detail += fmt.Sprintf("; agent: no server process running (pid %d) since %s", p.PID, p.Since.UTC().Format(time.RFC3339Nano))
	}
	return res
}

// earlyProbeDivisor sets the shortest time between this controller's probes
// of a master that an early probe may cut the interval to: ProbeInterval / 5,
// or ProbeTimeout when that is shorter.
const earlyProbeDivisor = 5

// wantsEarlyProbe reports whether a peer's vote in a calls for probing the
// master now rather than at the next interval: the peer saw it fail (Suspect
// or Down) after this controller's last probe, which said Up, and that probe
// is at least minGap old. The quorum then forms within a gossip round of the
// first controller noticing a crash, instead of within a probe interval,
// and the early probe refreshes this controller's replica view too.
func wantsEarlyProbe(a Assessment, own Verdict, now time.Time, minGap time.Duration) bool {
	if own.State != StateUp || now.Sub(own.ObservedAt) < minGap {
		return false
	}
	for _, v := range a.Votes {
		if v.Controller != own.Controller && (v.State == StateSuspect || v.State == StateDown) &&
			v.ObservedAt.After(own.ObservedAt) {
			return true
		}
	}
	return false
}

// maybeWake wakes a cluster's probe loop when wantsEarlyProbe says so.
func (d *Detector) maybeWake(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cs, ok := d.clusters[name]
	if !ok {
		return // removed meanwhile
	}
	tm := d.Timings()
	gap := min(tm.ProbeInterval/earlyProbeDivisor, tm.ProbeTimeout)
	if !cs.assessed || !wantsEarlyProbe(cs.last, cs.own, d.cfg.Clock.Now(), gap) {
		return
	}
	select {
	case cs.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
}
