#!/bin/bash
# Sourced by the demo's MariaDB entrypoint (mariadb/entrypoint.sh) on the
# first start of a container (empty /var/lib/mysql), against its temporary
# server, as root over the unix socket (root has no password).
#
# On every server, with sql_log_bin=0 so no server gets GTIDs of its own
# (quorumha's check-repl reports errant GTIDs):
#   - 'quorumha'@'%': the account the controllers probe and administer with;
#   - 'repl'@'%': replication;
#   - 'qha_fencer'@'localhost': the host agent's fencing account, over the
#     socket only, with exactly the privileges docs/agent.md lists.
# On a replica (DB_ROLE=replica): point it at $DB_MASTER_HOST with GTID
# (slave_pos); the replication threads start with the real server.
#
# Passwords come from the docker secrets db_monitor_password,
# db_repl_password and db_fence_password (see compose.yaml and
# gen-secrets.sh).

qha_secret() {
	local f=$1 v
	if [ ! -r "$f" ]; then
		echo >&2 "10-quorumha.sh: cannot read $f (run docker/gen-secrets.sh)"
		exit 1
	fi
	v=$(tr -d '\r\n' <"$f")
	case $v in
	'' | *"'"* | *'\'*)
		echo >&2 "10-quorumha.sh: $f is empty or contains a quote or backslash"
		exit 1
		;;
	esac
	printf '%s' "$v"
}

qha_sql() {
	mariadb --protocol=socket --socket="${QHA_SOCKET:-/run/mysqld/mysqld.sock}" -uroot -e "$1"
}

qha_monitor_pw=$(qha_secret /run/secrets/db_monitor_password)
qha_repl_pw=$(qha_secret /run/secrets/db_repl_password)
qha_fence_pw=$(qha_secret /run/secrets/db_fence_password)

qha_sql "
SET SESSION sql_log_bin = 0;
CREATE USER IF NOT EXISTS 'quorumha'@'%' IDENTIFIED BY '${qha_monitor_pw}';
-- Probing, fencing (read_only, killing connections), promoting and
-- repointing replicas need administrative rights.
GRANT ALL PRIVILEGES ON *.* TO 'quorumha'@'%' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED BY '${qha_repl_pw}';
GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'repl'@'%';
-- The agent's self-fencing: READ_ONLY ADMIN sets read_only, CONNECTION
-- ADMIN kills other sessions, RELOAD takes the global read lock, PROCESS
-- shows every session (docs/agent.md).
CREATE USER IF NOT EXISTS 'qha_fencer'@'localhost' IDENTIFIED BY '${qha_fence_pw}';
GRANT RELOAD, PROCESS, CONNECTION ADMIN, READ_ONLY ADMIN ON *.* TO 'qha_fencer'@'localhost';
"

case ${DB_ROLE:-} in
master)
	# Replicated on purpose: a database for the demo's writes.
	qha_sql "CREATE DATABASE IF NOT EXISTS app;"
	;;
replica)
	qha_sql "
CHANGE MASTER TO
  MASTER_HOST = '${DB_MASTER_HOST:?DB_MASTER_HOST is required for a replica}',
  MASTER_PORT = 3306,
  MASTER_USER = 'repl',
  MASTER_PASSWORD = '${qha_repl_pw}',
  MASTER_USE_GTID = slave_pos,
  MASTER_CONNECT_RETRY = 5;
"
	;;
*)
	echo >&2 "10-quorumha.sh: DB_ROLE must be master or replica, not '${DB_ROLE:-}'"
	exit 1
	;;
esac
unset qha_monitor_pw qha_repl_pw qha_fence_pw
