package detector

import (
	"fmt"
	"time"
)

// The replica view without waiting for slave_net_timeout.
//
// A replica's IO thread says "Yes" until slave_net_timeout (MariaDB's
// default: 60 s) passes without a byte from the master, so after a master
// host vanishes (packets dropped, no RST) its replicas vouch for it for a
// minute. Two faster signals say the replica has lost the master:
//
//   - the agent on the replica's host cannot open a MySQL connection to
//     the master (TCP connect and greeting), asked only while the
//     controllers' own probes fail;
//   - the replica has received neither binlog events nor heartbeats for
//     more than two heartbeat periods (the master sends a heartbeat after
//     every period without events, so a live link moves one or the other).

// stallPeriods is how many heartbeat periods without progress count as a
// lost master. Two, not one: samples come every probe_interval and a
// heartbeat may land just after one of them.
const stallPeriods = 2

// HeartbeatStalled reports whether the replica's IO thread says Yes while it
// has received neither events nor heartbeats for more than two heartbeat
// periods (as of now). It needs the heartbeat count and period: a replica
// whose heartbeats cannot be read, or with heartbeats off, never stalls.
func (o ReplicaObservation) HeartbeatStalled(now time.Time) bool {
	return o.Reachable && o.IORunning == "Yes" && !o.Advancing && o.Heartbeats != nil &&
		o.HeartbeatPeriod > 0 && !o.ProgressAt.IsZero() &&
		now.Sub(o.ProgressAt) > stallPeriods*o.HeartbeatPeriod
}

// NextProgress is when the replica last made progress, given the previous
// observation of the same replica: now when its received position or
// heartbeat count moved (or there is nothing to compare with), else the
// previous progress time. It is what ProbeReplica stamps as ProgressAt.
func NextProgress(prev, cur ReplicaObservation, now time.Time) time.Time {
	same := prev.Replica == cur.Replica
	switch {
	case !cur.Reachable && same:
		return prev.ProgressAt
	case !cur.Reachable:
		return time.Time{}
	case !same || !prev.Reachable || prev.ProgressAt.IsZero():
		return now
	}
	moved := cur.ReadPos != prev.ReadPos
	switch {
	case cur.Heartbeats != nil && prev.Heartbeats != nil:
		moved = moved || *cur.Heartbeats != *prev.Heartbeats
	case cur.Heartbeats != nil || prev.Heartbeats != nil:
		moved = true // the count appeared or vanished (restart, reset): start afresh
	}
	if moved {
		return now
	}
	return prev.ProgressAt
}

// receives decides whether a reachable replica that follows master still
// receives from it, as of now, and says which signal decided:
//
//  1. its received position moved since the previous probe: yes (binlog is
//     flowing), unless its IO thread is not connected and its host's agent
//     cannot reach the master (what moved came before the link broke);
//  2. its host's agent answered, freshly: the agent's MySQL-level check
//     decides, both ways (a greeting from the master's port means a live
//     server seen from the replica's side; no greeting means the replica
//     host lost it, even while the IO thread still says Yes);
//  3. IO thread Yes but no event and no heartbeat for more than two
//     heartbeat periods: no;
//  4. otherwise the IO thread decides: Yes is yes, anything else is no.
//
// An agent that did not answer is unknown and falls through to 3 and 4.
func (o ReplicaObservation) receives(now time.Time, freshness time.Duration) (bool, string) {
	reach := o.Reach
	if reach != nil && (!reach.Answered || isStale(reach.At, now, freshness)) {
		reach = nil
	}
	if o.Advancing && (o.IORunning == "Yes" || reach == nil || reach.Reachable) {
		return true, "position advancing"
	}
	if reach != nil {
		if reach.Reachable {
			return true, "agent reaches the master"
		}
		return false, fmt.Sprintf("agent cannot reach the master (%s: %s)", reach.Stage, reach.Error)
	}
	if o.HeartbeatStalled(now) {
		return false, fmt.Sprintf("io=Yes but nothing received for %s (heartbeat period %s)",
			now.Sub(o.ProgressAt).Round(time.Millisecond), o.HeartbeatPeriod)
	}
	if o.IORunning == "Yes" {
		return true, "io=Yes"
	}
	return false, "io=" + o.IORunning
}

// describeAt is describe with the deciding signal.
func (o ReplicaObservation) describeAt(now time.Time, freshness time.Duration) string {
	_, why := o.receives(now, freshness)
	return o.describe() + " (" + why + ")"
}
