package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/quorumha/quorumha/api"
)

func newPeersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "peers",
		Short: "List, add or remove the Raft group's members",
		Long: `Membership of the controllers' Raft group. "add" and "remove" are
applied by the leader (any controller forwards them) and need the API token
when one is configured. Add the replacement before removing the controller
it replaces, one change at a time, so the group keeps a majority.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newPeersListCmd(), newPeersAddCmd(), newPeersRemoveCmd())
	return cmd
}

func newPeersListCmd() *cobra.Command {
	var o *clientOptions
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Show the Raft configuration (voters, addresses, leader)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return fetch(cmd, o, "/v1/raft/peers", renderPeers)
		},
	}
	o = addClientFlags(cmd)
	return cmd
}

func newPeersAddCmd() *cobra.Command {
	var o *clientOptions
	cmd := &cobra.Command{
		Use:   "add ID RAFT_ADDR",
		Short: "Add a controller as a voter (idempotent; a new address replaces the old)",
		Long: `Add controller ID, listening for Raft on RAFT_ADDR (host:port), as a voter.
Start it first with an empty node.bootstrap: it waits to be joined. Adding an
ID that is already a voter at that address does nothing; the same ID at
another address (a rebuilt controller) replaces the old entry.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.JoinRequest{ID: args[0], RaftAddr: args[1]}
			return send(cmd, o, http.MethodPost, "/v1/raft/join", req, func(w io.Writer, got api.JoinRequest) error {
				return writeLine(w, "%s (%s) is a voter", got.ID, got.RaftAddr)
			})
		},
	}
	o = addClientFlags(cmd)
	return cmd
}

func newPeersRemoveCmd() *cobra.Command {
	var o *clientOptions
	cmd := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a controller from the Raft group",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/v1/raft/peers/" + url.PathEscape(args[0])
			return send(cmd, o, http.MethodDelete, path, nil, func(w io.Writer, got map[string]string) error {
				return writeLine(w, "removed %s from the raft group", got["removed"])
			})
		},
	}
	o = addClientFlags(cmd)
	return cmd
}

// renderPeers prints the raft configuration as a table.
func renderPeers(w io.Writer, p api.PeersResponse) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tRAFT ADDRESS\tHTTP ADDRESS\tZONE\tSUFFRAGE\tLEADER")
	for _, peer := range p.Peers {
		mark := ""
		if peer.Leader || peer.ID == p.LeaderID {
			mark = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", peer.ID, peer.RaftAddr, dash(peer.HTTPAddr), dash(peer.Zone), dash(peer.Suffrage), mark)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}
