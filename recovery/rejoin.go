package recovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/topology"
)

// ErrRejoinRefused means a rejoin's precondition does not hold (not a
// configured instance, the master itself, errant transactions without
// --rewind, no repl_user, ...); it is wrapped with the reason and nothing was
// changed.
var ErrRejoinRefused = errors.New("rejoin refused")

// RejoinRequest asks to make Instance, a former master left fenced and
// alone, a read-only replica of the cluster's current master.
type RejoinRequest struct {
	Cluster, Instance string
	// Rewind reverts the instance's errant transactions (MariaDB, row-based
	// binlogs) instead of refusing.
	Rewind bool
	DryRun bool
	By     string
}

// RejoinResult answers a rejoin request.
type RejoinResult struct {
	RecordID uint64 `json:"record_id,omitempty"`
	DryRun   bool   `json:"dry_run"`
	Instance string `json:"instance"`
	Master   string `json:"master,omitempty"`
	// Errant lists what the instance has that the master lacks: MariaDB
	// "domain-server-first..last" ranges, MySQL a GTID set.
	Errant []string `json:"errant,omitempty"`
	// ErrantGTIDs are the errant transactions one by one, read from the
	// instance's binlog through its agent (empty without one).
	ErrantGTIDs []string `json:"errant_gtids,omitempty"`
	Rewind      bool     `json:"rewind,omitempty"`
	// MasterCoord is, in file/position mode, the master's binlog
	// coordinate the instance replicates from (journalled at promotion).
	MasterCoord string `json:"master_coord,omitempty"`
	Message     string `json:"message"`
}

// RejoinEvidence is the evidence of a rejoin record: what the executor (and
// a reader of the history) needs.
type RejoinEvidence struct {
	By       string   `json:"by"`
	Instance string   `json:"instance"`
	Master   string   `json:"master"`
	Rewind   bool     `json:"rewind,omitempty"`
	Errant   []string `json:"errant,omitempty"`
	// MasterCoord is the file/position start ("file:pos" in the master's
	// binlog, journalled by the promote step of FailoverRecord); empty
	// with GTID replication.
	MasterCoord    string `json:"master_coord,omitempty"`
	FailoverRecord uint64 `json:"failover_record,omitempty"`
}

func rejoinEvidence(rec fsm.Record) (RejoinEvidence, bool) {
	var ev RejoinEvidence
	if rec.Kind != fsm.KindRejoin || json.Unmarshal(rec.Evidence, &ev) != nil || ev.Instance == "" || ev.Master == "" {
		return RejoinEvidence{}, false
	}
	return ev, true
}

// Rejoin steps.
const (
	StepRejoinCheck      = "check"
	StepRejoinSave       = "save_errant"
	StepRejoinClearFence = "clear_fence"
	StepRejoinFlashback  = "flashback"
	StepRejoinPoint      = "change_master"
	StepRejoinStart      = "start_replica"
)

// RejoinPlan is the step list of a rejoin; a rewind saves and reverts the
// errant transactions before the instance is pointed at the master.
func RejoinPlan(rewind bool) []string {
	if rewind {
		return []string{StepRejoinCheck, StepRejoinSave, StepRejoinClearFence, StepRejoinFlashback, StepRejoinPoint, StepRejoinStart}
	}
	return []string{StepRejoinCheck, StepRejoinClearFence, StepRejoinPoint, StepRejoinStart}
}

// rejoinFacts is what the rejoin decision looks at.
type rejoinFacts struct {
	Instance string
	Flavor   topology.Flavor
	// GTID is false for a cluster in file/position mode.
	GTID         bool
	ReplUser     string
	Errant       []string
	Rewind       bool
	BinlogFormat string
	// RowImage is binlog_row_image ("" when unread).
	RowImage string
	// Agent tells whether the instance has a binlog agent (rewind reads
	// the errant events through it).
	Agent bool
	// File is, in file/position mode, the proven basis of the rejoin (nil
	// when not established); FileErr says why it is not.
	File    *fileRejoin
	FileErr error
}

// decideRejoin says whether a rejoin may go ahead, and with a rewind; the
// error says why not (ErrRejoinRefused).
func decideRejoin(f rejoinFacts) (rewind bool, err error) {
	switch {
	case f.ReplUser == "":
		return false, fmt.Errorf("%w: the cluster has no repl_user (clusters[].repl_user): %s cannot be pointed at the master without a replication account", ErrRejoinRefused, f.Instance)
	case !f.GTID && f.FileErr != nil:
		return false, f.FileErr
	case !f.GTID && f.File == nil:
		// In file/position mode the instance's own binlog coordinates say
		// nothing about the new master's: without the journalled basis
		// (checkFileRejoin) nothing proves the instance is level with the
		// point the new master took over from.
		return false, fmt.Errorf("%w: cluster in file/position replication mode: quorumha cannot prove that %s is level with the master's history; re-clone it, or check it by hand and CHANGE MASTER yourself", ErrRejoinRefused, f.Instance)
	case !f.GTID:
		return false, nil
	case len(f.Errant) == 0:
		return false, nil
	case f.Flavor == topology.MySQL:
		return false, fmt.Errorf("%w: %s has transactions the master lacks (errant GTIDs %s); MySQL has no flashback to revert them: re-clone the instance from the master, or inject empty transactions on the master if you accept them lost", ErrRejoinRefused, f.Instance, strings.Join(f.Errant, ","))
	case !f.Rewind:
		return false, fmt.Errorf("%w: %s has transactions the master never got (errant GTIDs %s); they would be lost: save and revert them with --rewind, or re-clone the instance", ErrRejoinRefused, f.Instance, strings.Join(f.Errant, ","))
	case !strings.EqualFold(f.BinlogFormat, "ROW"):
		return false, fmt.Errorf("%w: %s has errant transactions (%s) but binlog_format is %s: mariadb-binlog --flashback reverts row events only; re-clone the instance", ErrRejoinRefused, f.Instance, strings.Join(f.Errant, ","), f.BinlogFormat)
	case f.RowImage != "" && !strings.EqualFold(f.RowImage, "FULL"):
		return false, fmt.Errorf("%w: %s has errant transactions (%s) but binlog_row_image is %s: flashback needs full row images to restore rows; re-clone the instance", ErrRejoinRefused, f.Instance, strings.Join(f.Errant, ","), f.RowImage)
	case !f.Agent:
		return false, fmt.Errorf("%w: %s has errant transactions (%s) but no agent (clusters[].instances[].agent) to read its binlog through: re-clone it", ErrRejoinRefused, f.Instance, strings.Join(f.Errant, ","))
	}
	return true, nil
}

// rejoinErrant returns what inst has executed that master has not, and the
// position (MariaDB: one GTID per domain) inst is at, to which gtid_slave_pos
// is set when there is nothing errant.
//
// MariaDB compares per domain and server id, not per domain: the old master
// wrote its errant transactions under its own server id, while the new
// master has since written higher sequence numbers in the same domain under
// another id, so a per-domain comparison (the last GTID of each domain, as
// gtid_binlog_pos gives) would wrongly call them known. gtid_binlog_state
// keeps the last sequence number of every (domain, server) pair the binlog
// ever held, and under gtid_strict_mode those only grow; the master lacks
// inst's d-s-n when its state has a lower number (or none) for d-s.
func rejoinErrant(inst, master *topology.Instance) (errant []string, pos string, err error) {
	if inst.Version.Flavor == topology.MySQL {
		own, err := topology.ParseGTIDSet(inst.GTIDExecuted)
		if err != nil {
			return nil, "", fmt.Errorf("%s gtid_executed: %w", inst.Key, err)
		}
		ms, err := topology.ParseGTIDSet(master.GTIDExecuted)
		if err != nil {
			return nil, "", fmt.Errorf("%s gtid_executed: %w", master.Key, err)
		}
		if d := own.Subtract(ms); !d.IsEmpty() {
			errant = []string{d.String()}
		}
		return errant, inst.GTIDExecuted, nil
	}
	own, err := parseJoined(inst.Key, inst.GTIDBinlogState, inst.GTIDSlavePos, inst.GTIDCurrentPos)
	if err != nil {
		return nil, "", err
	}
	ref, err := parseJoined(master.Key, master.GTIDBinlogState, master.GTIDSlavePos, master.GTIDCurrentPos)
	if err != nil {
		return nil, "", err
	}
	return mariaDBRejoinErrant(own, ref), perDomainMax(own).String(), nil
}

func parseJoined(addr string, lists ...string) (topology.MariaDBGTIDList, error) {
	var out topology.MariaDBGTIDList
	for _, s := range lists {
		l, err := topology.ParseMariaDBGTIDList(s)
		if err != nil {
			return nil, fmt.Errorf("%s gtid state %q: %w", addr, s, err)
		}
		out = mergeList(out, l)
	}
	return out, nil
}

// mariaDBRejoinErrant lists, per (domain, server) of own, the sequence
// numbers after what ref has for that pair: "d-s-first..last" (or "d-s-n"
// for one). Sequence numbers are shared by a domain's servers, so a range
// may name numbers another server wrote; the binlog scan of a rewind gives
// the exact transactions.
func mariaDBRejoinErrant(own, ref topology.MariaDBGTIDList) []string {
	var out []string
	for _, g := range own {
		var have uint64
		for _, r := range ref {
			if r.Domain == g.Domain && r.Server == g.Server {
				have = r.Seq
			}
		}
		switch {
		case g.Seq <= have:
		case g.Seq == have+1:
			out = append(out, g.String())
		default:
			out = append(out, fmt.Sprintf("%d-%d-%d..%d", g.Domain, g.Server, have+1, g.Seq))
		}
	}
	return out
}

// knownByRef reports whether ref (per domain and server) has g.
func knownByRef(g topology.MariaDBGTID, ref topology.MariaDBGTIDList) bool {
	for _, r := range ref {
		if r.Domain == g.Domain && r.Server == g.Server && r.Seq >= g.Seq {
			return true
		}
	}
	return false
}

// perDomainMax keeps, per domain, the GTID with the highest sequence number:
// a position (gtid_slave_pos) out of a state.
func perDomainMax(l topology.MariaDBGTIDList) topology.MariaDBGTIDList {
	var out topology.MariaDBGTIDList
	for _, g := range l {
		found := false
		for i, o := range out {
			if o.Domain == g.Domain {
				found = true
				if g.Seq > o.Seq {
					out[i] = g
				}
			}
		}
		if !found {
			out = append(out, g)
		}
	}
	return out
}

// Rejoin checks the preconditions of a rejoin and, unless DryRun, opens a
// rejoin record and runs it in the Runner's leadership-scoped goroutine,
// returning the record id at once. Every refusal changes nothing.
func (d *Runner) Rejoin(ctx context.Context, req RejoinRequest) (RejoinResult, error) {
	res := RejoinResult{Instance: req.Instance, DryRun: req.DryRun}
	cc, ok := d.clusterConfig(req.Cluster)
	if !ok {
		return res, fmt.Errorf("%w: %q", ErrUnknownCluster, req.Cluster)
	}
	var ci *ClusterInstance
	for i := range cc.Instances {
		if sameAddr(cc.Instances[i].Address, req.Instance) {
			ci = &cc.Instances[i]
		}
	}
	if ci == nil {
		return res, fmt.Errorf("%w: %s is not a configured instance of cluster %q (clusters[].instances)", ErrRejoinRefused, req.Instance, req.Cluster)
	}
	req.Instance, res.Instance = ci.Address, ci.Address
	if !d.inTerm() {
		return res, ErrRunnerStopped
	}
	for _, r := range d.state.OpenRecords() {
		if r.Cluster == req.Cluster {
			return RejoinResult{RecordID: r.ID, Instance: req.Instance}, fmt.Errorf("%w: %s record %d is open", ErrFailoverInProgress, r.Kind, r.ID)
		}
	}
	if err := d.waitIdle(ctx, req.Cluster, idleWait); err != nil {
		return res, err
	}
	cs, ok := d.state.Cluster(req.Cluster)
	if !ok || cs.Master == "" {
		return res, fmt.Errorf("%w: no master recorded for %s yet", ErrRejoinRefused, req.Cluster)
	}
	res.Master = cs.Master
	if sameAddr(cs.Master, req.Instance) {
		return res, fmt.Errorf("%w: %s is the recorded master of %s", ErrRejoinRefused, req.Instance, req.Cluster)
	}
	chk, ref, err := d.rejoinFacts(ctx, cc, *ci, cs.Master, req.Rewind)
	res.Errant = chk.Errant
	if err != nil {
		return res, err
	}
	rewind, err := decideRejoin(chk)
	if len(chk.Errant) > 0 && chk.Flavor == topology.MariaDB {
		// The GTID state gives ranges; the binlog names each transaction.
		// Best effort: without an agent the ranges must do.
		res.ErrantGTIDs = d.errantInBinlog(ctx, cc, *ci, ref)
		if err != nil && len(res.ErrantGTIDs) > 0 {
			err = fmt.Errorf("%w; in its binlog: %s", err, listSome(res.ErrantGTIDs, 50))
		}
	}
	if err != nil {
		res.Message = err.Error()
		return res, err
	}
	res.Rewind = rewind
	what := "point it at " + cs.Master
	coord, failoverID := "", uint64(0)
	if chk.File != nil {
		coord, failoverID = chk.File.NewMasterStart.String(), chk.File.RecordID
		res.MasterCoord = coord
		what = fmt.Sprintf("point it at %s from %s, where %s's binlog stood at promotion (failover %d); its own binlog has no transaction after %s, where %s stopped applying it",
			cs.Master, coord, cs.Master, failoverID, chk.File.OldMasterExec, cs.Master)
	}
	if rewind {
		what = fmt.Sprintf("save and revert its errant transactions %s, then point it at %s", strings.Join(chk.Errant, ","), cs.Master)
	}
	if req.DryRun {
		res.Message = fmt.Sprintf("dry run: would rejoin %s as a read-only replica: %s", req.Instance, what)
		return res, nil
	}
	ev, err := json.Marshal(RejoinEvidence{By: req.By, Instance: req.Instance, Master: cs.Master, Rewind: rewind, Errant: chk.Errant,
		MasterCoord: coord, FailoverRecord: failoverID})
	if err != nil {
		return res, fmt.Errorf("encode evidence: %w", err)
	}
	if err := d.group.VerifyLeader(ctx); err != nil {
		return res, fmt.Errorf("verify leadership: %w", err)
	}
	id, err := d.apply(ctx, fsm.RecordOpenType, fsm.RecordOpen{Cluster: req.Cluster, Kind: fsm.KindRejoin,
		Trigger: "manual", OldMaster: req.Instance, OpenedBy: req.By, At: d.cfg.Now(), Evidence: ev})
	if errors.Is(err, fsm.ErrRecordOpen) {
		return res, fmt.Errorf("%w: %w", ErrFailoverInProgress, err)
	}
	if err != nil {
		return res, fmt.Errorf("open rejoin record: %w", err)
	}
	res.RecordID, _ = id.(uint64)
	if !d.startExecutor(req.Cluster, res.RecordID) {
		res.Message = "rejoin record opened; leadership ended before it started: the next leader closes it"
		return res, nil
	}
	d.log.Warn("rejoin started", "cluster", req.Cluster, "record", res.RecordID, "by", req.By, "instance", req.Instance, "master", cs.Master, "rewind", rewind)
	res.Message = fmt.Sprintf("rejoin of %s started (record %d): %s", req.Instance, res.RecordID, what)
	return res, nil
}

// rejoinFacts reads the instance and the master and gathers the decision's
// inputs. The instance is read before the master, so a master that merely
// moved on is never taken for one behind the instance.
func (d *Runner) rejoinFacts(ctx context.Context, cc ClusterConfig, ci ClusterInstance, master string, rewind bool) (f rejoinFacts, ref topology.MariaDBGTIDList, err error) {
	f = rejoinFacts{Instance: ci.Address, GTID: cc.useGTID(), ReplUser: cc.ReplUser, Rewind: rewind, Agent: ci.Agent != ""}
	cred := topology.Credentials{User: cc.User, Password: cc.Password}
	ic, err := d.exec.dial(ctx, ci.Address, cred)
	if err != nil {
		return f, nil, fmt.Errorf("%w: %s unreachable: %w", ErrRejoinRefused, ci.Address, err)
	}
	defer ic.Close()
	in, err := ic.Read(ctx)
	if err != nil {
		return f, nil, fmt.Errorf("%w: %s unreadable: %w", ErrRejoinRefused, ci.Address, err)
	}
	f.Flavor, f.BinlogFormat = in.Version.Flavor, in.BinlogFormat
	if v, ok := ic.(variableReader); ok {
		f.RowImage, _ = v.GlobalVariable(ctx, "binlog_row_image")
	}
	mc, err := d.exec.dial(ctx, master, cred)
	if err != nil {
		return f, nil, fmt.Errorf("%w: master %s unreachable: %w", ErrRejoinRefused, master, err)
	}
	defer mc.Close()
	mst, err := mc.Read(ctx)
	if err != nil {
		return f, nil, fmt.Errorf("%w: master %s unreadable: %w", ErrRejoinRefused, master, err)
	}
	if !f.GTID {
		fr, err := d.checkFileRejoin(ctx, cc.Name, ci.Address, master, ic, in)
		if err == nil {
			f.File = &fr
		}
		f.FileErr = err
		return f, nil, nil
	}
	f.Errant, _, err = rejoinErrant(in, mst)
	if err != nil {
		return f, nil, fmt.Errorf("%w: compare %s with the master %s: %w", ErrRejoinRefused, ci.Address, master, err)
	}
	if f.Flavor == topology.MariaDB {
		ref, _ = parseJoined(master, mst.GTIDBinlogState, mst.GTIDSlavePos, mst.GTIDCurrentPos)
	}
	return f, ref, nil
}

// errantInBinlog lists the errant transactions' GTIDs from the instance's
// binlog through its agent; nil when there is no agent or it fails.
func (d *Runner) errantInBinlog(ctx context.Context, cc ClusterConfig, ci ClusterInstance, ref topology.MariaDBGTIDList) []string {
	if ci.Agent == "" || d.exec.cfg.Agents == nil || ref == nil {
		return nil
	}
	ag, err := d.exec.cfg.Agents(cc.Name, ci.Agent)
	if err != nil {
		return nil
	}
	actx, cancel := context.WithTimeout(ctx, d.exec.cfg.SalvageTimeout)
	defer cancel()
	sc, err := findErrant(actx, ag, ref)
	if err != nil {
		d.log.Warn("list errant transactions through the agent", "cluster", cc.Name, "instance", ci.Address, "err", err)
		return nil
	}
	var out []string
	for _, t := range sc.Errant {
		out = append(out, t.GTID)
	}
	return out
}

// listSome joins at most n items, saying how many more there are.
func listSome(l []string, n int) string {
	if len(l) <= n {
		return strings.Join(l, ",")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(l[:n], ","), len(l)-n)
}

// variableReader reads a global variable (*topology.Conn does).
type variableReader interface {
	GlobalVariable(ctx context.Context, name string) (string, error)
}

// gtidStateSetter sets a MariaDB server's GTID state (*topology.Conn does).
type gtidStateSetter interface {
	SetGTIDSlavePos(ctx context.Context, pos string) error
	ResetGTIDState(ctx context.Context, pos string) error
}
