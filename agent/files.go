package agent

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// binlogDir is read-only access to the binlog directory. Every file is
// opened through an os.Root, so neither "..", nor an absolute name, nor a
// symbolic link pointing outside the directory can reach another file:
// the agent serves binlogs and nothing else.
type binlogDir struct {
	// dir is the directory with symbolic links resolved.
	dir string
	// index is the binlog index file (mysql-bin.index).
	index string
	log   *slog.Logger
}

// newBinlogDir checks dir and picks the index: the one given, or the single
// *.index file in dir.
func newBinlogDir(dir, index string, log *slog.Logger) (*binlogDir, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("binlog dir %s: %w", dir, err)
	}
	// Absolute, so index entries (absolute paths) compare with it and the
	// answer of /v1/binlogs names it unambiguously.
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("binlog dir %s: %w", dir, err)
	}
	st, err := os.Stat(real)
	if err != nil {
		return nil, fmt.Errorf("binlog dir %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("binlog dir %s: not a directory", dir)
	}
	if index == "" {
		matches, err := filepath.Glob(filepath.Join(real, "*.index"))
		if err != nil {
			return nil, fmt.Errorf("binlog dir %s: %w", dir, err)
		}
		if len(matches) != 1 {
			return nil, fmt.Errorf("binlog dir %s: want exactly one *.index file, found %d %v: set the binlog index", dir, len(matches), matches)
		}
		index = matches[0]
	}
	if index, err = filepath.Abs(index); err != nil {
		return nil, fmt.Errorf("binlog index %s: %w", index, err)
	}
	if _, err := os.Stat(index); err != nil {
		return nil, fmt.Errorf("binlog index %s: %w", index, err)
	}
	return &binlogDir{dir: real, index: index, log: log}, nil
}

// names returns the binlog file names of the index, oldest first. Entries
// are written by the server as "./mysql-bin.000001" (relative to its
// datadir, where the index lives) or as absolute paths; either way the
// file must be in the binlog directory. An entry elsewhere is left out
// (and logged): it is not served, and it must not stop the agent from
// serving the others during a failover.
func (d *binlogDir) names() ([]string, error) {
	f, err := os.Open(d.index)
	if err != nil {
		return nil, fmt.Errorf("binlog index: %w", err)
	}
	defer f.Close()
	var out []string
	// Every entry normally names the same directory: resolve it once.
	resolved := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		p := line
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(d.index), p)
		}
		parent, ok := resolved[filepath.Dir(p)]
		if !ok {
			parent, _ = filepath.EvalSymlinks(filepath.Dir(p)) // "" when it fails: refused below
			resolved[filepath.Dir(p)] = parent
		}
		if parent != d.dir {
			d.log.Warn("binlog index entry outside the binlog dir; not served", "index", d.index, "entry", line, "binlog_dir", d.dir)
			continue
		}
		out = append(out, filepath.Base(p))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("binlog index %s: %w", d.index, err)
	}
	return out, nil
}

// list returns the index's files with their sizes. A file the index names
// but that is gone was purged between the two reads and is left out.
func (d *binlogDir) list() ([]FileInfo, error) {
	names, err := d.names()
	if err != nil {
		return nil, err
	}
	out := make([]FileInfo, 0, len(names))
	for _, n := range names {
		f, err := d.open(n)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		st, err := f.Stat()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("binlog %s: %w", n, err)
		}
		out = append(out, FileInfo{Name: n, Size: st.Size()})
	}
	return out, nil
}

// checkName refuses anything but a plain file name before it gets near the
// file system.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`+"\x00") || strings.Contains(name, "..") {
		return fmt.Errorf("%w: binlog name %q must be a plain file name from the index", ErrBadRequest, name)
	}
	return nil
}

// openListed opens a binlog that the index lists.
func (d *binlogDir) openListed(name string) (*os.File, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	names, err := d.names()
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if n == name {
			return d.open(name)
		}
	}
	return nil, fmt.Errorf("%w: binlog %q is not in the index %s", ErrNotFound, name, d.index)
}

// open opens name inside the binlog directory; os.Root refuses to follow
// a path or link out of it.
func (d *binlogDir) open(name string) (*os.File, error) {
	root, err := os.OpenRoot(d.dir)
	if err != nil {
		return nil, fmt.Errorf("binlog dir %s: %w", d.dir, err)
	}
	defer root.Close()
	f, err := root.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: binlog %q does not exist in %s", ErrNotFound, name, d.dir)
	}
	if err != nil {
		// os.Root reports a link out of the directory as a path error;
		// the client learns only that there is no such binlog.
		return nil, fmt.Errorf("%w: binlog %q cannot be opened in %s: %v", ErrNotFound, name, d.dir, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("binlog %s: %w", name, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: binlog %q is not a regular file", ErrNotFound, name)
	}
	return f, nil
}

// newest returns the last file of the index.
func (d *binlogDir) newest() (string, error) {
	names, err := d.names()
	if err != nil {
		return "", err
	}
	if len(names) == 0 {
		return "", fmt.Errorf("%w: the binlog index %s is empty", ErrNotFound, d.index)
	}
	return names[len(names)-1], nil
}
