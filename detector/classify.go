package detector

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/go-sql-driver/mysql"
)

// MySQL and MariaDB error numbers the classifier knows. The "alive but
// refusing" set is MHA's: 1040, 1042-1045, 1129, 1130, 1203, 1226, 1251, 1275.
const (
	erConCount             = 1040 // ER_CON_COUNT_ERROR: too many connections
	erBadHost              = 1042 // ER_BAD_HOST_ERROR
	erHandshake            = 1043 // ER_HANDSHAKE_ERROR
	erDBAccessDenied       = 1044 // ER_DBACCESS_DENIED_ERROR
	erAccessDenied         = 1045 // ER_ACCESS_DENIED_ERROR
	erServerShutdown       = 1053 // ER_SERVER_SHUTDOWN: shutdown in progress
	erNormalShutdown       = 1077 // ER_NORMAL_SHUTDOWN
	erGotSignal            = 1078 // ER_GOT_SIGNAL
	erShutdownComplete     = 1079 // ER_SHUTDOWN_COMPLETE
	erHostBlocked          = 1129 // ER_HOST_IS_BLOCKED
	erHostNotPrivileged    = 1130 // ER_HOST_NOT_PRIVILEGED
	erTooManyUserConns     = 1203 // ER_TOO_MANY_USER_CONNECTIONS
	erUserLimitReached     = 1226 // ER_USER_LIMIT_REACHED
	erNotSupportedAuth     = 1251 // ER_NOT_SUPPORTED_AUTH_MODE
	erSecureAuth           = 1275 // ER_SERVER_IS_IN_SECURE_AUTH_MODE
	erOptionPrevents       = 1290 // ER_OPTION_PREVENTS_STATEMENT (--read-only)
	erReadOnlyMode         = 1836 // ER_READ_ONLY_MODE
	erConnectionKilled     = 1927 // MariaDB ER_CONNECTION_KILLED
	erSessionWasKilled     = 3169 // MySQL ER_SESSION_WAS_KILLED
	erAccountHasBeenLocked = 3118 // MySQL ER_ACCOUNT_HAS_BEEN_LOCKED
	erMariaAccountLocked   = 4151 // MariaDB ER_ACCOUNT_HAS_BEEN_LOCKED
)

// ClassifyError maps a probe error to a Reason. It is pure so every branch is
// table-tested with constructed errors; the liveness rule then depends only
// on the Reason.
func ClassifyError(err error) Reason {
	if err == nil {
		return ReasonOK
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return classifyMySQLError(me.Number)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return ReasonTimeout
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, mysql.ErrInvalidConn), errors.Is(err, driver.ErrBadConn):
		return ReasonRefused
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ReasonTimeout
	}
	return ReasonUnknown
}

func classifyMySQLError(n uint16) Reason {
	switch n {
	case erConCount, erTooManyUserConns, erUserLimitReached:
		return ReasonTooManyConnections
	case erBadHost, erHandshake, erDBAccessDenied, erAccessDenied, erHostBlocked,
		erHostNotPrivileged, erNotSupportedAuth, erSecureAuth, erAccountHasBeenLocked, erMariaAccountLocked:
		return ReasonAuthError
	case erServerShutdown, erNormalShutdown, erGotSignal, erShutdownComplete,
		erConnectionKilled, erSessionWasKilled, erOptionPrevents, erReadOnlyMode:
		return ReasonReadOnlyOrShutdown
	default:
		return ReasonQueryError
	}
}
