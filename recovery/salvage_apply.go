package recovery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/quorumha/quorumha/topology"
)

// ExecBinlogApplier applies binlog files with the server's own tools, as MHA
// does: `mariadb-binlog FILES | mariadb --binary-mode` (mysqlbinlog | mysql
// for MySQL). The tools decode every event type of their own server version,
// which no parser of ours would match; the statements keep the original
// GTIDs (SET gtid_domain_id/server_id/gtid_seq_no), so the transactions land
// in the new master's binlog under the names the dead master gave them. The
// password goes in a 0600 option file, never on a command line.
func ExecBinlogApplier(ctx context.Context, addr string, cred topology.Credentials, flavor topology.Flavor, files []string) error {
	if len(files) == 0 {
		return nil
	}
	decoder, client, err := binlogTools(flavor)
	if err != nil {
		return err
	}
	cnf, cleanup, err := clientOptionFile(addr, cred, "quorumha-apply-")
	if err != nil {
		return err
	}
	defer cleanup()

	dec := exec.CommandContext(ctx, decoder, files...)
	cli := exec.CommandContext(ctx, client, "--defaults-extra-file="+cnf, "--binary-mode", "--batch")
	var decErr, cliErr bytes.Buffer
	dec.Stderr, cli.Stderr = &decErr, &cliErr
	pipe, err := dec.StdoutPipe()
	if err != nil {
		return err
	}
	cli.Stdin = pipe
	if err := cli.Start(); err != nil {
		return fmt.Errorf("start %s: %w", client, err)
	}
	if err := dec.Start(); err != nil {
		_ = cli.Process.Kill()
		_ = cli.Wait()
		return fmt.Errorf("start %s: %w", decoder, err)
	}
	derr := dec.Wait()
	cerr := cli.Wait()
	var errs []error
	if derr != nil {
		errs = append(errs, fmt.Errorf("%s: %w: %s", decoder, derr, tail(decErr.String())))
	}
	if cerr != nil {
		errs = append(errs, fmt.Errorf("%s to %s: %w: %s", client, addr, cerr, tail(cliErr.String())))
	}
	return errors.Join(errs...)
}

// binlogTools finds the decoder and client for a flavor in PATH.
func binlogTools(flavor topology.Flavor) (decoder, client string, err error) {
	decoders, clients := []string{"mariadb-binlog", "mysqlbinlog"}, []string{"mariadb", "mysql"}
	if flavor == topology.MySQL {
		decoders, clients = []string{"mysqlbinlog"}, []string{"mysql"}
	}
	find := func(names []string) (string, error) {
		for _, n := range names {
			if p, err := exec.LookPath(n); err == nil {
				return p, nil
			}
		}
		return "", fmt.Errorf("none of %s found in PATH: install the %s client tools on every controller", strings.Join(names, ", "), flavor)
	}
	if decoder, err = find(decoders); err != nil {
		return "", "", err
	}
	if client, err = find(clients); err != nil {
		return "", "", err
	}
	return decoder, client, nil
}

// optionValue quotes a value for a MySQL option file, whose quoted values
// know the escapes \\ and \" (and \n, \t for control characters).
func optionValue(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`, "\r", `\r`)
	return `"` + r.Replace(s) + `"`
}

// clientOptionFile writes the [client] options for the server at addr,
// password included, to a 0600 file in a fresh temp directory (the password
// never goes on a command line) and returns its path and the cleanup that
// removes the directory.
func clientOptionFile(addr string, cred topology.Credentials, prefix string) (string, func(), error) {
	host, port := hostPort(addr)
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	cnf := filepath.Join(dir, "client.cnf")
	opt := fmt.Sprintf("[client]\nuser=%s\npassword=%s\nhost=%s\nport=%d\nprotocol=TCP\n",
		optionValue(cred.User), optionValue(cred.Password), optionValue(host), port)
	if err := os.WriteFile(cnf, []byte(opt), 0o600); err != nil {
		cleanup()
		return "", nil, err
	}
	return cnf, cleanup, nil
}
