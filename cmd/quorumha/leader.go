package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/quorumha/quorumha/api"
)

func newLeaderCmd() *cobra.Command {
	var o *clientOptions
	cmd := &cobra.Command{
		Use:   "leader",
		Short: "Show the Raft leader as seen by a controller",
		Long: `Ask a controller (--addr) which controller leads the Raft group.
Fails while no leader is known.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return fetch(cmd, o, "/v1/leader", renderLeader)
		},
	}
	o = addClientFlags(cmd)
	return cmd
}

// renderLeader prints the leader on one line.
func renderLeader(w io.Writer, l api.LeaderResponse) error {
	httpAddr := l.HTTPAddr
	if httpAddr == "" {
		httpAddr = "(not recorded yet)"
	}
	if _, err := fmt.Fprintf(w, "leader %s  raft %s  http %s  term %d\n", l.ID, l.RaftAddr, httpAddr, l.Term); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}
