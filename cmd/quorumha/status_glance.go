package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/quorumha/quorumha/api"
	"github.com/quorumha/quorumha/detector"
	"github.com/quorumha/quorumha/lease"
)

// glance is what `quorumha status` shows: the group as every controller
// reports it, and each cluster as the asked controller sees it.
type glance struct {
	// Asked is the controller the CLI asked (--addr).
	Asked api.StatusResponse `json:"asked"`
	// Group is one row per raft peer (and gossip member not in raft).
	Group []controllerView `json:"group"`
	// Clusters is the asked controller's /v1/clusters answer.
	Clusters []clusterView `json:"clusters"`
}

// controllerView is one controller of the group: the asked controller's
// knowledge of it (raft configuration, gossip) plus, when its HTTP address
// is known, its own /v1/status.
type controllerView struct {
	ID        string    `json:"id"`
	Zone      string    `json:"zone,omitempty"`
	RaftAddr  string    `json:"raft_addr,omitempty"`
	HTTPAddr  string    `json:"http_addr,omitempty"`
	Suffrage  string    `json:"suffrage,omitempty"` // "" when only in gossip
	Leader    bool      `json:"leader"`
	Gossip    string    `json:"gossip,omitempty"` // alive, suspect; "" when not heard
	Reachable bool      `json:"reachable"`        // its /v1/status answered
	Error     string    `json:"error,omitempty"`  // why it did not
	RaftState string    `json:"raft_state,omitempty"`
	Term      uint64    `json:"term,omitempty"`
	Applied   uint64    `json:"applied_index,omitempty"`
	Contact   time.Time `json:"last_contact,omitzero"`
}

// clusterView is one cluster of /v1/clusters, its topology typed
// (api.ClusterTopology).
type clusterView = api.ClusterInfo

// peerStatusTimeout bounds asking one other controller: an unreachable one
// must not hold the whole view.
const peerStatusTimeout = 2 * time.Second

// gatherGlance asks the controller c for its status and clusters, then every
// other controller whose HTTP address it knows (from the replicated state or
// gossip) for theirs, in parallel.
func gatherGlance(ctx context.Context, c *apiClient) (glance, json.RawMessage, json.RawMessage, error) {
	var g glance
	var rawStatus, rawClusters json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/v1/status", nil, &rawStatus); err != nil {
		return g, nil, nil, err
	}
	if err := json.Unmarshal(rawStatus, &g.Asked); err != nil {
		return g, nil, nil, fmt.Errorf("GET /v1/status: decode answer: %w", err)
	}
	if err := c.do(ctx, http.MethodGet, "/v1/clusters", nil, &rawClusters); err != nil {
		return g, nil, nil, err
	}
	var cr struct {
		Clusters []clusterView `json:"clusters"`
	}
	if err := json.Unmarshal(rawClusters, &cr); err != nil {
		return g, nil, nil, fmt.Errorf("GET /v1/clusters: decode answer: %w", err)
	}
	g.Clusters = cr.Clusters
	g.Group = groupOf(g.Asked)

	var wg sync.WaitGroup
	for i := range g.Group {
		cv := &g.Group[i]
		if cv.ID == g.Asked.ID {
			cv.Reachable = true
			fillFromStatus(cv, g.Asked)
			continue
		}
		if cv.Suffrage == "" {
			// Only raft peers are asked: anyone who speaks gossip can
			// advertise an address, and the request carries the token.
			cv.Error = "not asked"
			continue
		}
		if cv.HTTPAddr == "" {
			cv.Error = "address unknown"
			continue
		}
		base := cv.HTTPAddr
		if !strings.Contains(base, "://") {
			base = schemeOf(c.base) + base
		}
		if schemeOf(c.base) == "https://" && !strings.HasPrefix(base, "https://") {
			cv.Error = "plain http address: not asked over https"
			continue
		}
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, peerStatusTimeout)
			defer cancel()
			peer := &apiClient{base: base, token: c.token, http: c.http}
			var st api.StatusResponse
			if err := peer.do(pctx, http.MethodGet, "/v1/status", nil, &st); err != nil {
				cv.Error = shortErr(err)
				return
			}
			cv.Reachable = true
			fillFromStatus(cv, st)
		})
	}
	wg.Wait()
	return g, rawStatus, rawClusters, nil
}

// schemeOf returns "http://" or "https://" as base uses.
func schemeOf(base string) string {
	if strings.HasPrefix(base, "https://") {
		return "https://"
	}
	return "http://"
}

// shortErr keeps the cause of a failed request short enough for a table.
func shortErr(err error) string {
	s := err.Error()
	for _, cause := range []string{"connection refused", "timeout", "deadline exceeded", "no such host"} {
		if strings.Contains(s, cause) {
			return cause
		}
	}
	return s
}

func fillFromStatus(cv *controllerView, st api.StatusResponse) {
	cv.RaftState, cv.Term, cv.Applied, cv.Contact = st.RaftState, st.Term, st.FSMAppliedIndex, st.LastContact
	if cv.Zone == "" {
		cv.Zone = st.Zone
	}
}

// groupOf lists the controllers the asked one knows: every raft peer, with
// its HTTP address from the replicated state only (each controller records
// its own through the leader) and zone from there or else from gossip, and
// gossip members that are not (yet) raft peers, without an address: a
// gossip-advertised address is never trusted with the token.
func groupOf(s api.StatusResponse) []controllerView {
	gossip := map[string]detector.Member{}
	for _, m := range s.GossipMembers {
		gossip[m.Name] = m
	}
	var out []controllerView
	seen := map[string]bool{}
	for _, p := range s.Peers {
		m := gossip[p.ID]
		cv := controllerView{ID: p.ID, RaftAddr: p.RaftAddr, Suffrage: p.Suffrage,
			Leader: p.Leader || (s.KnownLeader && p.ID == s.Leader.ID),
			Zone:   firstSet(p.Zone, m.Zone), HTTPAddr: p.HTTPAddr, Gossip: m.State}
		if p.ID == s.ID {
			cv.Zone, cv.HTTPAddr = firstSet(s.Zone, cv.Zone), firstSet(s.HTTPAddr, cv.HTTPAddr)
		}
		out = append(out, cv)
		seen[p.ID] = true
	}
	for _, m := range s.GossipMembers {
		if !seen[m.Name] {
			out = append(out, controllerView{ID: m.Name, Zone: m.Zone, Gossip: m.State})
		}
	}
	slices.SortFunc(out, func(a, b controllerView) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// renderGlance prints the group and the clusters in tables that fit 100
// columns. now makes ages relative and the output testable.
func renderGlance(w io.Writer, g glance, now time.Time) error {
	leader := "no leader known"
	if g.Asked.KnownLeader {
		leader = "leader " + g.Asked.Leader.ID
	}
	fmt.Fprintf(w, "GROUP  term %d, %s (asked %s)\n", g.Asked.Term, leader, g.Asked.ID)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  CONTROLLER\tZONE\tRAFT\tTERM\tAPPLIED\tCONTACT\tGOSSIP\tHTTP")
	for _, c := range g.Group {
		id := c.ID
		if c.Leader {
			id += " *"
		}
		if c.Suffrage != "" && c.Suffrage != "voter" {
			id += " (" + c.Suffrage + ")"
		}
		if c.Suffrage == "" {
			id += " (not in raft)"
		}
		state, term, applied, contact := "?", "-", "-", c.Error
		if c.Reachable {
			state, term, applied = c.RaftState, fmt.Sprint(c.Term), fmt.Sprint(c.Applied)
			switch {
			case c.RaftState == "Leader":
				contact = "-"
			case c.Contact.IsZero():
				contact = "never"
			default:
				contact = age(now.Sub(c.Contact)) + " ago"
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, dash(c.Zone), state, term, applied, dash(contact), dash(c.Gossip), dash(c.HTTPAddr))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	for _, c := range g.Clusters {
		fmt.Fprintln(w)
		if err := renderClusterGlance(w, c, now); err != nil {
			return err
		}
	}
	if len(g.Clusters) == 0 {
		fmt.Fprintln(w, "\nno clusters")
	}
	return nil
}

// renderClusterGlance prints one cluster: a header line, its instances with
// replication state, and every controller's verdict on the master.
func renderClusterGlance(w io.Writer, c clusterView, now time.Time) error {
	topo := c.Topology
	if topo == nil {
		topo = &api.ClusterTopology{}
	}
	a := topo.Assessment
	health := "not assessed"
	master := c.Master
	if a != nil {
		health = a.State.String()
		master = firstSet(a.Master, master)
	}
	notes := []string{}
	if c.State != nil {
		if c.State.Master != "" && !strings.EqualFold(c.State.Master, master) {
			notes = append(notes, "recorded master "+c.State.Master)
		}
		if c.State.InMaintenance(now) {
			notes = append(notes, "maintenance until "+formatTime(c.State.MaintenanceUntil))
		}
		if !c.State.LastFailover.IsZero() && c.State.AckedAt.Before(c.State.LastFailover) {
			notes = append(notes, fmt.Sprintf("failover %d not acked", c.State.LastFailoverID))
		}
	}
	fmt.Fprintf(w, "CLUSTER %s  master %s  %s", c.Name, dash(master), strings.ToUpper(health))
	if len(notes) > 0 {
		fmt.Fprintf(w, "  (%s)", strings.Join(notes, ", "))
	}
	fmt.Fprintln(w)
	if a != nil && a.State != detector.AssessHealthy && a.Reason != "" {
		fmt.Fprintf(w, "  why: %s\n", a.Reason)
	}
	if af := c.AwaitingFence; af != nil {
		fmt.Fprintf(w, "  AWAITING_FENCE failover %d since %s (%s): %s\n", af.RecordID, formatTime(af.Since), age(now.Sub(af.Since)), oneLine(af.Reason))
		fmt.Fprintf(w, "    no promotion until a fence proof holds; to accept the risk: quorumha failover --cluster %s --unfenced\n", c.Name)
	}

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  INSTANCE\tROLE\tIO\tSQL\tLAG\tREPLICATES FROM")
	views := map[string]detector.ReplicaObservation{}
	if a != nil {
		for _, o := range a.ReplicaView {
			views[o.Replica] = o
		}
	}
	addrs := []string{}
	for _, in := range topo.ConfiguredInstances {
		addrs = append(addrs, in.Address)
	}
	if master != "" && !slices.ContainsFunc(addrs, func(s string) bool { return strings.EqualFold(s, master) }) {
		addrs = append([]string{master}, addrs...)
	}
	for _, addr := range addrs {
		if strings.EqualFold(addr, master) {
			fmt.Fprintf(tw, "  %s\tmaster\t-\t-\t-\t-\n", addr)
			continue
		}
		o, ok := views[addr]
		switch {
		case !ok:
			fmt.Fprintf(tw, "  %s\treplica\t?\t?\t?\t?\n", addr)
		case !o.Reachable:
			fmt.Fprintf(tw, "  %s\tunreachable\t-\t-\t-\t%s\n", addr, dash(briefError(o.Error)))
		default:
			sql := "No"
			if o.SQLRunning {
				sql = "Yes"
			}
			lag := "NULL"
			if o.SecondsBehind != nil {
				lag = fmt.Sprintf("%ds", *o.SecondsBehind)
			}
			fmt.Fprintf(tw, "  %s\treplica\t%s\t%s\t%s\t%s\n", addr, dash(o.IORunning), sql, lag, dash(o.MasterAddr()))
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	if a == nil {
		return nil
	}
	for _, o := range a.ReplicaView {
		if line := replicaSignals(o, a.At); line != "" {
			fmt.Fprintf(w, "  %s sees the master: %s\n", o.Replica, line)
		}
	}
	votes := make([]string, 0, len(a.Votes))
	for _, v := range a.Votes {
		vote := v.Controller
		if v.Zone != "" {
			vote += "@" + v.Zone
		}
		vote += " " + v.State.String()
		if v.State != detector.StateUp {
			reason := v.Reason.String()
			if v.ProcessGone {
				reason += ", agent: process gone"
			}
			vote += " (" + reason + ")"
		}
		votes = append(votes, vote)
	}
	for _, v := range a.Stale {
		votes = append(votes, fmt.Sprintf("%s stale", v.Controller))
	}
	fmt.Fprintf(w, "  verdicts: %s  (%d down, %d needed)\n", strings.Join(votes, ", "), a.DownCount, a.Needed)
	if line := leaseLine(a, topo.Lease, now); line != "" {
		fmt.Fprintln(w, line)
	}
	return nil
}

// leaseLine summarises the master's quorum lease: each controller's grant
// as gossiped with its verdict (renewing, or stopped for a failover record,
// with the age of its last renewal) and the agent's state as the asked
// controller last heard it. "" when no controller grants a lease.
func leaseLine(a *detector.Assessment, own *lease.ClusterLease, now time.Time) string {
	var grants []string
	for _, v := range slices.Concat(a.Votes, a.Stale) {
		if v.Lease == nil || !strings.EqualFold(v.Instance, a.Master) {
			continue
		}
		g := v.Controller + " renewing"
		if v.Lease.StoppedFor != 0 {
			g = fmt.Sprintf("%s stopped for record %d", v.Controller, v.Lease.StoppedFor)
		}
		grants = append(grants, g+", last "+age(now.Sub(v.Lease.Bound))+" ago")
	}
	if len(grants) == 0 {
		return ""
	}
	line := "  lease: " + strings.Join(grants, "; ")
	if own != nil {
		for _, m := range own.Masters {
			if strings.EqualFold(m.Instance, a.Master) && m.State != "" {
				line += fmt.Sprintf("  (agent %s, ttl %s)", m.State, own.TTL)
				break
			}
		}
	}
	return line
}

// replicaSignals says what the replica view has beyond the IO thread: the
// heartbeats (and how long since anything arrived) and the replica host
// agent's check of the master; "" when neither is known.
func replicaSignals(o detector.ReplicaObservation, at time.Time) string {
	var parts []string
	if o.Heartbeats != nil {
		hb := fmt.Sprintf("%d heartbeats", *o.Heartbeats)
		if o.HeartbeatPeriod > 0 {
			hb += " every " + o.HeartbeatPeriod.String()
		}
		if !o.ProgressAt.IsZero() && !at.IsZero() {
			hb += ", last progress " + age(at.Sub(o.ProgressAt)) + " before"
			if o.HeartbeatStalled(at) {
				hb += " (stalled)"
			}
		}
		parts = append(parts, hb)
	}
	if r := o.Reach; r != nil {
		switch {
		case !r.Answered:
			parts = append(parts, "agent did not answer")
		case r.Reachable:
			parts = append(parts, fmt.Sprintf("agent reaches it (%dms)", r.ElapsedMillis))
		default:
			why := r.Error[strings.LastIndex(r.Error, ": ")+1:] // "dial tcp ...: i/o timeout" → "i/o timeout"
			parts = append(parts, fmt.Sprintf("agent cannot reach it (%s:%s)", r.Stage, why))
		}
	}
	return strings.Join(parts, "; ")
}

// age rounds a duration for display: ms below a second, else 0.1 s.
func age(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// briefError keeps the first clause of a probe error ("refused: probe ...:
// dial tcp ...: connection refused" → "refused"), at most 30 characters, so
// the table stays within 100 columns; --json has the whole text.
func briefError(s string) string {
	s, _, _ = strings.Cut(s, ":")
	if len(s) > 30 {
		s = s[:29] + "…"
	}
	return s
}
