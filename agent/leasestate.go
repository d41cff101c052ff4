package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// loadLeaseState reads agent.fence.state_file; a missing file is the
// state of an agent never armed. A file that does not parse is an error:
// guessing "unarmed" could leave a fenced master writable.
func loadLeaseState(path string) (persistedLease, error) {
	var st persistedLease
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("fence state_file %s: %w", path, err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("fence state_file %s: %w (fix or remove it: removing it means never armed)", path, err)
	}
	return st, nil
}

// saveLeaseState writes the state atomically: a temporary file in the same
// directory, fsynced, renamed over the old one, and the directory fsynced,
// so a crash leaves the old state or the new one, never a torn file.
func saveLeaseState(path string, st persistedLease) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("fence state_file %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("fence state_file %s: %w", path, err)
	}
	name := tmp.Name()
	defer func() { _ = os.Remove(name) }() // a no-op once renamed
	_, err = tmp.Write(append(data, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, path)
	}
	if err != nil {
		return fmt.Errorf("fence state_file %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fence state_file %s: sync directory: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fence state_file %s: sync directory: %w", path, err)
	}
	return nil
}
