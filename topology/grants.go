package topology

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// ReadReplicationGrants reads every host entry of user on q (any *sql.DB,
// *sql.Conn or *sql.Tx) and whether it holds REPLICATION SLAVE
// (Repl_slave_priv, the same column on MySQL and on MariaDB, where
// mysql.user is a view of mysql.global_priv), each list sorted. Privileges
// granted only through roles are not seen.
func ReadReplicationGrants(ctx context.Context, q queryer, user string) (with, without []string, err error) {
	rows, err := q.QueryContext(ctx, "SELECT Host, Repl_slave_priv FROM mysql.user WHERE User = ?", user)
	if err != nil {
		return nil, nil, fmt.Errorf("read grants of %q: %w", user, err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var host, priv string
		if err := rows.Scan(&host, &priv); err != nil {
			return nil, nil, fmt.Errorf("read grants of %q: %w", user, err)
		}
		if strings.EqualFold(priv, "Y") {
			with = append(with, host)
		} else {
			without = append(without, host)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read grants of %q: %w", user, err)
	}
	slices.Sort(with)
	slices.Sort(without)
	return with, without, nil
}
