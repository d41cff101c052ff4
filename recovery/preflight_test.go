package recovery

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/topology"
)

const (
	pfM  = "10.0.0.1:3306"
	pfR1 = "10.0.0.2:3306"
	pfR2 = "10.0.0.3:3306"
)

var mariadb1011 = topology.Version{Major: 10, Minor: 11, Patch: 6, Flavor: topology.MariaDB, Raw: "10.11.6-MariaDB"}

// pfMaster is a healthy MariaDB master with ten transactions.
func pfMaster(key string) *topology.Instance {
	return &topology.Instance{
		Key: key, Version: mariadb1011, ServerID: 1, LogBin: true, LogSlaveUpdates: true,
		GTIDBinlogPos: "0-1-10", GTIDBinlogState: "0-1-10", GTIDCurrentPos: "0-1-10",
	}
}

// pfReplica is a healthy, caught-up MariaDB GTID replica of masterKey.
func pfReplica(key, masterKey string, id uint32) *topology.Instance {
	host, port, _ := net.SplitHostPort(masterKey)
	p, _ := strconv.Atoi(port)
	zero := int64(0)
	return &topology.Instance{
		Key: key, Version: mariadb1011, ServerID: id, ReadOnly: true, LogBin: true, LogSlaveUpdates: true,
		GTIDBinlogPos: "0-1-10", GTIDBinlogState: "0-1-10", GTIDCurrentPos: "0-1-10", GTIDSlavePos: "0-1-10",
		Replica: &topology.ReplicaStatus{
			MasterHost: host, MasterPort: p, MasterUser: "repl",
			IORunning: topology.IOYes, SQLRunning: true, UsingGTID: "Slave_Pos", SecondsBehind: &zero,
		},
	}
}

func pfConfigured() []ConfiguredInstance {
	return []ConfiguredInstance{
		{Address: pfM, CheckReplDelay: true},
		{Address: pfR1, CandidateMaster: true, CheckReplDelay: true},
		{Address: pfR2, CheckReplDelay: true},
	}
}

func pfGrants() map[string]ReplGrant {
	ok := ReplGrant{WithPrivilege: []string{"%"}}
	return map[string]ReplGrant{pfM: ok, pfR1: ok, pfR2: ok}
}

// pfCase builds a clean three-instance cluster, lets mutate break it, and
// lists the problems expected as "severity code instance".
type pfCase struct {
	name   string
	mutate func(in *PreflightInput, m, r1, r2 *topology.Instance) (unreachable []topology.UnreachableInstance, drop []string)
	want   []string
	// msg, when set, must appear in the message of the first problem.
	msg string
}

func runPFCase(t *testing.T, tc pfCase) []Problem {
	t.Helper()
	m, r1, r2 := pfMaster(pfM), pfReplica(pfR1, pfM, 2), pfReplica(pfR2, pfM, 3)
	in := PreflightInput{
		Cluster: "app1", Configured: pfConfigured(), ReplUser: "repl", ReplGrants: pfGrants(),
		MaxLag: 30 * time.Second, ReplicationMode: "gtid",
	}
	var unreachable []topology.UnreachableInstance
	var drop []string
	if tc.mutate != nil {
		unreachable, drop = tc.mutate(&in, m, r1, r2)
	}
	var insts []*topology.Instance
	for _, i := range []*topology.Instance{m, r1, r2} {
		if !slices.Contains(drop, i.Key) {
			insts = append(insts, i)
		}
	}
	in.Topo = topology.Analyze(insts, nil, unreachable)
	return Preflight(in)
}

func pfSummary(ps []Problem) []string {
	out := make([]string, len(ps))
	for n, p := range ps {
		out[n] = fmt.Sprintf("%s %s %s", p.Severity, p.Code, p.Instance)
	}
	return out
}

func TestPreflight_Problems(t *testing.T) {
	sec := func(n int64) *int64 { return &n }
	tests := []pfCase{
		{name: "clean cluster", want: nil},
		{
			name: "unreachable replica",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				return []topology.UnreachableInstance{{Addr: pfR2, Err: errors.New("connection refused")}}, []string{pfR2}
			},
			want: []string{"error unreachable " + pfR2},
			msg:  "connection refused",
		},
		{
			name: "unreachable replica with ignore_fail is a warning",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				in.Configured[2].IgnoreFail = true
				return []topology.UnreachableInstance{{Addr: pfR2, Err: errors.New("refused")}}, []string{pfR2}
			},
			want: []string{"warning unreachable " + pfR2},
			msg:  "ignore_fail",
		},
		{
			name: "two writable masters",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				r2.Replica, r2.ReadOnly = nil, false
				return nil, nil
			},
			want: []string{"error multiple_masters " + pfM, "error multiple_masters " + pfR2},
			msg:  pfM + ", " + pfR2,
		},
		{
			name: "no master: all replicas",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				return []topology.UnreachableInstance{{Addr: pfM, Err: errors.New("refused")}}, []string{pfM}
			},
			want: []string{"error no_master ", "error unreachable " + pfM},
		},
		{
			name: "master read only",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				m.ReadOnly = true
				return nil, nil
			},
			want: []string{"warning master_read_only " + pfM},
		},
		{
			name: "detached read-only instance",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				r2.Replica = nil
				return nil, nil
			},
			want: []string{"error not_replicating " + pfR2},
		},
		{
			name: "replica not read only",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				r1.ReadOnly = false
				return nil, nil
			},
			want: []string{"error replica_not_read_only " + pfR1},
		},
		{
			name: "IO thread stopped with error",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				r1.Replica.IORunning, r1.Replica.LastIOErrno, r1.Replica.LastIOError = topology.IOConnecting, 1045, "Access denied for user 'repl'"
				r1.Replica.SecondsBehind = nil
				return nil, nil
			},
			want: []string{"error io_thread_not_running " + pfR1},
			msg:  "Slave_IO_Running=Connecting (master 10.0.0.1:3306); Last_IO_Errno=1045 Last_IO_Error: Access denied",
		},
		{
			name: "SQL thread stopped with error",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				r2.Replica.SQLRunning, r2.Replica.LastSQLErrno, r2.Replica.LastSQLError = false, 1050, "Table 't' already exists"
				r2.Replica.SecondsBehind = nil
				return nil, nil
			},
			want: []string{"error sql_thread_not_running " + pfR2},
			msg:  "Last_SQL_Errno=1050 Last_SQL_Error: Table 't' already exists",
		},
		{
			name: "replica of another replica",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				r2.Replica.MasterHost = "10.0.0.2"
				return nil, nil
			},
			want: []string{"error replica_of_wrong_master " + pfR2},
			msg:  "replicates from 10.0.0.2:3306, not from the cluster's master 10.0.0.1:3306",
		},
		{
			name: "replica of an unconfigured host",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				r2.Replica.MasterHost = "10.9.9.9"
				return []topology.UnreachableInstance{{Addr: "10.9.9.9:3306", Err: errors.New("timeout")}}, nil
			},
			want: []string{"error replica_of_unconfigured_master " + pfR2, "error unreachable 10.9.9.9:3306"},
		},
		{
			name: "candidate without log_bin",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				r1.LogBin, r1.GTIDBinlogState, r1.GTIDBinlogPos = false, "", ""
				return nil, nil
			},
			want: []string{"error no_log_bin " + pfR1},
		},
		{
			name: "no_master replica without log_bin is fine",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				in.Configured[2].NoMaster = true
				r2.LogBin, r2.LogSlaveUpdates, r2.GTIDBinlogState = false, false, ""
				return nil, nil
			},
			want: nil,
		},
		{
			name: "candidate without log_slave_updates",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				r2.LogSlaveUpdates = false
				return nil, nil
			},
			want: []string{"error no_log_slave_updates " + pfR2},
		},
		{
			name: "repl user missing on a candidate",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				in.ReplGrants[pfR1] = ReplGrant{}
				return nil, nil
			},
			want: []string{"error repl_user_missing " + pfR1},
			msg:  `replication user "repl" does not exist`,
		},
		{
			name: "repl user without REPLICATION SLAVE",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				in.ReplGrants[pfR2] = ReplGrant{WithoutPrivilege: []string{"10.%", "localhost"}}
				return nil, nil
			},
			want: []string{"error repl_user_no_privilege " + pfR2},
			msg:  "'repl'@'10.%', 'repl'@'localhost'",
		},
		{
			name: "repl user missing on a no_master instance is not checked",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				in.Configured[2].NoMaster = true
				in.ReplGrants[pfR2] = ReplGrant{}
				return nil, nil
			},
			want: nil,
		},
		{
			name: "grants unreadable",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				in.ReplGrants[pfR1] = ReplGrant{Err: "SELECT command denied"}
				return nil, nil
			},
			want: []string{"warning repl_grants_unknown " + pfR1},
		},
		{
			name: "filters differ on one replica",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				r2.ReplicationFilters.DoDB = []string{"app"}
				return nil, nil
			},
			want: []string{"error filters_differ " + pfR2},
			msg:  "replication filters {replicate_do_db=app} differ from {none} on " + pfM + ", " + pfR1,
		},
		{
			name: "MariaDB replica on file/position among GTID replicas",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				r2.Replica.UsingGTID = "No"
				r1.RelayLogPurge, r2.RelayLogPurge = true, true
				return nil, nil
			},
			want: []string{"error gtid_mode_differs " + pfR2, "warning relay_log_purge " + pfR2},
			msg:  "replicates with Using_Gtid=No, unlike 10.0.0.2:3306 (Using_Gtid=Slave_Pos)",
		},
		{
			name: "MySQL gtid_mode differs and auto-position off",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				mysql := topology.Version{Major: 8, Minor: 0, Patch: 36, Flavor: topology.MySQL}
				for _, i := range []*topology.Instance{m, r1, r2} {
					i.Version, i.GTIDMode = mysql, "ON"
					i.GTIDExecuted = "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-10"
				}
				r1.Replica.UsingGTID, r1.Replica.AutoPosition = "", true
				r2.Replica.UsingGTID, r2.Replica.AutoPosition = "", false
				r2.GTIDMode = "OFF_PERMISSIVE"
				in.ReplicationMode = "gtid"
				return nil, nil
			},
			// Two replicas, one each way: the tie goes to the configured mode.
			want: []string{"error gtid_mode_differs " + pfR2, "error gtid_mode_differs " + pfR2},
		},
		{
			name: "replicas agree on file/position but config says gtid",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				r1.Replica.UsingGTID, r2.Replica.UsingGTID = "No", "No"
				r1.RelayLogPurge, r2.RelayLogPurge = true, true
				return nil, nil
			},
			want: []string{
				"warning relay_log_purge " + pfR1, "warning replication_mode_mismatch " + pfR1,
				"warning relay_log_purge " + pfR2, "warning replication_mode_mismatch " + pfR2,
			},
		},
		{
			name: "relay_log_purge in file mode",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				in.ReplicationMode = "file"
				r1.Replica.UsingGTID, r2.Replica.UsingGTID = "No", "No"
				r1.RelayLogPurge = true
				return nil, nil
			},
			want: []string{"warning relay_log_purge " + pfR1},
			msg:  "relay_log_purge=0",
		},
		{
			name: "relay_log_purge with GTID is fine",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				r1.RelayLogPurge, r2.RelayLogPurge = true, true
				return nil, nil
			},
			want: nil,
		},
		{
			name: "errant GTIDs on a replica",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				r1.GTIDBinlogState, r1.GTIDCurrentPos = "0-1-10,0-2-11", "0-2-11"
				return nil, nil
			},
			want: []string{"error errant_gtids " + pfR1},
			msg:  "0-2-11",
		},
		{
			name: "lag above the limit",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				in.MaxLag = 5 * time.Second
				r1.Replica.SecondsBehind, r1.Replica.SQLDelay = sec(8), 60
				r2.Replica.SecondsBehind = sec(5)
				return nil, nil
			},
			want: []string{"error lag_too_high " + pfR1},
			msg:  "Seconds_Behind_Master=8 (MASTER_DELAY=60) exceeds the limit of 5s",
		},
		{
			name: "lag without check_repl_delay is a warning",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				in.MaxLag = time.Second
				in.Configured[2].CheckReplDelay = false
				r2.Replica.SecondsBehind = sec(100)
				return nil, nil
			},
			want: []string{"warning lag_too_high " + pfR2},
		},
		{
			name: "configured instance not discovered",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				in.Configured = append(in.Configured, ConfiguredInstance{Address: "10.0.0.4:3306"})
				return nil, nil
			},
			want: []string{"warning not_in_topology 10.0.0.4:3306"},
		},
		{
			name: "discovered replica not configured",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				in.Configured = in.Configured[:2]
				return nil, nil
			},
			want: []string{"warning not_configured " + pfR2},
		},
		{
			name: "discovered master not configured",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				in.Configured = in.Configured[1:]
				return nil, nil
			},
			want: []string{"error not_configured " + pfM},
		},
		{
			name: "circular replication",
			mutate: func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
				r1.Replica.MasterHost, r2.Replica.MasterHost = "10.0.0.3", "10.0.0.2"
				return nil, []string{pfM}
			},
			want: []string{"error no_master ", "error circular_replication " + pfR1, "warning not_in_topology " + pfM},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := runPFCase(t, tc)
			if !slices.Equal(pfSummary(got), tc.want) {
				t.Fatalf("problems:\n  got  %q\n  want %q\n%s", pfSummary(got), tc.want, pfDump(got))
			}
			if tc.msg != "" && !strings.Contains(got[0].Message, tc.msg) {
				t.Errorf("message %q does not contain %q", got[0].Message, tc.msg)
			}
			for _, p := range got {
				if p.Instance != "" && !strings.Contains(p.String(), p.Instance) {
					t.Errorf("String() %q does not name %s", p.String(), p.Instance)
				}
			}
		})
	}
}

func pfDump(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString("  " + p.String() + "\n")
	}
	return b.String()
}

func TestPreflight_Deterministic(t *testing.T) {
	mutate := func(in *PreflightInput, m, r1, r2 *topology.Instance) ([]topology.UnreachableInstance, []string) {
		r1.ReadOnly = false
		r2.Replica.SQLRunning = false
		r2.Replica.IORunning = topology.IONo
		in.ReplGrants[pfM] = ReplGrant{}
		in.Configured = append(in.Configured, ConfiguredInstance{Address: "10.0.0.9:3306", IgnoreFail: true})
		return []topology.UnreachableInstance{{Addr: "10.0.0.9:3306", Err: errors.New("refused")}}, nil
	}
	first := pfSummary(runPFCase(t, pfCase{mutate: mutate}))
	want := []string{
		"error repl_user_missing " + pfM,
		"error replica_not_read_only " + pfR1,
		"error io_thread_not_running " + pfR2,
		"error sql_thread_not_running " + pfR2,
		"warning unreachable 10.0.0.9:3306",
	}
	if !slices.Equal(first, want) {
		t.Fatalf("order:\n  got  %q\n  want %q", first, want)
	}
	for range 20 {
		if got := pfSummary(runPFCase(t, pfCase{mutate: mutate})); !slices.Equal(got, first) {
			t.Fatalf("run differs: %q vs %q", got, first)
		}
	}
}

func TestPreflight_NilTopology(t *testing.T) {
	got := Preflight(PreflightInput{Cluster: "x"})
	if want := []string{"error no_master "}; !slices.Equal(pfSummary(got), want) {
		t.Fatalf("got %q, want %q", pfSummary(got), want)
	}
}

func TestProblem_String(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{SeverityError, ProblemUnreachable, "h:1", "refused"}, "ERROR [unreachable] h:1: refused"},
		{Problem{SeverityWarning, ProblemRelayLogPurge, "h:2", "on"}, "WARN [relay_log_purge] h:2: on"},
		{Problem{SeverityError, ProblemNoMaster, "", "none"}, "ERROR [no_master] cluster: none"},
	}
	for _, tc := range tests {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func TestReplUserOf_Sources(t *testing.T) {
	agree := topology.Analyze([]*topology.Instance{pfMaster(pfM), pfReplica(pfR1, pfM, 2), pfReplica(pfR2, pfM, 3)}, nil, nil)
	r2 := pfReplica(pfR2, pfM, 3)
	r2.Replica.MasterUser = "other"
	disagree := topology.Analyze([]*topology.Instance{pfMaster(pfM), pfReplica(pfR1, pfM, 2), r2}, nil, nil)
	tests := []struct {
		name, configured string
		topo             *topology.Topology
		want             string
	}{
		{"configured wins", "rpl", agree, "rpl"},
		{"from replicas", "", agree, "repl"},
		{"replicas disagree", "", disagree, ""},
		{"nothing known", "", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ReplUserOf(tc.configured, tc.topo); got != tc.want {
				t.Errorf("ReplUserOf = %q, want %q", got, tc.want)
			}
		})
	}
}
