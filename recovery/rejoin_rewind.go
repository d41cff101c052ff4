package recovery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/topology"
)

// errantTrx is one errant transaction found in the instance's binlog.
type errantTrx struct {
	GTID       string
	File       string
	Start, End int64
	HeaderEnd  int64
}

// rewindScan is what the binlog scan of a rewind found: the errant
// transactions (binlog order) and the position the instance shares with the
// master (one GTID per domain: the last transaction the master has).
type rewindScan struct {
	Errant []errantTrx
	Shared topology.MariaDBGTIDList
}

// findErrant walks the instance's binlog files from the newest back and
// collects the transactions the master's state ref lacks. They must form the
// end of the binlog: after a failover the old master's errant writes are its
// last ones, and reverting a suffix leaves exactly the history before it. A
// replicated transaction after an errant one means the histories interleave;
// flashback of the errant ones alone would not give a state the master ever
// had, so that is refused.
//
// The shared position is the Gtid_list at the start of the first file that
// holds a non-errant transaction (the state before that file), advanced by
// that file's non-errant transactions.
func findErrant(ctx context.Context, ag BinlogAgent, ref topology.MariaDBGTIDList) (rewindScan, error) {
	files, err := ag.Files(ctx)
	if err != nil {
		return rewindScan{}, fmt.Errorf("list binlogs: %w", err)
	}
	var out rewindScan
	for i := len(files) - 1; i >= 0; i-- {
		sc, err := ag.Scan(ctx, files[i].Name, 0, "")
		if err != nil {
			return rewindScan{}, fmt.Errorf("scan %s: %w", files[i].Name, err)
		}
		shared, err := topology.ParseMariaDBGTIDList(sc.GTIDList)
		if err != nil {
			return rewindScan{}, fmt.Errorf("%s Gtid_list %q: %w", sc.Name, sc.GTIDList, err)
		}
		var errant []errantTrx
		sawKnown := false
		for _, t := range sc.Transactions {
			g, err := topology.ParseMariaDBGTIDList(t.GTID)
			if err != nil || len(g) != 1 {
				return rewindScan{}, fmt.Errorf("%s at %d: transaction without a MariaDB GTID (%q)", sc.Name, t.Start, t.GTID)
			}
			if knownByRef(g[0], ref) {
				if len(errant) > 0 {
					return rewindScan{}, fmt.Errorf("%w: errant transaction %s in %s is followed by %s, which the master has: the histories interleave and flashback cannot revert the errant ones alone; re-clone the instance",
						ErrRejoinRefused, errant[0].GTID, sc.Name, t.GTID)
				}
				sawKnown = true
				shared = mergeDomain(shared, g[0])
				continue
			}
			errant = append(errant, errantTrx{GTID: t.GTID, File: sc.Name, Start: t.Start, End: t.End, HeaderEnd: sc.HeaderEnd})
		}
		out.Errant = append(errant, out.Errant...)
		if sawKnown || i == 0 {
			out.Shared = shared
			return out, nil
		}
	}
	return out, nil
}

// mergeDomain sets g as its domain's position in a per-domain list.
func mergeDomain(l topology.MariaDBGTIDList, g topology.MariaDBGTID) topology.MariaDBGTIDList {
	out := slices.DeleteFunc(slices.Clone(l), func(o topology.MariaDBGTID) bool { return o.Domain == g.Domain })
	return append(out, g)
}

// fileSafe turns an address into a file-name part.
var fileSafe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// save copies the errant transactions' events, through the instance's
// agent, into files under the rewind directory (one per binlog file they
// come from: that file's header then their bytes, which mariadb-binlog
// reads), before anything is reverted: the operator keeps them to re-apply
// by hand on the master if they were wanted after all.
func (r *rejoinRun) save(ctx context.Context) stepResult {
	inst := r.ev.Instance
	if len(r.errant) == 0 {
		return stepSkipped("nothing errant on %s any more", inst)
	}
	url := r.agentURL(inst)
	switch {
	case url == "":
		return stepFailed(fsm.ResultRefused, "%s has no agent to read its binlog through", inst)
	case r.e.cfg.Agents == nil:
		return stepFailed(fsm.ResultRefused, "no binlog agent client")
	case r.e.cfg.RewindDir == "":
		return stepFailed(fsm.ResultRefused, "no rewind directory (node.data_dir) to save the errant transactions in")
	}
	ag, err := r.e.cfg.Agents(r.cc.Name, url)
	if err != nil {
		return stepFailed(fsm.ResultFailed, "agent of %s: %v", inst, err)
	}
	sc, err := findErrant(ctx, ag, r.ref)
	if err != nil {
		if errors.Is(err, ErrRejoinRefused) {
			return stepFailed(fsm.ResultRefused, "%v", err)
		}
		return stepFailed(fsm.ResultFailed, "scan the binlog of %s: %v", inst, err)
	}
	if len(sc.Errant) == 0 {
		return stepFailed(fsm.ResultRefused, "the GTID state of %s names errant transactions %s but its binlog holds none (purged?): re-clone the instance",
			inst, strings.Join(r.errant, ","))
	}
	if err := os.MkdirAll(r.e.cfg.RewindDir, 0o700); err != nil {
		return stepFailed(fsm.ResultFailed, "create %s: %v", r.e.cfg.RewindDir, err)
	}
	base := filepath.Join(r.e.cfg.RewindDir, fmt.Sprintf("%s-%s-%d", fileSafe.ReplaceAllString(r.cc.Name, "_"), fileSafe.ReplaceAllString(inst, "_"), r.id))
	var byFile [][]errantTrx
	for _, t := range sc.Errant {
		if n := len(byFile); n > 0 && byFile[n-1][0].File == t.File {
			byFile[n-1] = append(byFile[n-1], t)
			continue
		}
		byFile = append(byFile, []errantTrx{t})
	}
	var files, gtids []string
	for i, trxs := range byFile {
		name := base + ".binlog"
		if len(byFile) > 1 {
			name = fmt.Sprintf("%s.%d.binlog", base, i+1)
		}
		if err := saveTrx(ctx, ag, name, trxs); err != nil {
			return stepFailed(fsm.ResultFailed, "save errant transactions of %s: %v", inst, err)
		}
		files = append(files, name)
		for _, t := range trxs {
			gtids = append(gtids, t.GTID)
		}
	}
	r.files, r.pos = files, sc.Shared.String()
	return stepOK("errant transactions %s saved in %s; shared position with the master %s", strings.Join(gtids, ","), strings.Join(files, ", "), r.pos)
}

// saveTrx writes trxs (all of one binlog file) to name: the file's header,
// then each transaction's bytes.
func saveTrx(ctx context.Context, ag BinlogAgent, name string, trxs []errantTrx) (err error) {
	var buf bytes.Buffer
	src := trxs[0].File
	if _, err := ag.Raw(ctx, src, 0, trxs[0].HeaderEnd, &buf); err != nil {
		return fmt.Errorf("header of %s: %w", src, err)
	}
	for _, t := range trxs {
		if _, err := ag.Raw(ctx, src, t.Start, t.End, &buf); err != nil {
			return fmt.Errorf("%s [%d,%d) of %s: %w", t.GTID, t.Start, t.End, src, err)
		}
	}
	return os.WriteFile(name, buf.Bytes(), 0o600)
}

// flashback reverts the saved transactions on the instance (newest file
// first; mariadb-binlog --flashback reverses the events inside a file) with
// sql_log_bin=0, then resets its GTID state to the shared position.
//
// Why the reset: after the revert the instance's data is the state at the
// shared position, but its gtid_binlog_state still names the errant GTIDs.
// Under gtid_strict_mode the first transaction from the master (same domain,
// a lower or equal sequence number than an errant one) would then be refused
// as out of order, and gtid_current_pos would still claim the errant ones.
// MariaDB takes a new gtid_binlog_state only on an empty binlog, so the
// binlog is reset (its errant events are saved) and both gtid_binlog_state
// and gtid_slave_pos are set to the shared position: a prefix of the
// master's history, from which MASTER_USE_GTID=slave_pos replicates. The
// revert itself is not binlogged (sql_log_bin=0): it must not become a new
// transaction the master lacks.
func (r *rejoinRun) flashback(ctx context.Context) stepResult {
	inst := r.ev.Instance
	if len(r.files) == 0 {
		return stepSkipped("nothing to revert on %s", inst)
	}
	if r.e.cfg.Flashback == nil {
		return stepFailed(fsm.ResultFailed, "no flashback applier configured")
	}
	c, err := r.conn(ctx, inst)
	if err != nil {
		return stepFailed(fsm.ResultFailed, "connect %s: %v", inst, err)
	}
	gs, ok := c.(gtidStateSetter)
	if !ok {
		return stepFailed(fsm.ResultFailed, "%s: the connection cannot set the GTID state", inst)
	}
	if err := r.guarded(ctx, func() error { return c.StopReplica(ctx, topology.BothThreads) }); err != nil {
		return stepFailed(fsm.ResultFailed, "stop replication on %s: %v", inst, err)
	}
	cred := topology.Credentials{User: r.cc.User, Password: r.cc.Password}
	// Newest file first; the applier checks every file before it reverts
	// any.
	newestFirst := slices.Clone(r.files)
	slices.Reverse(newestFirst)
	err = r.guarded(ctx, func() error { return r.e.cfg.Flashback(ctx, inst, cred, topology.MariaDB, newestFirst) })
	if errors.Is(err, ErrRejoinRefused) {
		return stepFailed(fsm.ResultRefused, "%v; nothing was reverted", err)
	}
	if err != nil {
		return stepFailed(fsm.ResultFailed, "flashback on %s: %v; the instance may be partly reverted: compare it with the master and the saved files, re-clone it if unsure", inst, err)
	}
	if err := r.guarded(ctx, func() error { return gs.ResetGTIDState(ctx, r.pos) }); err != nil {
		return stepFailed(fsm.ResultFailed, "reset the GTID state of %s to %s after the flashback: %v", inst, r.pos, err)
	}
	_, in, err := r.read(ctx, inst)
	if err != nil {
		return stepFailed(fsm.ResultFailed, "read %s after the flashback: %v", inst, err)
	}
	_, mst, err := r.read(ctx, r.ev.Master)
	if err != nil {
		return stepFailed(fsm.ResultFailed, "read the master %s after the flashback: %v", r.ev.Master, err)
	}
	errant, _, err := rejoinErrant(in, mst)
	switch {
	case err != nil:
		return stepFailed(fsm.ResultFailed, "compare %s with %s after the flashback: %v", inst, r.ev.Master, err)
	case len(errant) > 0:
		return stepFailed(fsm.ResultFailed, "%s still has errant GTIDs %s after the flashback", inst, strings.Join(errant, ","))
	}
	want, _ := topology.ParseMariaDBGTIDList(r.pos)
	got, err := topology.ParseMariaDBGTIDList(in.GTIDSlavePos)
	if err != nil || got.String() != want.String() {
		return stepFailed(fsm.ResultFailed, "gtid_slave_pos of %s is %q after the reset, not %q", inst, in.GTIDSlavePos, r.pos)
	}
	return stepOK("reverted %s on %s (not binlogged); binlog reset, gtid_binlog_state and gtid_slave_pos set to %s", strings.Join(r.errant, ","), inst, r.pos)
}

// ExecFlashbackApplier reverts binlog files, in the order given, on the
// instance at addr:
// `mariadb-binlog --flashback FILE | mariadb --init-command="SET SESSION
// sql_log_bin=0"`, so the revert is not binlogged. Row-based events only
// (the caller checks binlog_format=ROW).
func ExecFlashbackApplier(ctx context.Context, addr string, cred topology.Credentials, flavor topology.Flavor, files []string) error {
	if flavor != topology.MariaDB {
		return fmt.Errorf("flashback needs MariaDB's mariadb-binlog, not %s", flavor)
	}
	decoder, client, err := binlogTools(flavor)
	if err != nil {
		return err
	}
	cnf, cleanup, err := clientOptionFile(addr, cred, "quorumha-flashback-")
	if err != nil {
		return err
	}
	defer cleanup()
	// Refuse before reverting anything when a file holds statements:
	// flashback turns row events around and nothing else, so a DDL or a
	// statement-logged change would stay while its GTID is reset away.
	for _, f := range files {
		out, err := exec.CommandContext(ctx, decoder, "--base64-output=decode-rows", f).Output()
		if err != nil {
			return fmt.Errorf("%s %s: %w", decoder, f, err)
		}
		if stmts := statementsIn(string(out)); len(stmts) > 0 {
			return fmt.Errorf("%w: %s holds statements flashback cannot revert (%s): re-clone the instance", ErrRejoinRefused, f, listSome(stmts, 3))
		}
	}
	for _, f := range files {
		dec := exec.CommandContext(ctx, decoder, "--flashback", f)
		cli := exec.CommandContext(ctx, client, "--defaults-extra-file="+cnf, "--binary-mode", "--batch",
			"--init-command=SET SESSION sql_log_bin=0")
		var decOut, decErr, cliErr bytes.Buffer
		dec.Stdout, dec.Stderr = &decOut, &decErr
		// Decode fully first: a decoder failure then applies nothing.
		if err := dec.Run(); err != nil {
			return fmt.Errorf("%s --flashback %s: %w: %s", decoder, f, err, tail(decErr.String()))
		}
		cli.Stdin, cli.Stderr = &decOut, &cliErr
		if err := cli.Run(); err != nil {
			return fmt.Errorf("%s to %s: %w: %s", client, addr, err, tail(cliErr.String()))
		}
	}
	return nil
}

// statementsIn returns the statements of a decoded binlog
// (mariadb-binlog --base64-output=decode-rows) other than the ones that
// frame row events: transaction control, session SETs, USE and the
// decoder's own DELIMITER and comment lines. Row events decode to comments
// only, so anything left is a statement that changed data or schema.
func statementsIn(decoded string) []string {
	var out []string
	for _, line := range strings.Split(decoded, "\n") {
		l := strings.TrimSpace(line)
		l = strings.TrimSuffix(l, "/*!*/;")
		l = strings.TrimSpace(strings.TrimSuffix(l, ";"))
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "/*") || strings.HasPrefix(l, "--") {
			continue
		}
		u := strings.ToUpper(l)
		allowed := false
		for _, p := range []string{"BEGIN", "COMMIT", "ROLLBACK", "SET ", "SET@", "USE ", "DELIMITER", "START TRANSACTION", "XA "} {
			if u == strings.TrimSpace(p) || strings.HasPrefix(u, p) {
				allowed = true
				break
			}
		}
		if !allowed {
			out = append(out, l)
		}
	}
	return out
}
