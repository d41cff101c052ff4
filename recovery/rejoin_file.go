package recovery

import (
	"context"
	"fmt"
	"strings"

	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/topology"
)

// A rejoin in file/position mode. There is no GTID to say what the former
// master has that the new one lacks, so the journal of the failover that
// replaced it has to: its catch_up step recorded how far the new master had
// applied the old master's binlog (old_master_exec=), and its promote step
// where the new master's own binlog stood when it became the master
// (binlog=). The old master is level with the new one exactly when its
// binlog holds no transaction after old_master_exec; it then replicates
// from binlog=. Whatever cannot be read from the journal with certainty
// refuses the rejoin: guessing a coordinate silently skips or repeats
// transactions.

// fileRejoin is the journalled basis of a file/position rejoin.
type fileRejoin struct {
	// RecordID is the failover that replaced the instance.
	RecordID uint64
	// OldMasterExec is how far the new master applied the instance's binlog
	// before it was promoted.
	OldMasterExec topology.BinlogCoord
	// NewMasterStart is the new master's binlog coordinate at promotion:
	// where the instance starts replicating.
	NewMasterStart topology.BinlogCoord
}

// fileRejoinBasis finds, in a cluster's history (newest first), the failover
// that made master the master in place of instance, and reads its
// coordinates. The error (ErrRejoinRefused) says what is not known.
func fileRejoinBasis(history []fsm.Record, instance, master string) (fileRejoin, error) {
	var rec *fsm.Record
	for i := range history {
		if _, promoted := promotedStep(history[i]); promoted {
			rec = &history[i]
			break
		}
	}
	const reclone = "re-clone it from the master, or level it by hand and CHANGE MASTER yourself"
	switch {
	case rec == nil:
		return fileRejoin{}, fmt.Errorf("%w: file/position replication: no failover in the history promoted %s, so where %s stands against its binlog is not known; %s",
			ErrRejoinRefused, master, instance, reclone)
	case !sameAddr(chosenOf(*rec), master):
		return fileRejoin{}, fmt.Errorf("%w: file/position replication: the last promotion (record %d) made %s the master, not %s: the journal has no coordinates for the current master; %s",
			ErrRejoinRefused, rec.ID, chosenOf(*rec), master, reclone)
	case !sameAddr(rec.OldMaster, instance):
		return fileRejoin{}, fmt.Errorf("%w: file/position replication: record %d replaced %s, not %s, so the journal says nothing about %s's binlog against %s's; %s",
			ErrRejoinRefused, rec.ID, rec.OldMaster, instance, instance, master, reclone)
	case rec.Kind != fsm.KindFailover:
		return fileRejoin{}, fmt.Errorf("%w: file/position replication: record %d is a %s, whose steps do not journal the coordinates a rejoin needs; %s",
			ErrRejoinRefused, rec.ID, rec.Kind, reclone)
	}
	if s := rec.Salvage; s != nil && (s.Applied > 0 || s.Outcome == fsm.SalvageApplied) {
		// The salvage applied binlog events by client, not by replication:
		// the new master's coordinate in the old binlog did not move, and
		// where the applied events ended is not journalled.
		return fileRejoin{}, fmt.Errorf("%w: file/position replication: failover %d salvaged %d transaction(s) from %s's binlog onto %s (last starting at %s); where they ended in its binlog is not journalled, so its level with %s cannot be proven; %s",
			ErrRejoinRefused, rec.ID, s.Applied, instance, s.Target, orNone(s.MasterLast), master, reclone)
	}
	exec, ok := chosenExec(*rec)
	if !ok {
		return fileRejoin{}, fmt.Errorf("%w: file/position replication: failover %d did not journal how far %s had applied %s's binlog (catch_up old_master_exec=); %s",
			ErrRejoinRefused, rec.ID, master, instance, reclone)
	}
	start, ok := promotedCoord(*rec)
	if !ok {
		return fileRejoin{}, fmt.Errorf("%w: file/position replication: failover %d did not journal %s's binlog coordinate at promotion (promote binlog=); %s",
			ErrRejoinRefused, rec.ID, master, reclone)
	}
	return fileRejoin{RecordID: rec.ID, OldMasterExec: exec, NewMasterStart: start}, nil
}

// promotedStep returns a record's promote step when it ended OK.
func promotedStep(rec fsm.Record) (fsm.Step, bool) {
	for i := len(rec.Steps) - 1; i >= 0; i-- {
		if s := rec.Steps[i]; s.Name == StepPromote && s.Outcome == fsm.OutcomeOK {
			return s, true
		}
	}
	return fsm.Step{}, false
}

// fileEventLimit bounds the events read after old_master_exec: a clean
// former master has a handful (a restart's format description, rotate,
// GTID list), so more than this many means transactions anyway.
const fileEventLimit = 200

// decideFileRejoin checks the instance's binlog after the coordinate the
// new master had applied: end is where the binlog ends now (SHOW MASTER
// STATUS), after the events from b.OldMasterExec on. Only server bookkeeping
// (format description, rotate, stop, GTID list, checkpoint) may follow;
// any transaction there is errant: written on the old master, never
// received by the new one. The error names the file/positions.
func decideFileRejoin(instance, master string, b fileRejoin, end topology.BinlogCoord, after []topology.BinlogEvent) error {
	if o, err := topology.ComparePositions(topology.FilePosition(end), topology.FilePosition(b.OldMasterExec)); err != nil || o == topology.Behind {
		return fmt.Errorf("%w: file/position replication: %s's binlog ends at %s, before %s, which %s had applied when it was promoted (failover %d): the binlog lost events the new master has; re-clone it",
			ErrRejoinRefused, instance, end, b.OldMasterExec, master, b.RecordID)
	}
	var errant []topology.BinlogEvent
	for _, e := range after {
		if e.Transactional() {
			errant = append(errant, e)
		}
	}
	if len(errant) == 0 && len(after) >= fileEventLimit {
		return fmt.Errorf("%w: file/position replication: %s's binlog has more than %d events after %s; not read to the end, so not proven free of transactions; re-clone it",
			ErrRejoinRefused, instance, fileEventLimit, b.OldMasterExec)
	}
	if len(errant) == 0 {
		return nil
	}
	first, last := errant[0], errant[len(errant)-1]
	var some []string
	for _, e := range errant[:min(len(errant), 5)] {
		some = append(some, fmt.Sprintf("%s %s", e.Coord(), e.Type))
	}
	more := ""
	if len(errant) >= fileEventLimit || len(after) >= fileEventLimit {
		more = " or more"
	}
	trx := 0
	for _, e := range errant {
		if e.Type == "Gtid" || e.Type == "Anonymous_Gtid" { // one per transaction
			trx++
		}
	}
	if trx > 0 {
		more += fmt.Sprintf(" (%d transaction(s))", trx)
	}
	return fmt.Errorf("%w: file/position replication: %s's binlog has %d event(s)%s that %s never received: from %s to %s:%d, after %s where %s stopped applying it (failover %d) [%s]; they would be lost: save them (mariadb-binlog --start-position=%d %s) and re-clone the instance",
		ErrRejoinRefused, instance, len(errant), more, master, first.Coord(), last.File, last.EndPos, b.OldMasterExec, master, b.RecordID,
		strings.Join(some, "; "), b.OldMasterExec.Pos, b.OldMasterExec.File)
}

// binlogEventReader reads a server's binlog events (*topology.Conn does).
type binlogEventReader interface {
	BinlogEventsAfter(ctx context.Context, from topology.BinlogCoord, limit int) ([]topology.BinlogEvent, error)
}

// checkFileRejoin is the whole file/position check of a rejoin: the basis
// from the journal, then the instance's binlog after it. in is the
// instance as just read through c.
func (d *Runner) checkFileRejoin(ctx context.Context, cluster, instance, master string, c Instance, in *topology.Instance) (fileRejoin, error) {
	return checkFileRejoin(ctx, d.state.History(cluster, 0), instance, master, c, in)
}

func checkFileRejoin(ctx context.Context, history []fsm.Record, instance, master string, c Instance, in *topology.Instance) (fileRejoin, error) {
	b, err := fileRejoinBasis(history, instance, master)
	if err != nil {
		return b, err
	}
	if in.MasterStatus == nil {
		return b, fmt.Errorf("%w: file/position replication: %s has no binlog (SHOW MASTER STATUS is empty), so its level with %s cannot be checked", ErrRejoinRefused, instance, master)
	}
	br, ok := c.(binlogEventReader)
	if !ok {
		return b, fmt.Errorf("%w: %s: the connection cannot read binlog events", ErrRejoinRefused, instance)
	}
	end := *in.MasterStatus
	var after []topology.BinlogEvent
	if o, err := topology.ComparePositions(topology.FilePosition(end), topology.FilePosition(b.OldMasterExec)); err == nil && o != topology.Behind {
		after, err = br.BinlogEventsAfter(ctx, b.OldMasterExec, fileEventLimit)
		if err != nil {
			return b, fmt.Errorf("%w: file/position replication: read %s's binlog after %s (where %s stopped applying it): %w", ErrRejoinRefused, instance, b.OldMasterExec, master, err)
		}
	}
	return b, decideFileRejoin(instance, master, b, end, after)
}
