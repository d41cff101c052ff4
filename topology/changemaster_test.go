package topology

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

func TestChangeMasterSQL_Dialects(t *testing.T) {
	base := ChangeMasterOptions{Host: "10.0.0.5", Port: 3306, User: "repl", Password: "s3cret"}
	gtid := base
	gtid.UseGTID = true
	gtid.ConnectRetry = 5
	file := base
	file.File, file.Pos = "mysql-bin.000010", 4
	cur := gtid
	cur.MariaDBMode = GTIDCurrentPos
	pk := gtid
	pk.GetSourcePublicKey = true
	// No repl_user configured: the replica keeps its own account.
	keep := gtid
	keep.User, keep.Password = "", ""
	tests := []struct {
		name, version string
		opts          ChangeMasterOptions
		want          string
	}{
		{"mariadb gtid", "10.11.19-MariaDB", gtid,
			"CHANGE MASTER TO MASTER_HOST = '10.0.0.5', MASTER_PORT = 3306, MASTER_USER = 'repl', MASTER_PASSWORD = 's3cret', MASTER_CONNECT_RETRY = 5, MASTER_USE_GTID = slave_pos"},
		{"mariadb current_pos", "10.11.19-MariaDB", cur,
			"CHANGE MASTER TO MASTER_HOST = '10.0.0.5', MASTER_PORT = 3306, MASTER_USER = 'repl', MASTER_PASSWORD = 's3cret', MASTER_CONNECT_RETRY = 5, MASTER_USE_GTID = current_pos"},
		{"mariadb file", "10.11.19-MariaDB", file,
			"CHANGE MASTER TO MASTER_HOST = '10.0.0.5', MASTER_PORT = 3306, MASTER_USER = 'repl', MASTER_PASSWORD = 's3cret', MASTER_USE_GTID = no, MASTER_LOG_FILE = 'mysql-bin.000010', MASTER_LOG_POS = 4"},
		{"mysql 5.7 gtid", "5.7.44-log", gtid,
			"CHANGE MASTER TO MASTER_HOST = '10.0.0.5', MASTER_PORT = 3306, MASTER_USER = 'repl', MASTER_PASSWORD = 's3cret', MASTER_CONNECT_RETRY = 5, MASTER_AUTO_POSITION = 1"},
		{"mysql 8.0.22 file", "8.0.22", file,
			"CHANGE MASTER TO MASTER_HOST = '10.0.0.5', MASTER_PORT = 3306, MASTER_USER = 'repl', MASTER_PASSWORD = 's3cret', MASTER_AUTO_POSITION = 0, MASTER_LOG_FILE = 'mysql-bin.000010', MASTER_LOG_POS = 4"},
		{"mysql 8.0.36 gtid", "8.0.36", pk,
			"CHANGE REPLICATION SOURCE TO SOURCE_HOST = '10.0.0.5', SOURCE_PORT = 3306, SOURCE_USER = 'repl', SOURCE_PASSWORD = 's3cret', SOURCE_CONNECT_RETRY = 5, SOURCE_AUTO_POSITION = 1, GET_SOURCE_PUBLIC_KEY = 1"},
		{"mariadb, no account: keeps the replica's", "10.11.19-MariaDB", keep,
			"CHANGE MASTER TO MASTER_HOST = '10.0.0.5', MASTER_PORT = 3306, MASTER_CONNECT_RETRY = 5, MASTER_USE_GTID = slave_pos"},
		{"mysql 8.0.36, no account: keeps the replica's", "8.0.36", keep,
			"CHANGE REPLICATION SOURCE TO SOURCE_HOST = '10.0.0.5', SOURCE_PORT = 3306, SOURCE_CONNECT_RETRY = 5, SOURCE_AUTO_POSITION = 1"},
		{"mysql 8.4 file", "8.4.0", file,
			"CHANGE REPLICATION SOURCE TO SOURCE_HOST = '10.0.0.5', SOURCE_PORT = 3306, SOURCE_USER = 'repl', SOURCE_PASSWORD = 's3cret', SOURCE_AUTO_POSITION = 0, SOURCE_LOG_FILE = 'mysql-bin.000010', SOURCE_LOG_POS = 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mustVersion(t, tt.version).ChangeMasterSQL(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got\n %s\nwant\n %s", got, tt.want)
			}
		})
	}
}

func TestChangeMasterSQL_Invalid(t *testing.T) {
	tests := []struct {
		name string
		opts ChangeMasterOptions
	}{
		{"no host", ChangeMasterOptions{Port: 3306, UseGTID: true}},
		{"bad port", ChangeMasterOptions{Host: "h", Port: 70000, UseGTID: true}},
		{"gtid and file", ChangeMasterOptions{Host: "h", Port: 1, UseGTID: true, File: "b.000001", Pos: 4}},
		{"file without pos", ChangeMasterOptions{Host: "h", Port: 1, File: "b.000001"}},
		{"password without user", ChangeMasterOptions{Host: "h", Port: 1, UseGTID: true, Password: "x"}},
		{"bad mariadb mode", ChangeMasterOptions{Host: "h", Port: 1, UseGTID: true, MariaDBMode: "own_pos"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mustVersion(t, "10.11.1-MariaDB").ChangeMasterSQL(tt.opts)
			if !errors.Is(err, ErrBadOptions) {
				t.Errorf("err = %v, want ErrBadOptions", err)
			}
		})
	}
}

func TestQuoteString_Escapes(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `'plain'`},
		{"it's", `'it\'s'`},
		{`back\slash`, `'back\\slash'`},
		{"x'; DROP TABLE t; --", `'x\'; DROP TABLE t; --'`},
		{"nl\nnul\x00z\x1aq\"", `'nl\nnul\0z\Zq\"'`},
		{"", `''`},
	}
	for _, tt := range tests {
		if got := quoteString(tt.in); got != tt.want {
			t.Errorf("quoteString(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestChangeMasterOptions_StringRedactsPassword(t *testing.T) {
	o := ChangeMasterOptions{Host: "h", Port: 1, User: "repl", Password: "hunter2", UseGTID: true}
	if s := o.String(); strings.Contains(s, "hunter2") {
		t.Errorf("String() leaks the password: %s", s)
	}
	bad := o
	bad.Port = 0
	if err := bad.Validate(); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Validate() error leaks or is nil: %v", err)
	}
}

func TestRedactSecret_ServerEcho(t *testing.T) {
	echo := &mysql.MySQLError{Number: 1064, SQLState: [5]byte{'4', '2', '0', '0', '0'},
		Message: "You have an error in your SQL syntax near 'hunter2', MASTER_USE_GTID'"}
	err := redactSecret(fmt.Errorf("h:1: change master to h:1: %w", echo), "hunter2")
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("secret leaked: %v", err)
	}
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1064 || !strings.HasPrefix(err.Error(), "h:1: change master") {
		t.Errorf("lost the server error: %v", err)
	}
	plain := errors.New("connection refused")
	if got := redactSecret(plain, "hunter2"); got != plain {
		t.Errorf("unrelated error changed: %v", got)
	}
	if got := redactSecret(errors.New("x hunter2"), "hunter2"); strings.Contains(got.Error(), "hunter2") {
		t.Errorf("non-server error leaked: %v", got)
	}
}
