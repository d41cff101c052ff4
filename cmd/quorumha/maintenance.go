package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorumha/quorumha/api"
	"github.com/quorumha/quorumha/fsm"
)

func newMaintenanceCmd() *cobra.Command {
	var (
		o               *clientOptions
		cluster, reason string
		by              string
		dur             time.Duration
		end             bool
	)
	cmd := &cobra.Command{
		Use:   "maintenance",
		Short: "Start or end a maintenance window (no automatic failover)",
		Long: `Start (--for 30m) or end (--end) a maintenance window for a cluster. During
the window the controllers still probe and record what they see but never
fail over automatically. Needs the API token when one is configured.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := "/v1/clusters/" + url.PathEscape(cluster) + "/maintenance"
			if end {
				return send(cmd, o, http.MethodDelete, path, nil, func(w io.Writer, got fsm.Maintenance) error {
					return writeLine(w, "maintenance of %s ended", got.Cluster)
				})
			}
			if dur <= 0 {
				return fmt.Errorf("--for must be positive, got %s", dur)
			}
			req := api.MaintenanceRequest{Duration: dur.String(), Reason: reason, By: firstSet(by, os.Getenv("USER"))}
			return send(cmd, o, http.MethodPost, path, req, func(w io.Writer, got fsm.Maintenance) error {
				return writeLine(w, "%s in maintenance until %s", got.Cluster, formatTime(got.Until))
			})
		},
	}
	o = addClientFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&cluster, "cluster", "", "cluster name (required)")
	f.DurationVar(&dur, "for", 0, "length of the window, e.g. 30m")
	f.BoolVar(&end, "end", false, "end the current window")
	f.StringVar(&reason, "reason", "", "why (stored with the window)")
	f.StringVar(&by, "by", "", "who starts the window (default $USER)")
	_ = cmd.MarkFlagRequired("cluster") // the flag exists; cannot fail
	cmd.MarkFlagsMutuallyExclusive("for", "end")
	cmd.MarkFlagsOneRequired("for", "end")
	cmd.MarkFlagsMutuallyExclusive("reason", "end")
	return cmd
}
