package recovery

import (
	"fmt"
	"strings"
	"time"

	"github.com/quorumha/quorumha/fsm"
)

// AutoFailoverAllowed decides whether an automatic failover may start for the
// cluster at now, and says why in words an operator can act on. It refuses
// inside a maintenance window and while anti-flap holds (a successful
// failover less than window ago, not acknowledged since: MHA's
// last_failover_minute, which stops a flapping network from bouncing the
// master back and forth). Manual failovers and switchovers are the operator's
// explicit decision and are not subject to it; callers do not ask.
//
// It is pure: now comes from the caller (the leader's clock, once), so the
// same state gives the same answer in tests and in the record's evidence.
func AutoFailoverAllowed(state fsm.ClusterState, now time.Time, window time.Duration) (bool, string) {
	var refusals []string
	if state.InMaintenance(now) {
		r := "maintenance until " + stamp(state.MaintenanceUntil)
		if state.MaintenanceBy != "" {
			r += " by " + state.MaintenanceBy
		}
		if state.MaintenanceReason != "" {
			r += ": " + state.MaintenanceReason
		}
		refusals = append(refusals, r)
	}
	if state.AntiFlapActive(now, window) {
		refusals = append(refusals, fmt.Sprintf(
			"last failover #%d at %s is within anti_flap %s (until %s); acknowledge with `quorumha ack --cluster %s`",
			state.LastFailoverID, stamp(state.LastFailover), shortDuration(window),
			stamp(state.LastFailover.Add(window)), state.Name))
	}
	if len(refusals) > 0 {
		return false, strings.Join(refusals, "; ")
	}
	switch {
	case state.LastFailover.IsZero():
		return true, "no previous failover"
	case window <= 0:
		return true, "anti_flap disabled"
	case !state.AckedAt.IsZero() && !state.AckedAt.Before(state.LastFailover):
		by := ""
		if state.AckedBy != "" {
			by = " by " + state.AckedBy
		}
		return true, fmt.Sprintf("last failover #%d acknowledged%s at %s", state.LastFailoverID, by, stamp(state.AckedAt))
	default:
		return true, fmt.Sprintf("last failover #%d at %s is older than anti_flap %s",
			state.LastFailoverID, stamp(state.LastFailover), shortDuration(window))
	}
}

// stamp formats a time for reasons: UTC, to the second, unambiguous across
// controllers in different time zones.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// shortDuration prints 1h rather than 1h0m0s, as operators write it in config.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
