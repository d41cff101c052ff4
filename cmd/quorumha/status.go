package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorumha/quorumha/api"
)

func newStatusCmd() *cobra.Command {
	var o *clientOptions
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show a controller's Raft status and peers",
		Long: `Ask one controller (--addr) for its own view: raft state, term, indexes,
the leader it follows and the peers of the Raft group. The view may lag the
leader; "last contact" says how much.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return fetch(cmd, o, "/v1/status", func(w io.Writer, s api.StatusResponse) error {
				return renderStatus(w, s, time.Now())
			})
		},
	}
	o = addClientFlags(cmd)
	return cmd
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
