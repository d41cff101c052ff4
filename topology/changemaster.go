package topology

import (
	"fmt"
	"strconv"
	"strings"
)

// MariaDBGTIDMode is MariaDB's MASTER_USE_GTID value.
type MariaDBGTIDMode string

// MariaDB GTID modes. SlavePos is the default: it resumes from what the
// replica applied from its master, ignoring local writes; CurrentPos also
// counts the replica's own binlog, which is right for an old master rejoining
// but fails on errant local transactions.
const (
	GTIDSlavePos   MariaDBGTIDMode = "slave_pos"
	GTIDCurrentPos MariaDBGTIDMode = "current_pos"
)

// ChangeMasterOptions says where a replica should replicate from. Password is
// a secret: String() redacts it and no error or log line carries it.
type ChangeMasterOptions struct {
	Host string
	Port int
	// User and Password are the replication account. With User empty the
	// statement names neither, so the replica keeps the credentials it has
	// (CHANGE MASTER keeps every option it is not given); an empty
	// MASTER_PASSWORD would instead replace a working password with none.
	User     string
	Password string
	// UseGTID selects GTID positioning: MySQL SOURCE_AUTO_POSITION=1, MariaDB
	// MASTER_USE_GTID=MariaDBMode (slave_pos when empty). When false, File and
	// Pos are required.
	UseGTID     bool
	MariaDBMode MariaDBGTIDMode
	File        string
	Pos         uint64
	// ConnectRetry is seconds between reconnect attempts; 0 leaves the server's.
	ConnectRetry int
	// HeartbeatPeriod in seconds; 0 leaves the server's.
	HeartbeatPeriod float64
	// GetSourcePublicKey asks MySQL 8 to fetch the RSA key for
	// caching_sha2_password over a non-TLS link; ignored on MariaDB.
	GetSourcePublicKey bool
}

// String describes the options without the password, for logs and errors.
func (o ChangeMasterOptions) String() string {
	pos := "gtid"
	if !o.UseGTID {
		pos = fmt.Sprintf("%s:%d", o.File, o.Pos)
	}
	return fmt.Sprintf("%s:%d user=%s password=<redacted> pos=%s", o.Host, o.Port, o.User, pos)
}

// Validate checks the options are consistent before any SQL is built.
func (o ChangeMasterOptions) Validate() error {
	switch {
	case o.Host == "":
		return fmt.Errorf("%w: change master: empty host", ErrBadOptions)
	case o.Port <= 0 || o.Port > 65535:
		return fmt.Errorf("%w: change master: port %d", ErrBadOptions, o.Port)
	case o.UseGTID && o.File != "":
		return fmt.Errorf("%w: change master: both GTID and file %q given", ErrBadOptions, o.File)
	case !o.UseGTID && (o.File == "" || o.Pos == 0):
		return fmt.Errorf("%w: change master: file/pos replication needs File and Pos", ErrBadOptions)
	case o.User == "" && o.Password != "":
		return fmt.Errorf("%w: change master: a password without a user", ErrBadOptions)
	case o.MariaDBMode != "" && o.MariaDBMode != GTIDSlavePos && o.MariaDBMode != GTIDCurrentPos:
		return fmt.Errorf("%w: change master: MASTER_USE_GTID=%q", ErrBadOptions, o.MariaDBMode)
	}
	return nil
}

// ChangeMasterSQL builds CHANGE MASTER TO (MariaDB, MySQL < 8.0.23) or CHANGE
// REPLICATION SOURCE TO (MySQL 8.0.23+, the only form in 8.4). Every string
// is quoted by quoteString; the result contains the password, so callers must
// never log it.
func (v Version) ChangeMasterSQL(o ChangeMasterOptions) (string, error) {
	if err := o.Validate(); err != nil {
		return "", err
	}
	newTerms := v.Flavor == MySQL && v.AtLeast(8, 0, 23)
	kw := func(old, renamed string) string {
		if newTerms {
			return renamed
		}
		return old
	}
	var parts []string
	add := func(k, val string) { parts = append(parts, k+" = "+val) }
	add(kw("MASTER_HOST", "SOURCE_HOST"), quoteString(o.Host))
	add(kw("MASTER_PORT", "SOURCE_PORT"), strconv.Itoa(o.Port))
	if o.User != "" {
		add(kw("MASTER_USER", "SOURCE_USER"), quoteString(o.User))
		add(kw("MASTER_PASSWORD", "SOURCE_PASSWORD"), quoteString(o.Password))
	}
	if o.ConnectRetry > 0 {
		add(kw("MASTER_CONNECT_RETRY", "SOURCE_CONNECT_RETRY"), strconv.Itoa(o.ConnectRetry))
	}
	if o.HeartbeatPeriod > 0 {
		add(kw("MASTER_HEARTBEAT_PERIOD", "SOURCE_HEARTBEAT_PERIOD"),
			strconv.FormatFloat(o.HeartbeatPeriod, 'f', -1, 64))
	}
	if v.Flavor == MariaDB {
		if o.UseGTID {
			mode := o.MariaDBMode
			if mode == "" {
				mode = GTIDSlavePos
			}
			add("MASTER_USE_GTID", string(mode))
		} else {
			add("MASTER_USE_GTID", "no")
		}
	} else {
		auto := "0"
		if o.UseGTID {
			auto = "1"
		}
		add(kw("MASTER_AUTO_POSITION", "SOURCE_AUTO_POSITION"), auto)
		if o.GetSourcePublicKey && v.AtLeast(8, 0, 0) {
			add(kw("GET_MASTER_PUBLIC_KEY", "GET_SOURCE_PUBLIC_KEY"), "1")
		}
	}
	if !o.UseGTID {
		add(kw("MASTER_LOG_FILE", "SOURCE_LOG_FILE"), quoteString(o.File))
		add(kw("MASTER_LOG_POS", "SOURCE_LOG_POS"), strconv.FormatUint(o.Pos, 10))
	}
	return kw("CHANGE MASTER TO ", "CHANGE REPLICATION SOURCE TO ") + strings.Join(parts, ", "), nil
}

// quoteString returns s as a single-quoted SQL string literal. It escapes the
// way mysql_real_escape_string does; this is correct because Conn pins the
// session sql_mode without NO_BACKSLASH_ESCAPES (see Open). Statements such as
// CHANGE MASTER TO cannot take placeholders, hence the need.
func quoteString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case 0:
			b.WriteString(`\0`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		case '"':
			b.WriteString(`\"`)
		case 0x1a:
			b.WriteString(`\Z`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}
