package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// templateRevision changes whenever templateSQL or the install options
// change, so that stale cached templates are not reused.
const templateRevision = "3"

// templateSQL runs after mariadb-install-db's own scripts. The accounts and
// the schema exist before any binary log does, so every instance starts
// with the same, empty GTID set. FLUSH PRIVILEGES loads the grant tables in
// bootstrap mode, which runs with --skip-grant-tables.
const templateSQL = `FLUSH PRIVILEGES;
CREATE USER '` + AdminUser + `'@'%' IDENTIFIED BY '` + AdminPassword + `';
GRANT ALL PRIVILEGES ON *.* TO '` + AdminUser + `'@'%' WITH GRANT OPTION;
CREATE USER '` + AdminUser + `'@'localhost' IDENTIFIED BY '` + AdminPassword + `';
GRANT ALL PRIVILEGES ON *.* TO '` + AdminUser + `'@'localhost' WITH GRANT OPTION;
CREATE USER '` + ReplUser + `'@'%' IDENTIFIED BY '` + ReplPassword + `';
GRANT REPLICATION SLAVE, REPLICATION CLIENT, SLAVE MONITOR ON *.* TO '` + ReplUser + `'@'%';
CREATE DATABASE ` + TestDB + `;
CREATE USER '` + AppUser + `'@'%' IDENTIFIED BY '` + AppPassword + `';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX ON ` + TestDB + `.* TO '` + AppUser + `'@'%';
`

// ensureTemplate returns the cached template data directory for the
// installed mariadbd, making it first when needed. The cache lives in a
// per-user directory under os.TempDir, keyed by `mariadbd --version`; it is
// built in a scratch directory and renamed into place, so concurrent test
// processes never see a half-made template.
func ensureTemplate(ctx context.Context, log *slog.Logger) (string, error) {
	mariadbd, err := findBinary("mariadbd")
	if err != nil {
		return "", err
	}
	out, err := exec.CommandContext(ctx, mariadbd, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("sandbox: %s --version: %w", mariadbd, err)
	}
	sum := sha256.Sum256([]byte(templateRevision + "\x00" + mariadbd + "\x00" + string(out)))
	cache := filepath.Join(os.TempDir(), fmt.Sprintf("quorumha-sandbox-%d", os.Getuid()))
	final := filepath.Join(cache, "template-"+hex.EncodeToString(sum[:8]))
	if _, err := os.Stat(filepath.Join(final, "mysql")); err == nil {
		return final, nil
	}
	if err := os.MkdirAll(cache, 0o700); err != nil {
		return "", fmt.Errorf("sandbox: template cache: %w", err)
	}
	scratch, err := os.MkdirTemp(cache, "building-")
	if err != nil {
		return "", fmt.Errorf("sandbox: template cache: %w", err)
	}
	defer func() { _ = os.RemoveAll(scratch) }() // no-op after a successful rename
	begin := time.Now()
	if err := installDB(ctx, scratch); err != nil {
		return "", err
	}
	if err := os.Rename(filepath.Join(scratch, "data"), final); err != nil {
		// Another process may have won the race; its template is as good as ours.
		if _, statErr := os.Stat(filepath.Join(final, "mysql")); statErr == nil {
			return final, nil
		}
		return "", fmt.Errorf("sandbox: template cache: %w", err)
	}
	log.Info("made template datadir", "path", final, "took", time.Since(begin).Round(time.Millisecond))
	return final, nil
}

// installDB runs mariadb-install-db into scratch/data.
func installDB(ctx context.Context, scratch string) error {
	installer, err := findBinary("mariadb-install-db")
	if err != nil {
		return err
	}
	sqlFile := filepath.Join(scratch, "setup.sql")
	if err := os.WriteFile(sqlFile, []byte(templateSQL), 0o600); err != nil {
		return fmt.Errorf("sandbox: template: %w", err)
	}
	args := []string{
		"--no-defaults",
		"--datadir=" + filepath.Join(scratch, "data"),
		"--basedir=/usr",
		"--auth-root-authentication-method=socket",
		"--skip-test-db",
		"--extra-file=" + sqlFile,
		"--innodb-log-file-size=16M",
		"--innodb-buffer-pool-size=32M",
	}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	cmd := exec.CommandContext(ctx, installer, args...)
	cmd.Dir = scratch
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("sandbox: mariadb-install-db: %w: %s", err, tail(string(out), 20))
	}
	return nil
}

// copyDir copies the template into dst (which must not exist).
func copyDir(ctx context.Context, src, dst string) error {
	out, err := exec.CommandContext(ctx, "cp", "-a", "--reflink=auto", src, dst).CombinedOutput()
	if err != nil {
		return fmt.Errorf("sandbox: copy template to %s: %w: %s", dst, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// tailFile returns the last n lines of the file at path, or a note saying
// why it could not be read.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "(no " + path + ")"
		}
		return "(" + err.Error() + ")"
	}
	return tail(string(b), n)
}
