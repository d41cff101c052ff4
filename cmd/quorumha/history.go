package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorumha/quorumha/api"
	"github.com/quorumha/quorumha/fsm"
)

// timeLayout prints times in UTC, to the second.
const timeLayout = "2006-01-02 15:04:05Z"

func newHistoryCmd() *cobra.Command {
	var (
		o       *clientOptions
		cluster string
		id      uint64
		limit   int
	)
	cmd := &cobra.Command{
		Use:   "history",
		Short: "Show replicated failover, switchover and detection records",
		Long: `List the records every controller holds in the replicated log, newest
first, or show one record (--id) with its evidence, the candidates considered
and why each was taken or refused, and every step with its outcome.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id != 0 {
				return fetch(cmd, o, "/v1/history/"+strconv.FormatUint(id, 10), func(w io.Writer, r api.RecordResponse) error {
					return renderRecord(w, r.Record)
				})
			}
			if limit <= 0 {
				return fmt.Errorf("--limit must be positive, got %d", limit)
			}
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if cluster != "" {
				q.Set("cluster", cluster)
			}
			return fetch(cmd, o, "/v1/history?"+q.Encode(), func(w io.Writer, h api.HistoryResponse) error {
				return renderHistory(w, h.Records)
			})
		},
	}
	o = addClientFlags(cmd)
	cmd.Flags().StringVar(&cluster, "cluster", "", "only records of this cluster")
	cmd.Flags().Uint64Var(&id, "id", 0, "show one record in full")
	cmd.Flags().IntVar(&limit, "limit", 20, "at most this many records")
	return cmd
}

// renderHistory prints one line per record.
func renderHistory(w io.Writer, records []fsm.Record) error {
	if len(records) == 0 {
		if _, err := fmt.Fprintln(w, "no records"); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCLUSTER\tKIND\tTRIGGER\tOPENED\tDURATION\tRESULT\tMASTER\tFENCE")
	for _, r := range records {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.ID, r.Cluster, r.Kind, dash(r.Trigger), formatTime(r.Opened),
			span(r.Opened, r.Closed), result(r.Result), masterChange(r), fenceCell(r.Fence))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// renderRecord prints one record in full.
func renderRecord(w io.Writer, r fsm.Record) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	rows := [][2]string{
		{"record", strconv.FormatUint(r.ID, 10)},
		{"cluster", r.Cluster},
		{"kind", string(r.Kind)},
		{"trigger", dash(r.Trigger)},
		{"opened", formatTime(r.Opened) + " by " + dash(r.OpenedBy)},
		{"closed", formatTime(r.Closed)},
		{"duration", span(r.Opened, r.Closed)},
		{"result", result(r.Result)},
		{"master", masterChange(r)},
	}
	if r.Detail != "" {
		rows = append(rows, [2]string{"detail", r.Detail})
	}
	rows = append(rows, fenceRows(r.Fence)...)
	for _, row := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	if len(r.Evidence) > 0 {
		var buf bytes.Buffer
		if err := json.Indent(&buf, r.Evidence, "  ", "  "); err != nil {
			buf.Reset()
			buf.Write(r.Evidence)
		}
		fmt.Fprintf(w, "\nevidence:\n  %s\n", buf.String())
	}
	if len(r.Candidates) > 0 {
		fmt.Fprintln(w, "\ncandidates:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  ADDRESS\tCHOSEN\tREASON")
		for _, c := range r.Candidates {
			chosen := "no"
			if c.Chosen {
				chosen = "yes"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Address, chosen, dash(c.Reason))
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
	}
	if r.Salvage != nil {
		if err := renderSalvage(w, r.Salvage); err != nil {
			return err
		}
	}
	if len(r.Steps) > 0 {
		fmt.Fprintln(w, "\nsteps:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  #\tSTEP\tLEADER\tTERM\tSTART\tDURATION\tOUTCOME\tDETAIL")
		for _, s := range r.Steps {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n",
				s.Seq, s.Name, dash(s.Leader), s.Term, formatTime(s.Start), span(s.Start, s.End), s.Outcome, dash(oneLine(s.Detail)))
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
	}
	return nil
}

// formatTime prints t in UTC, or "-" when unset.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(timeLayout)
}

// span is the time from start to end, or "running" while end is unset.
func span(start, end time.Time) string {
	switch {
	case start.IsZero():
		return "-"
	case end.IsZero():
		return "running"
	default:
		return end.Sub(start).Round(time.Millisecond).String()
	}
}

// result names an open record's empty result.
func result(r fsm.Result) string {
	if r == fsm.ResultOpen {
		return "open"
	}
	return string(r)
}

// masterChange shows old→new master, or "-" when the record names neither.
func masterChange(r fsm.Record) string {
	if r.OldMaster == "" && r.NewMaster == "" {
		return "-"
	}
	return dash(r.OldMaster) + " → " + dash(r.NewMaster)
}

// oneLine keeps table cells on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// renderSalvage prints a failover's binlog salvage report.
func renderSalvage(w io.Writer, s *fsm.Salvage) error {
	fmt.Fprintln(w, "\nsalvage:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	rows := [][2]string{
		{"outcome", s.Outcome},
		{"from", s.From + " via " + dash(s.Agent)},
		{"onto", dash(s.Target)},
		{"applied", fmt.Sprintf("%d transactions, %d bytes, in %s", s.Applied, s.Bytes, s.Took.Round(time.Millisecond))},
		{"gtids", dash(strings.Join(s.GTIDs, ","))},
		{"position", dash(s.Before) + " -> " + dash(s.Recovered)},
		{"dead master's last", dash(s.MasterLast)},
		{"last seen by probes", dash(s.MasterLastSeen)},
		{"loss window", dash(s.LossWindow)},
	}
	if s.Error != "" {
		rows = append(rows, [2]string{"error", oneLine(s.Error)})
	}
	for _, k := range s.Skipped {
		rows = append(rows, [2]string{"skipped", fmt.Sprintf("%d bytes at %s:%d: %s", k.Bytes, k.File, k.Start, k.Reason)})
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "  %s:\t%s\n", r[0], r[1])
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// fenceCell is a record's fence in one cell: the proof, awaiting_fence,
// operator(by) or none; "-" when the record never fenced.
func fenceCell(f *fsm.FenceInfo) string {
	switch {
	case f == nil:
		return "-"
	case f.State == fsm.FenceAwaiting:
		return "awaiting_fence"
	case f.State == fsm.FenceAccepted:
		return "operator(" + f.By + ")"
	default:
		return f.Proof
	}
}

// fenceRows are the fence lines of a full record.
func fenceRows(f *fsm.FenceInfo) [][2]string {
	if f == nil {
		return nil
	}
	state := f.State
	switch f.State {
	case fsm.FenceAwaiting:
		state = "awaiting_fence"
	case fsm.FenceAccepted:
		state += " by " + f.By + " at " + formatTime(f.At)
	}
	rows := [][2]string{{"fence", state + ", proof " + f.Proof}}
	if !f.Since.IsZero() {
		rows = append(rows, [2]string{"fence awaited", "since " + formatTime(f.Since)})
	}
	if f.Reason != "" {
		rows = append(rows, [2]string{"fence reason", oneLine(f.Reason)})
	}
	for _, t := range f.Targets {
		rows = append(rows, [2]string{"fence target", t.Address + ": " + dash(t.Proof) + " " + oneLine(t.Detail)})
	}
	return rows
}
