package detector

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"

	"github.com/quorumha/quorumha/topology"
)

// ProbeReplica asks a replica how its replication from the master is doing.
// Advancing is computed against prev (the previous observation of the same
// replica). An unreachable replica keeps prev's ReadPos as its last known
// position, so the first answer after an outage can still show movement.
func (p *Prober) ProbeReplica(ctx context.Context, t Target, prev ReplicaObservation) ReplicaObservation {
	obs := ReplicaObservation{Replica: t.Addr, ObservedAt: p.cfg.Clock.Now()}
	var status map[string]sql.NullString
	var hb topology.ReplicaHeartbeat
	var hbOK bool
	start := obs.ObservedAt
	err := p.run(ctx, t, func(ctx context.Context, pl *pool) error {
		var err error
		status, err = readReplicaStatus(ctx, pl)
		if err != nil || status == nil {
			return err
		}
		// Heartbeats are a second signal: a replica whose heartbeats
		// cannot be read (privileges, an old server) is judged by its IO
		// thread alone, so the error is not the probe's.
		_, mariadb := status["Using_Gtid"]
		hb, hbOK, _ = topology.ReadReplicaHeartbeat(ctx, pl.db, mariadb)
		return nil
	})
	if err != nil {
		obs.Error = fmt.Sprintf("%s: %v", p.classify(err, p.cfg.Clock.Now().Sub(start)), err)
		if prev.Replica == t.Addr {
			obs.ReadPos = prev.ReadPos
		}
		obs.ProgressAt = NextProgress(prev, obs, obs.ObservedAt)
		return obs
	}
	obs.Reachable = true
	fillReplicaObservation(&obs, status)
	if hbOK {
		n := hb.Received
		obs.Heartbeats, obs.HeartbeatPeriod = &n, hb.Period
	}
	obs.Advancing = prev.Replica == t.Addr && prev.ReadPos != "" && obs.ReadPos != "" && obs.ReadPos != prev.ReadPos
	obs.ProgressAt = NextProgress(prev, obs, obs.ObservedAt)
	return obs
}

// readReplicaStatus runs the replica status statement (topology's, with
// the name that worked last time on this pool) and returns the first row by
// column name (nil when the server is not a replica).
func readReplicaStatus(ctx context.Context, pl *pool) (map[string]sql.NullString, error) {
	row, stmt, err := topology.ProbeReplicaStatus(ctx, pl.db, pl.replicaSQL)
	if stmt != "" {
		pl.replicaSQL = stmt // only this probe's goroutine touches pl while it is in flight
	}
	return row, err
}

// fillReplicaObservation copies the fields the detector needs, accepting the
// MySQL 8 "Source"/"Replica" column names as well as the classic ones.
func fillReplicaObservation(obs *ReplicaObservation, st map[string]sql.NullString) {
	if st == nil {
		return
	}
	get := func(names ...string) (string, bool) {
		for _, n := range names {
			if v, ok := st[n]; ok {
				return v.String, v.Valid
			}
		}
		return "", false
	}
	obs.MasterHost, _ = get("Master_Host", "Source_Host")
	port, _ := get("Master_Port", "Source_Port")
	obs.MasterPort, _ = strconv.Atoi(port)
	if id, _ := get("Master_Server_Id", "Source_Server_Id"); id != "" {
		if n, err := strconv.ParseUint(id, 10, 32); err == nil {
			obs.MasterServerID = uint32(n)
		}
	}
	obs.IORunning, _ = get("Slave_IO_Running", "Replica_IO_Running")
	sqlRunning, _ := get("Slave_SQL_Running", "Replica_SQL_Running")
	obs.SQLRunning = sqlRunning == "Yes"
	errno, _ := get("Last_IO_Errno")
	obs.LastIOErrno, _ = strconv.Atoi(errno)
	obs.LastIOError, _ = get("Last_IO_Error")
	file, _ := get("Master_Log_File", "Source_Log_File")
	pos, _ := get("Read_Master_Log_Pos", "Read_Source_Log_Pos")
	obs.ReadPos = file + ":" + pos
	if gtid, _ := get("Gtid_IO_Pos", "Retrieved_Gtid_Set"); gtid != "" {
		obs.ReadPos += " gtid=" + gtid
	}
	if sb, ok := get("Seconds_Behind_Master", "Seconds_Behind_Source"); ok {
		if n, err := strconv.ParseInt(sb, 10, 64); err == nil {
			obs.SecondsBehind = &n
		}
	}
}
