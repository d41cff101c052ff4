package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorumha/quorumha/api"
	"github.com/quorumha/quorumha/fsm"
)

// failoverPollInterval is how often `failover --wait` reads the record.
const failoverPollInterval = 500 * time.Millisecond

// failoverOptions are the flags of `quorumha failover`.
type failoverOptions struct {
	client   *clientOptions
	cluster  string
	to       string
	by       string
	dryRun   bool
	force    bool
	unfenced bool
	wait     time.Duration
}

func newFailoverCmd() *cobra.Command {
	o := &failoverOptions{}
	cmd := &cobra.Command{
		Use:   "failover",
		Short: "Fail over a cluster whose master is dead (manual, like masterha_master_switch --master_state=dead)",
		Long: `Ask the controllers to promote a replica of a cluster whose master is dead.
The leader runs it like an automatic failover (fence, catch up, promote,
repoint, hooks), journals every step in the replicated history, and records
it as manual. A master that still answers the leader, or that the controllers
still assess alive (a quorum sees it up, or its replicas still receive its
binlog), is refused: use switchover, or --force to fail it over anyway (it is
fenced first, like any failover).

--dry-run prints the plan (each replica, whether it may be promoted, which
one would be and why) and changes nothing. Otherwise the command prints the
record id and, unless --wait 0, follows the record until it is closed,
printing each step as it completes. With --json it prints the controller's
answer and, when it waits, the closed record as a second JSON document.

--unfenced accepts the risk of promoting without a fence proof for the
cluster's failover that waits in awaiting_fence (recovery.fence: required):
the record names who accepted, and the failover goes on. Only do this once
you know the old master cannot take writes (powered off, its network cut
for good, its applications stopped): a cut-off master that is still alive
keeps acknowledging writes that the new master will never have. Without a
failover awaiting a fence it is refused and nothing changes.

Exit status: 0 when the failover succeeded (or the dry run was planned),
1 when it failed, was aborted or refused, 2 on usage or API errors and when
--wait ran out before the record was closed.

Needs the API token when one is configured. Any controller may be asked:
followers forward the request to the leader.`,
		Example: `  quorumha failover --cluster app1 --dry-run
  quorumha failover --cluster app1 --to 10.0.2.20:3306
  quorumha failover --cluster app1 --wait 0 --json
  quorumha failover --cluster app1 --unfenced --by alice`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runFailover(cmd, o)
		},
	}
	o.client = addClientFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.cluster, "cluster", "", "cluster name (required)")
	f.StringVar(&o.to, "to", "", "replica to promote, host:port as configured (default: chosen by the selection rules)")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the plan only; change nothing")
	f.BoolVar(&o.force, "force", false, "fail over even a master that answers or that the controllers assess alive")
	f.BoolVar(&o.unfenced, "unfenced", false, "accept promoting without a fence proof for the failover awaiting one")
	f.DurationVar(&o.wait, "wait", 60*time.Second, "follow the failover until its record is closed, at most this long (0: do not wait)")
	f.StringVar(&o.by, "by", "", "who asks, written into the record (default $USER)")
	_ = cmd.MarkFlagRequired("cluster") // the flag exists; cannot fail
	return cmd
}

// runFailover asks for the failover, then prints the plan or follows the
// record.
func runFailover(cmd *cobra.Command, o *failoverOptions) error {
	if o.wait < 0 {
		return fmt.Errorf("--wait must not be negative, got %s", o.wait)
	}
	out := cmd.OutOrStdout()
	c, err := o.client.client()
	if err != nil {
		return err
	}
	if o.unfenced && (o.to != "" || o.dryRun) {
		return fmt.Errorf("--unfenced accepts the fence of the failover already running: --to and --dry-run do not apply")
	}
	req := api.FailoverRequest{To: o.to, DryRun: o.dryRun, Force: o.force, Unfenced: o.unfenced, By: firstSet(o.by, os.Getenv("USER"))}
	resp, err := postClusterAction[api.FailoverResponse](cmd.Context(), c, out, o.client.json, o.cluster, "failover", req)
	if err != nil {
		return err
	}
	if o.dryRun || resp.DryRun {
		if o.client.json {
			return nil
		}
		return renderPlan(out, resp)
	}
	if !o.client.json {
		render := renderStarted
		if o.unfenced {
			render = renderAccepted
		}
		if err := render(out, resp, o.wait); err != nil {
			return err
		}
	}
	if o.wait == 0 {
		return nil
	}
	return followToEnd(cmd.Context(), c, out, o.client.json, "failover", resp.RecordID, o.wait, failoverPollInterval)
}

// renderPlan prints a dry run: what would be promoted and every replica
// with the reason it was taken or refused.
func renderPlan(w io.Writer, r api.FailoverResponse) error {
	fmt.Fprintf(w, "dry run of a failover of %s: nothing was changed\n", r.Cluster)
	p := r.Plan
	if p == nil || p.Chosen == "" {
		// Without a choice, the controller's message says why.
		if r.Message != "" {
			fmt.Fprintf(w, "%s\n", oneLine(r.Message))
		}
	}
	if p == nil {
		_, err := fmt.Fprintln(w, "the controller returned no plan")
		return wrapWrite(err)
	}
	switch {
	case p.Chosen == "":
		fmt.Fprintln(w, "no replica may be promoted")
	case p.CatchUpFrom != "":
		fmt.Fprintf(w, "would promote %s after catching it up from %s\n", p.Chosen, p.CatchUpFrom)
	default:
		fmt.Fprintf(w, "would promote %s\n", p.Chosen)
	}
	if len(p.MostAdvanced) > 0 {
		fmt.Fprintf(w, "most advanced: %s\n", strings.Join(p.MostAdvanced, ", "))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REPLICA\tELIGIBLE\tCHOSEN\tREASON")
	for _, c := range p.Considered {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Address, yesNo(c.Eligible), yesNo(c.Chosen), dash(oneLine(c.Reason)))
	}
	return wrapWrite(tw.Flush())
}

// renderStarted prints the record id of a started failover.
func renderStarted(w io.Writer, r api.FailoverResponse, wait time.Duration) error {
	fmt.Fprintf(w, "failover of %s started: record %d\n", r.Cluster, r.RecordID)
	if r.Message != "" {
		fmt.Fprintf(w, "%s\n", oneLine(r.Message))
	}
	if r.Plan != nil && r.Plan.Chosen != "" {
		fmt.Fprintf(w, "promoting %s\n", r.Plan.Chosen)
	}
	var err error
	if wait == 0 {
		_, err = fmt.Fprintf(w, "follow it with `quorumha history --id %d`\n", r.RecordID)
	}
	return wrapWrite(err)
}

// renderAccepted prints the acceptance of an unfenced failover.
func renderAccepted(w io.Writer, r api.FailoverResponse, wait time.Duration) error {
	fmt.Fprintf(w, "failover of %s (record %d) goes on without a fence proof\n", r.Cluster, r.RecordID)
	if r.Message != "" {
		fmt.Fprintf(w, "%s\n", oneLine(r.Message))
	}
	var err error
	if wait == 0 {
		_, err = fmt.Fprintf(w, "follow it with `quorumha history --id %d`\n", r.RecordID)
	}
	return wrapWrite(err)
}

// followRecord polls get every interval until the record is closed or ctx
// ends, printing each step to w once it has completed (and, when the record
// closes, the steps left unfinished). Errors of single polls (the record
// not yet replicated to the controller asked, a controller restarting) are
// retried; the last one is reported if ctx ends first.
func followRecord(ctx context.Context, get func(context.Context) (api.RecordResponse, error), interval time.Duration, w io.Writer) (api.RecordResponse, error) {
	printed := map[int]bool{}
	var last error
	for {
		r, err := get(ctx)
		if err == nil {
			closed := !r.Record.IsOpen()
			for _, s := range r.Record.Steps {
				if printed[s.Seq] || (s.Outcome == fsm.OutcomeRunning && !closed) {
					continue
				}
				printed[s.Seq] = true
				if err := renderStep(w, s); err != nil {
					return r, err
				}
			}
			if closed {
				return r, nil
			}
			last = fmt.Errorf("record %d still open", r.Record.ID)
		} else {
			last = err
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return api.RecordResponse{}, fmt.Errorf("gave up waiting for the failover to finish: %w", last)
		case <-t.C:
		}
	}
}

// renderStep prints one completed step: outcome, name, duration, the
// controller that ran it and its detail.
func renderStep(w io.Writer, s fsm.Step) error {
	outcome := string(s.Outcome)
	if s.Outcome == fsm.OutcomeRunning {
		outcome = "unfinished"
	}
	_, err := fmt.Fprintf(w, "  %-10s %-14s %9s  %-4s %s\n", outcome, s.Name, span(s.Start, s.End), dash(s.Leader), dash(oneLine(s.Detail)))
	return wrapWrite(err)
}

// renderOutcome prints the closed record's result.
func renderOutcome(w io.Writer, r fsm.Record) error {
	fmt.Fprintf(w, "result: %s after %s", result(r.Result), span(r.Opened, r.Closed))
	if r.Result == fsm.ResultSuccess && r.Kind != fsm.KindRejoin { // a rejoin changes no master
		fmt.Fprintf(w, ": %s", masterChange(r))
	}
	fmt.Fprintln(w)
	var err error
	if r.Detail != "" {
		_, err = fmt.Fprintf(w, "detail: %s\n", oneLine(r.Detail))
	}
	return wrapWrite(err)
}

// yesNo prints a flag as a table cell.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// wrapWrite names a failed write to the output.
func wrapWrite(err error) error {
	if err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// followToEnd follows a failover or switchover record until it closes,
// printing each step (or, with --json, the final record), and turns its
// result into the exit code: 0 success, 1 any other result, 2 when it
// cannot be followed.
func followToEnd(ctx context.Context, c *apiClient, out io.Writer, asJSON bool, what string, id uint64, wait, every time.Duration) error {
	if id == 0 {
		return exitError{code: 2, err: fmt.Errorf("the controller started a %s but returned no record id to follow", what)}
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	path := "/v1/history/" + strconv.FormatUint(id, 10)
	get := func(ctx context.Context) (api.RecordResponse, error) {
		var r api.RecordResponse
		err := c.do(ctx, http.MethodGet, path, nil, &r)
		return r, err
	}
	steps := out
	if asJSON {
		steps = io.Discard
	}
	final, err := followRecord(ctx, get, every, steps)
	if err != nil {
		return exitError{code: 2, err: fmt.Errorf("%w; follow it with `quorumha history --id %d`", err, id)}
	}
	if asJSON {
		buf, err := json.Marshal(final)
		if err != nil {
			return fmt.Errorf("encode record: %w", err)
		}
		if err := printJSON(out, buf); err != nil {
			return err
		}
	} else if err := renderOutcome(out, final.Record); err != nil {
		return err
	}
	if final.Record.Result != fsm.ResultSuccess {
		// The outcome is printed above; main adds nothing.
		return exitError{code: 1}
	}
	return nil
}
