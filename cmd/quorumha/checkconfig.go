package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/quorumha/quorumha/config"
	"github.com/spf13/cobra"
)

// checkConfigExitInvalid is check-config's exit status for a config that
// does not load or validate (the same 2 main uses for usage errors).
const checkConfigExitInvalid = 2

// newCheckConfigCmd builds `quorumha check-config`: load and validate a
// config (YAML/TOML/JSON or an MHA .cnf) without starting anything, so
// operators can check a file before deploying it.
func newCheckConfigCmd() *cobra.Command {
	var (
		path       string
		asJSON     bool
		forRun     bool
		mhaDefault string
		stateAddr  string
		noState    bool
	)
	cmd := &cobra.Command{
		Use:   "check-config --config FILE [--json] [--for-run]",
		Short: "Validate a config file (YAML, TOML, JSON or an MHA .cnf)",
		Long: `check-config loads a config exactly as run would (defaults, QUORUMHA_*
environment overrides, password files, mha_configs) and validates it. Warnings
go to stderr; every problem is printed on its own line naming the file, key and
value. Exit status: 0 valid, 2 invalid.

With --for-run the node section must also be complete (id, raft_addr,
http_addr, data_dir, a bootstrap list naming this node), and the file's
clusters are compared with the replicated topology of the running group (read
from node.http_addr, or --addr): the clusters and instances every controller
watches live in the replicated state, which wins over any file; each
difference is printed. A group that does not answer (a first deployment) is
a note on stderr, not a problem. --no-state skips the comparison.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if path == "" {
				return errors.New("check-config: --config FILE is required")
			}
			opts := config.LoadOptions{}
			if mhaDefault != "" {
				if _, err := os.Stat(mhaDefault); err == nil || cmd.Flags().Changed("mha-default-file") {
					opts.MHADefaultFile = mhaDefault
				}
			}
			var state stateChecker
			if !noState {
				state = func(cfg *config.Config) ([]string, string) {
					return checkAgainstState(cmd.Context(), cfg, stateAddr)
				}
			}
			return runCheckConfigWith(cmd.OutOrStdout(), cmd.ErrOrStderr(), path, opts, asJSON, forRun, state)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "config file (.yaml, .yml, .toml, .json, or MHA .cnf/.conf/.ini)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON on stdout")
	cmd.Flags().BoolVar(&forRun, "for-run", false, "also require what `run` needs (node id, addresses, data dir, bootstrap)")
	cmd.Flags().StringVar(&stateAddr, "addr", "", "with --for-run: the controller to read the replicated topology from (default this file's node.http_addr)")
	cmd.Flags().BoolVar(&noState, "no-state", false, "with --for-run: do not compare the clusters with the running group's replicated topology")
	cmd.Flags().StringVar(&mhaDefault, "mha-default-file", config.DefaultMHAFile, "MHA global defaults applied to .cnf imports (used when it exists)")
	return cmd
}

// checkResult is check-config's JSON output.
type checkResult struct {
	OK       bool             `json:"ok"`
	File     string           `json:"file"`
	Warnings []config.Warning `json:"warnings"`
	Problems []string         `json:"problems"`
	Clusters []clusterSummary `json:"clusters,omitempty"`
	// StateDiff (--for-run) lists how the file differs from the replicated
	// topology of the running group, which wins; StateNote says why it
	// could not be compared.
	StateDiff []string `json:"state_diff,omitempty"`
	StateNote string   `json:"state_note,omitempty"`
}

// clusterSummary is what check-config shows of one cluster.
type clusterSummary struct {
	Name      string   `json:"name"`
	Source    string   `json:"source"`
	Mode      string   `json:"replication_mode"`
	Instances []string `json:"instances"`
	Hooks     []string `json:"hooks"`
}

func runCheckConfig(stdout, stderr io.Writer, path string, opts config.LoadOptions, asJSON, forRun bool) error {
	return runCheckConfigWith(stdout, stderr, path, opts, asJSON, forRun, nil)
}

// stateChecker compares a loaded config with the running group's
// replicated topology (checkAgainstState); nil skips the comparison.
type stateChecker func(*config.Config) (diff []string, note string)

func runCheckConfigWith(stdout, stderr io.Writer, path string, opts config.LoadOptions, asJSON, forRun bool, state stateChecker) error {
	cfg, warns, err := config.Load(path, opts)
	if err == nil && forRun {
		err = cfg.ValidateForRun()
	}
	res := checkResult{OK: err == nil, File: path, Warnings: warns, Problems: []string{}}
	if res.Warnings == nil {
		res.Warnings = []config.Warning{}
	}
	for _, p := range config.Problems(err) {
		res.Problems = append(res.Problems, p.Error())
	}
	if cfg != nil {
		for _, cl := range cfg.Clusters {
			res.Clusters = append(res.Clusters, summarize(cl))
		}
	}
	if err == nil && forRun && state != nil {
		res.StateDiff, res.StateNote = state(cfg)
	}

	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if encErr := enc.Encode(res); encErr != nil {
			return fmt.Errorf("check-config: write output: %w", encErr)
		}
	} else {
		for _, w := range warns {
			fmt.Fprintln(stderr, "warning:", w.String())
		}
		for _, p := range res.Problems {
			fmt.Fprintln(stderr, p)
		}
		if err == nil {
			printSummary(stdout, cfg, res.Clusters)
			if res.StateNote != "" {
				fmt.Fprintln(stderr, "note:", res.StateNote)
			}
			if len(res.StateDiff) > 0 {
				fmt.Fprintln(stdout, "\nThe replicated state differs from this file; at run time the state wins:")
				for _, d := range res.StateDiff {
					fmt.Fprintln(stdout, "  "+d)
				}
			}
		}
	}
	if err != nil {
		return exitError{code: checkConfigExitInvalid, err: fmt.Errorf("%s: %d problem(s)", path, len(res.Problems))}
	}
	return nil
}

func summarize(cl config.Cluster) clusterSummary {
	s := clusterSummary{Name: cl.Name, Source: cl.Source, Mode: cl.ReplicationMode, Instances: []string{}, Hooks: []string{}}
	for _, in := range cl.Instances {
		var tags []string
		if in.CandidateMaster {
			tags = append(tags, "candidate_master")
		}
		if in.NoMaster {
			tags = append(tags, "no_master")
		}
		if in.IgnoreFail {
			tags = append(tags, "ignore_fail")
		}
		if in.Zone != "" {
			tags = append(tags, "zone="+in.Zone)
		}
		if len(tags) > 0 {
			s.Instances = append(s.Instances, in.Address+" ("+strings.Join(tags, ", ")+")")
		} else {
			s.Instances = append(s.Instances, in.Address)
		}
	}
	for _, h := range []struct{ name, path string }{
		{"ip_failover", cl.Hooks.IPFailover}, {"ip_online_change", cl.Hooks.IPOnlineChange},
		{"shutdown", cl.Hooks.Shutdown}, {"report", cl.Hooks.Report}, {"secondary_check", cl.Hooks.SecondaryCheck},
	} {
		if h.path != "" {
			s.Hooks = append(s.Hooks, h.name)
		}
	}
	return s
}

func printSummary(w io.Writer, cfg *config.Config, clusters []clusterSummary) {
	fmt.Fprintf(w, "%s: OK\n", cfg.Source)
	if cfg.Node.ID != "" {
		fmt.Fprintf(w, "node %s zone=%q raft=%s http=%s bootstrap=%d\n", cfg.Node.ID, cfg.Node.Zone,
			cfg.Node.RaftAddr, cfg.Node.HTTPAddr, len(cfg.Node.Bootstrap))
	}
	d := cfg.Detector
	fmt.Fprintf(w, "detector probe_interval=%s failure_threshold=%d quorum=%s replica_check=%t\n",
		d.ProbeInterval, d.FailureThreshold, d.Quorum, d.ReplicaCheck)
	fmt.Fprintf(w, "clusters: %d\n", len(clusters))
	for _, cl := range clusters {
		hooks := "none"
		if len(cl.Hooks) > 0 {
			hooks = strings.Join(cl.Hooks, ", ")
		}
		fmt.Fprintf(w, "  %s: %d instances, %s replication, hooks: %s\n", cl.Name, len(cl.Instances), cl.Mode, hooks)
		for _, in := range cl.Instances {
			fmt.Fprintf(w, "    %s\n", in)
		}
	}
}
