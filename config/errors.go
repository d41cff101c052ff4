package config

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every problem Load or Validate reports is a *FieldError
// wrapping one of these, so callers can classify problems with errors.Is
// while operators read the file, key and value in the message.
var (
	// ErrUnknownKey means a key the schema (or MHA) does not know; typos
	// must not be silently ignored in an HA controller's config.
	ErrUnknownKey = errors.New("unknown key")
	// ErrInvalidValue means a value that does not parse or is out of range.
	ErrInvalidValue = errors.New("invalid value")
	// ErrMissing means a required key is not set.
	ErrMissing = errors.New("required")
	// ErrDuplicate means a value that must be unique appears twice.
	ErrDuplicate = errors.New("duplicate")
	// ErrConflict means two keys that exclude each other are both set.
	ErrConflict = errors.New("conflicting keys")
	// ErrFile means a file the config refers to cannot be used.
	ErrFile = errors.New("file problem")
	// ErrSyntax means the config file itself does not parse.
	ErrSyntax = errors.New("syntax error")
	// ErrFormat means the file extension is not a supported config format.
	ErrFormat = errors.New("unsupported config format")
	// ErrInsecure means run would expose the controller without
	// authentication or encryption where others can reach it; an explicit
	// insecure_* key accepts the risk.
	ErrInsecure = errors.New("insecure setting refused")
)

// FieldError is one configuration problem: where it is (file and key), the
// offending value, and what is wrong. Its message is one line:
//
//	config.yaml: detector.probe_interval: "3x": invalid duration
type FieldError struct {
	// File is the config file (or environment variable) the value came from.
	File string
	// Key is the dotted key path, e.g. clusters[0].instances[1].address.
	Key string
	// Value is the offending value as written ("" when missing or secret).
	Value string
	// Message says what is wrong, in words.
	Message string
	// Err is the sentinel classifying the problem.
	Err error
}

// Error formats the problem as "file: key: "value": message".
func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	if e.Value != "" {
		fmt.Fprintf(&b, "%q: ", e.Value)
	}
	msg := e.Message
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	b.WriteString(msg)
	return b.String()
}

// Unwrap returns the sentinel so errors.Is works.
func (e *FieldError) Unwrap() error { return e.Err }

// Warning is a non-fatal remark about a config, mostly MHA keys that are
// accepted but have no meaning in quorumha. check-config prints them; run
// logs them.
type Warning struct {
	// File is the config file the key was read from.
	File string `json:"file"`
	// Key is the key, e.g. "[server default] manager_log" for MHA files.
	Key string `json:"key"`
	// Value is the value as written ("****" for secrets).
	Value string `json:"value,omitempty"`
	// Message explains the warning and what replaces the key, if anything.
	Message string `json:"message"`
}

// String formats the warning like a FieldError: "file: key: "value": message".
func (w Warning) String() string {
	fe := FieldError{File: w.File, Key: w.Key, Value: w.Value, Message: w.Message}
	return fe.Error()
}

// problems collects FieldErrors so validation reports every problem, not
// only the first.
type problems struct {
	file string
	errs []error
}

func (p *problems) add(key, value string, sentinel error, format string, args ...any) {
	p.errs = append(p.errs, &FieldError{
		File: p.file, Key: key, Value: value,
		Message: fmt.Sprintf(format, args...), Err: sentinel,
	})
}

func (p *problems) addIn(file, key, value string, sentinel error, format string, args ...any) {
	p.errs = append(p.errs, &FieldError{
		File: file, Key: key, Value: value,
		Message: fmt.Sprintf(format, args...), Err: sentinel,
	})
}

func (p *problems) err() error { return errors.Join(p.errs...) }

// Problems splits an error returned by Load or Validate into its individual
// problems (one per line), for printing or counting.
func Problems(err error) []error {
	if err == nil {
		return nil
	}
	var out []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, inner := range j.Unwrap() {
				walk(inner)
			}
			return
		}
		out = append(out, e)
	}
	walk(err)
	return out
}
