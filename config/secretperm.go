package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
)

// ErrSecretPerm means a secret file (password_file, repl_password_file,
// api.token_file, api.read_token_file, node.gossip_key_file, a TLS private
// key, or a config file with an inline password) can be read by its group
// or by other users. A controller refuses to start with one: the file holds
// credentials with administrative rights on every database it protects.
var ErrSecretPerm = errors.New("secret file readable by group or others")

// secretPermMask are the permission bits a secret file must not have: any
// access for its group or for others.
const secretPermMask fs.FileMode = 0o077

// checkSecretPerm returns an error naming the file and its mode when path is
// readable (or writable, or executable) by group or others, so an operator
// sees "chmod 600" is the fix. Symbolic links are followed: what counts is
// the file the controller would read. A file that cannot be stat'ed is not
// reported here; reading it reports that. Windows has no such mode bits and
// is not checked.
func checkSecretPerm(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil
	}
	if perm := fi.Mode().Perm(); perm&secretPermMask != 0 {
		return fmt.Errorf("%w: mode %#o allows group/other access; run chmod 600 %s (or 400) and make it owned by the user quorumha runs as",
			ErrSecretPerm, perm, path)
	}
	return nil
}

// checkGossipKeyPerm reports a group- or world-readable node.gossip_key_file
// into p. A missing file is left to ValidateForRun, which requires it only
// for run.
func (l *loader) checkGossipKeyPerm(path string) {
	if path == "" {
		return
	}
	if err := checkSecretPerm(path); err != nil {
		l.p.addIn(l.fileOf("node.gossip_key_file"), "node.gossip_key_file", path, ErrSecretPerm, "%v", err)
	}
}

// checkKeyPerm reports a group- or world-readable private key file (TLS)
// into p. A missing file is left to ValidateForRun, which loads the key.
func (l *loader) checkKeyPerm(key, path string) {
	if path == "" {
		return
	}
	if err := checkSecretPerm(path); err != nil {
		l.p.addIn(l.fileOf(key), key, path, ErrSecretPerm, "%v", err)
	}
}

// markInlineSecrets records, before environment overrides apply, which
// cluster passwords are written in the config file itself: that file is
// then as sensitive as a password file (see Config.validateInlineSecrets).
func markInlineSecrets(cfg *Config) {
	for i := range cfg.Clusters {
		cl := &cfg.Clusters[i]
		cl.InlineSecrets = nil
		if cl.Password != "" {
			cl.InlineSecrets = append(cl.InlineSecrets, "password")
		}
		if cl.ReplPassword != "" {
			cl.InlineSecrets = append(cl.InlineSecrets, "repl_password")
		}
	}
}

// fileSentinel classifies an error from readSecretFile: ErrSecretPerm for
// loose permissions, ErrFile for anything else.
func fileSentinel(err error) error {
	if errors.Is(err, ErrSecretPerm) {
		return ErrSecretPerm
	}
	return ErrFile
}
