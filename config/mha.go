package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MHAFile is a parsed MHA application config (or MHA's global
// /etc/masterha_default.cnf): INI sections as written, before any mapping.
type MHAFile struct {
	// File is the path, used in errors and warnings.
	File string
	// Default is the [server default] section, nil when absent.
	Default *MHASection
	// Servers are the [server...] sections in file order.
	Servers []MHASection
	// Binlogs are [binlog...] sections (MHA binlog servers), kept only to
	// warn that they are not used.
	Binlogs []MHASection
}

// MHASection is one INI section.
type MHASection struct {
	// Name is the section name as written, e.g. "server1".
	Name string
	// Line is where the section header is.
	Line int
	// Params are the key=value lines in order.
	Params []MHAParam
}

// MHAParam is one key=value line.
type MHAParam struct {
	// Key is the name left of '='.
	Key string
	// Value is the trimmed text right of '='.
	Value string
	// Line is the 1-based line number.
	Line int
}

// Get returns the last value set for key in the section (MHA's parser also
// lets a later line win).
func (s *MHASection) Get(key string) (MHAParam, bool) {
	if s == nil {
		return MHAParam{}, false
	}
	for i := len(s.Params) - 1; i >= 0; i-- {
		if s.Params[i].Key == key {
			return s.Params[i], true
		}
	}
	return MHAParam{}, false
}

// maxMHALine bounds one line; a .cnf line longer than this is not a config.
const maxMHALine = 64 * 1024

// ParseMHA parses MHA's INI dialect (that of Perl's Config::Tiny): blank
// lines and lines starting with '#' or ';' are skipped, "[name]" starts a
// section, "key = value" sets a key (no inline comments). Sections are
// "server default", "server..." and "binlog..."; anything else, a key before
// any section, or a line of another shape is an error naming file and line.
func ParseMHA(r io.Reader, file string) (*MHAFile, error) {
	f := &MHAFile{File: file}
	var cur *MHASection
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxMHALine)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		if lineNo == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			if !strings.HasSuffix(line, "]") {
				return nil, syntaxErr(file, lineNo, "", line, "unterminated section header")
			}
			name := strings.TrimSpace(line[1 : len(line)-1])
			sec := MHASection{Name: name, Line: lineNo}
			switch {
			case name == "server default":
				if f.Default != nil {
					return nil, syntaxErr(file, lineNo, "", line, "second [server default] section (first at line %d)", f.Default.Line)
				}
				f.Default = &sec
				cur = f.Default
			case strings.HasPrefix(name, "server"):
				for _, s := range f.Servers {
					if s.Name == name {
						return nil, syntaxErr(file, lineNo, "", line, "duplicate section (first at line %d)", s.Line)
					}
				}
				f.Servers = append(f.Servers, sec)
				cur = &f.Servers[len(f.Servers)-1]
			case strings.HasPrefix(name, "binlog"):
				f.Binlogs = append(f.Binlogs, sec)
				cur = &f.Binlogs[len(f.Binlogs)-1]
			default:
				return nil, syntaxErr(file, lineNo, "", line, "unknown section (want [server default], [serverN] or [binlogN])")
			}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if !ok || key == "" {
			return nil, syntaxErr(file, lineNo, "", line, "expected key=value")
		}
		if cur == nil {
			return nil, syntaxErr(file, lineNo, key, "", "key outside of any section")
		}
		cur.Params = append(cur.Params, MHAParam{Key: key, Value: value, Line: lineNo})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, syntaxErr(file, lineNo+1, "", "", "line longer than %d bytes", maxMHALine)
		}
		return nil, &FieldError{File: file, Message: err.Error(), Err: ErrFile}
	}
	return f, nil
}

func syntaxErr(file string, line int, key, value, format string, args ...any) error {
	return &FieldError{File: fmt.Sprintf("%s:%d", file, line), Key: key, Value: value,
		Message: fmt.Sprintf(format, args...), Err: ErrSyntax}
}

// ImportMHA maps one MHA application config to a Cluster named name.
// Values are inherited as MHA does: [serverN] > [server default] > the
// defaults file's [server default] > built-in. Keys quorumha has no use for
// give a Warning saying what replaces them; keys MHA does not know are
// errors, as in MHA. All problems are returned joined.
func ImportMHA(f *MHAFile, defaults *MHAFile, name string) (Cluster, []Warning, error) {
	im := &mhaImporter{f: f, p: &problems{}}
	if defaults != nil {
		im.chain = append(im.chain, defaults.Default)
		im.files = append(im.files, defaults.File)
		im.checkSection(defaults.File, defaults.Default, true)
	}
	im.chain = append(im.chain, f.Default)
	im.files = append(im.files, f.File)
	im.checkSection(f.File, f.Default, true)
	for i := range f.Servers {
		im.checkSection(f.File, &f.Servers[i], false)
	}
	for _, b := range f.Binlogs {
		im.warn(f.File, b.Line, "["+b.Name+"]", "", "MHA binlog servers are not used; replicas catch up from the most advanced replica")
	}
	if len(f.Servers) == 0 {
		im.p.addIn(f.File, "", "", ErrMissing, "no [serverN] sections: an MHA config needs at least one server")
		return Cluster{}, im.warnings, im.p.err()
	}

	cl := Cluster{Name: name, Source: f.File, ReplicationMode: ReplicationGTID}
	for i := range f.Servers {
		if in, ok := im.instance(&f.Servers[i]); ok {
			cl.Instances = append(cl.Instances, in)
		}
	}
	str := func(key string) string { return im.clusterValue(key) }
	cl.User = str("user")
	cl.Password = Secret(str("password"))
	cl.ReplUser = str("repl_user")
	cl.ReplPassword = Secret(str("repl_password"))
	cl.SSHUser = str("ssh_user")
	cl.MasterBinlogDir = str("master_binlog_dir")
	cl.Hooks = Hooks{
		IPFailover:     str("master_ip_failover_script"),
		IPOnlineChange: str("master_ip_online_change_script"),
		Shutdown:       str("shutdown_script"),
		Report:         str("report_script"),
	}
	if v := str("use_gtid_auto_pos"); v != "" {
		on, ok := parseMHABool(v)
		switch {
		case !ok:
			im.p.addIn(f.File, "use_gtid_auto_pos", v, ErrInvalidValue, "must be 0 or 1")
		case !on:
			cl.ReplicationMode = ReplicationFile
		}
	}
	if err := im.p.err(); err != nil {
		return Cluster{}, im.warnings, err
	}
	return cl, im.warnings, nil
}

// mhaImporter carries one ImportMHA call.
type mhaImporter struct {
	f        *MHAFile
	chain    []*MHASection // defaults file's, then the app's [server default]
	files    []string      // file of each chain entry
	p        *problems
	warnings []Warning
}

func (im *mhaImporter) warn(file string, line int, key, value, msg string) {
	im.warnings = append(im.warnings, Warning{File: fmt.Sprintf("%s:%d", file, line), Key: key, Value: value, Message: msg})
}

// checkSection refuses unknown keys and warns about keys without meaning
// here, once per line where they appear.
func (im *mhaImporter) checkSection(file string, s *MHASection, isDefault bool) {
	if s == nil {
		return
	}
	for _, prm := range s.Params {
		key := fmt.Sprintf("[%s] %s", s.Name, prm.Key)
		loc := fmt.Sprintf("%s:%d", file, prm.Line)
		value := prm.Value
		if prm.Key == "password" || prm.Key == "repl_password" {
			value = Secret(value).String()
		}
		k, known := mhaKeys()[prm.Key]
		switch {
		case !known:
			msg := "unknown MHA parameter"
			if hint, ok := mhaCLIOptions()[prm.Key]; ok {
				msg += "; " + hint
			}
			im.p.addIn(loc, key, value, ErrUnknownKey, "%s", msg)
		case isDefault && k.perServer:
			im.warn(file, prm.Line, key, value, "per-server parameter in [server default]; ignored (MHA reads it only in [serverN])")
		case prm.Key == "ping_interval":
			im.warn(file, prm.Line, key, value, fmt.Sprintf("MHA pinged every %ss here; %s", prm.Value, k.note))
		case k.note != "":
			im.warn(file, prm.Line, key, value, k.note)
		}
	}
}

// lookup resolves key for a server through the inheritance chain.
func (im *mhaImporter) lookup(s *MHASection, key string) (MHAParam, string, bool) {
	if p, ok := s.Get(key); ok {
		return p, im.f.File, true
	}
	for i := len(im.chain) - 1; i >= 0; i-- {
		if p, ok := im.chain[i].Get(key); ok {
			return p, im.files[i], true
		}
	}
	if def, ok := mhaKeys()[key]; ok && def.builtin != "" {
		return MHAParam{Key: key, Value: def.builtin}, "", true
	}
	return MHAParam{}, "", false
}

// clusterValue returns a cluster-wide value: the first server's effective
// value. MHA allows a different user or hook per server; quorumha has one
// per cluster, so servers that differ are warned about.
func (im *mhaImporter) clusterValue(key string) string {
	first, _, _ := im.lookup(&im.f.Servers[0], key)
	for i := 1; i < len(im.f.Servers); i++ {
		s := &im.f.Servers[i]
		if p, _, _ := im.lookup(s, key); p.Value != first.Value {
			value := p.Value
			if key == "password" || key == "repl_password" {
				value = Secret(value).String()
			}
			im.warn(im.f.File, p.Line, fmt.Sprintf("[%s] %s", s.Name, key), value,
				fmt.Sprintf("differs from [%s]; quorumha uses one value per cluster, the first server's", im.f.Servers[0].Name))
		}
	}
	return first.Value
}

// instance builds one Instance from a [serverN] section.
func (im *mhaImporter) instance(s *MHASection) (Instance, bool) {
	file := fmt.Sprintf("%s:%d", im.f.File, s.Line)
	host, ok := s.Get("hostname")
	if !ok || host.Value == "" {
		im.p.addIn(file, "["+s.Name+"] hostname", "", ErrMissing, "every [serverN] section needs a hostname")
		return Instance{}, false
	}
	port, _, _ := im.lookup(s, "port")
	in := Instance{Address: joinHostPort(host.Value, port.Value)}
	if err := checkHostPort(in.Address); err != nil {
		im.p.addIn(file, "["+s.Name+"] port", port.Value, ErrInvalidValue, "%s", msgOf(err))
	}
	flags := []struct {
		key      string
		dst      *bool
		inherits bool
	}{
		{"candidate_master", &in.CandidateMaster, false},
		{"no_master", &in.NoMaster, false},
		{"ignore_fail", &in.IgnoreFail, false},
	}
	for _, fl := range flags {
		if p, ok := s.Get(fl.key); ok {
			b, ok := parseMHABool(p.Value)
			if !ok {
				im.p.addIn(fmt.Sprintf("%s:%d", im.f.File, p.Line), "["+s.Name+"] "+fl.key, p.Value, ErrInvalidValue, "must be 0 or 1")
			}
			*fl.dst = b
		}
	}
	if p, pfile, ok := im.lookup(s, "check_repl_delay"); ok && pfile != "" {
		b, ok := parseMHABool(p.Value)
		if !ok {
			im.p.addIn(fmt.Sprintf("%s:%d", pfile, p.Line), "["+s.Name+"] check_repl_delay", p.Value, ErrInvalidValue, "must be 0 or 1")
		}
		in.CheckReplDelay = &b
	}
	return in, true
}

// joinHostPort is net.JoinHostPort without re-bracketing an already
// bracketed IPv6 host.
func joinHostPort(host, port string) string {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}

// parseMHABool accepts MHA's 0/1 (and, leniently, yes/no, true/false,
// on/off); ok is false for anything else.
func parseMHABool(s string) (value, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "yes", "true", "on":
		return true, true
	case "0", "no", "false", "off":
		return false, true
	}
	return false, false
}
