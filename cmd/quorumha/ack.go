package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	"github.com/spf13/cobra"

	"github.com/quorumha/quorumha/api"
	"github.com/quorumha/quorumha/fsm"
)

func newAckCmd() *cobra.Command {
	var (
		o                *clientOptions
		cluster, comment string
		by               string
	)
	cmd := &cobra.Command{
		Use:   "ack",
		Short: "Acknowledge a cluster's last failover (lifts anti-flapping)",
		Long: `Record, through the Raft log, that an operator has looked at the cluster's
last failover. Until then the anti-flap window blocks another automatic
failover of that cluster. Needs the API token when one is configured.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := api.AckRequest{By: firstSet(by, os.Getenv("USER")), Comment: comment}
			path := "/v1/clusters/" + url.PathEscape(cluster) + "/ack"
			return send(cmd, o, http.MethodPost, path, req, func(w io.Writer, got fsm.Ack) error {
				return writeLine(w, "acknowledged the last failover of %s (by %s at %s)", got.Cluster, got.By, formatTime(got.At))
			})
		},
	}
	o = addClientFlags(cmd)
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster name (required)")
	cmd.Flags().StringVar(&comment, "comment", "", "free-form comment stored with the acknowledgement")
	cmd.Flags().StringVar(&by, "by", "", "who acknowledges (default $USER)")
	_ = cmd.MarkFlagRequired("cluster") // the flag exists; cannot fail
	return cmd
}

// writeLine prints one formatted line.
func writeLine(w io.Writer, format string, args ...any) error {
	if _, err := fmt.Fprintf(w, format+"\n", args...); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}
