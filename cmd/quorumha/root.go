package main

import (
	"github.com/spf13/cobra"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "quorumha",
		Short: "Quorum-based high availability for MySQL and MariaDB replication",
		Long: `quorumha keeps a MySQL or MariaDB replication cluster writable when its master
dies, like MHA, but from three or more controllers that form a Raft group and
only act when a quorum of vantage points agrees the master is dead.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newVersionCmd(),
		newCheckConfigCmd(),
		newCheckReplCmd(),
		newSandboxCmd(),
		newRunCmd(),
		newStatusCmd(),
		newLeaderCmd(),
		newHistoryCmd(),
		newAckCmd(),
		newMaintenanceCmd(),
		newFailoverCmd(),
		newSwitchoverCmd(),
		newRejoinCmd(),
		newAgentCmd(),
		newPeersCmd(),
		newProxyConfigCmd(),
		newClusterCmd(),
		newInstanceCmd(),
	)
	return root
}
