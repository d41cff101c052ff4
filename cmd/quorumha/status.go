package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorumha/quorumha/api"
)

func newStatusCmd() *cobra.Command {
	var (
		o    *clientOptions
		self bool
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the controller group and every cluster at a glance",
		Long: `Ask one controller (--addr) for its view, then every other controller whose
HTTP address it knows (from the replicated state or gossip) for theirs:

  GROUP    each controller: zone, raft state (* marks the leader), term,
           applied index, last contact with the leader, gossip state, and
           whether it answered;
  CLUSTER  per cluster: the master and the asked controller's assessment of
           it, every instance with its replication threads and lag, and each
           controller's verdict on the master.

--self shows only the asked controller's raft detail (indexes, peers, gossip
members). --json prints the controller's /v1/status answer with two more
fields: "group" (the rows above) and "clusters" (its /v1/clusters list).
Views of other controllers may lag the leader; "contact" says how much.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if self {
				return fetch(cmd, o, "/v1/status", func(w io.Writer, s api.StatusResponse) error {
					return renderStatus(w, s, time.Now())
				})
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			g, rawStatus, rawClusters, err := gatherGlance(cmd.Context(), c)
			if err != nil {
				return err
			}
			if o.json {
				return printGlanceJSON(cmd.OutOrStdout(), g, rawStatus, rawClusters)
			}
			if err := renderGlance(cmd.OutOrStdout(), g, time.Now()); err != nil {
				return err
			}
			renderTopologyDiff(cmd.Context(), cmd.OutOrStdout(), c)
			renderDiscovered(cmd.Context(), cmd.OutOrStdout(), c, g)
			return nil
		},
	}
	o = addClientFlags(cmd)
	cmd.Flags().BoolVar(&self, "self", false, "only the asked controller's raft detail")
	return cmd
}

// printGlanceJSON prints /v1/status as the controller answered it, with
// "group" and "clusters" added at the end, so scripts reading the old fields
// keep working.
func printGlanceJSON(w io.Writer, g glance, rawStatus, rawClusters json.RawMessage) error {
	var cr struct {
		Clusters json.RawMessage `json:"clusters"`
	}
	if err := json.Unmarshal(rawClusters, &cr); err != nil {
		return fmt.Errorf("GET /v1/clusters: decode answer: %w", err)
	}
	group, err := json.Marshal(g.Group)
	if err != nil {
		return fmt.Errorf("encode group: %w", err)
	}
	st := bytes.TrimSpace(rawStatus)
	if len(st) < 2 || st[len(st)-1] != '}' {
		return fmt.Errorf("GET /v1/status: answer is not a JSON object")
	}
	var buf bytes.Buffer
	buf.Write(st[:len(st)-1])
	if len(bytes.TrimSpace(st[1:len(st)-1])) > 0 {
		buf.WriteByte(',')
	}
	fmt.Fprintf(&buf, `"group":%s,"clusters":%s}`, group, cmp.Or(string(cr.Clusters), "[]"))
	return printJSON(w, buf.Bytes())
}

// renderStatus prints a controller's status as a key/value block followed by
// a table of peers. now makes "last contact" relative and the output testable.
func renderStatus(w io.Writer, s api.StatusResponse, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	node := s.ID
	if s.Zone != "" {
		node += " (" + s.Zone + ")"
	}
	lastContact := "-"
	switch {
	case s.RaftState == "Leader":
		lastContact = "- (leader)"
	case !s.LastContact.IsZero():
		lastContact = fmt.Sprintf("%s ago", now.Sub(s.LastContact).Round(time.Millisecond))
	}
	leader := "none known"
	if s.KnownLeader {
		leader = s.Leader.ID
		if s.Leader.HTTPAddr != "" {
			leader += "  http " + s.Leader.HTTPAddr
		}
	}
	rows := [][2]string{
		{"node", node},
		{"http", dash(s.HTTPAddr)},
		{"raft", s.RaftAddr},
		{"state", s.RaftState},
		{"term", fmt.Sprint(s.Term)},
		{"indexes", fmt.Sprintf("commit %d  applied %d  last %d  fsm %d", s.CommitIndex, s.AppliedIndex, s.LastIndex, s.FSMAppliedIndex)},
		{"last contact", lastContact},
		{"leader", leader},
		{"leader changes", fmt.Sprint(s.LeaderChanges)},
		{"records", fmt.Sprint(s.RecordCount)},
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tRAFT ADDRESS\tHTTP ADDRESS\tZONE\tSUFFRAGE\tLEADER")
	for _, p := range s.Peers {
		mark := ""
		if p.Leader || (s.KnownLeader && p.ID == s.Leader.ID) {
			mark = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.RaftAddr, dash(p.HTTPAddr), dash(p.Zone), dash(p.Suffrage), mark)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	if len(s.GossipMembers) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GOSSIP MEMBER\tADDRESS\tZONE\tSTATE")
	for _, m := range s.GossipMembers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.Name, m.Addr, dash(m.Zone), m.State)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// dash shows "-" for an empty value so table columns stay aligned.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
