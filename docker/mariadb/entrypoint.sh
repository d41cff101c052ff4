#!/bin/bash
# Entrypoint of the compose demo's MariaDB containers: Debian's mariadbd and
# quorumha's host agent side by side. Its arguments go to mariadbd (compose
# passes --server-id, --report-host and --read-only).
#
# First start (empty datadir volume): mariadb-install-db (root@localhost
# authenticates by unix_socket only, so no root password exists), then a
# temporary server without networking, replication or semi-sync runs the
# scripts in /docker-entrypoint-initdb.d (accounts, replication; see
# init/10-quorumha.sh), as the official mariadb image does. A marker file in
# the datadir says the initialisation finished.
#
# Every start: the agent's secrets are copied from /run/secrets (bind
# mounts, host owner and mode) to /run/quorumha-agent, owned by mysql, mode
# 0600, since the agent refuses readable secret files; mariadbd starts
# (dropping to mysql itself), then the agent as mysql (it reads the binlogs
# and fences the server over its socket). When either exits the other is
# stopped and the container exits, so the container's state is the pair's:
# a container killed with the server is an agent gone too.
set -euo pipefail

DATADIR=/var/lib/mysql
SOCK=/run/mysqld/mysqld.sock
MARK=$DATADIR/qha-initialized
READY=/run/qha-db.ready
AGENT_DIR=/run/quorumha-agent
AGENT_CONFIG=/etc/quorumha-agent/agent.yaml

log() { echo "qha-db-entrypoint: $*" >&2; }
die() {
	log "$*"
	exit 1
}

rm -f "$READY"
install -d -o mysql -g mysql -m 0755 /run/mysqld
chown mysql:mysql "$DATADIR"
install -d -o mysql -g mysql -m 0700 /var/lib/quorumha-agent "$AGENT_DIR"

copy_secret() { # copy_secret NAME FILE
	local src=/run/secrets/$1
	[ -r "$src" ] && [ -s "$src" ] || die "cannot read $src, or it is empty (run docker/gen-secrets.sh)"
	install -o mysql -g mysql -m 0600 "$src" "$AGENT_DIR/$2"
}
copy_secret db_agent_token agent.token
copy_secret db_fence_password fence.pass

# wait_server PID: until the server answers on its socket; fails when the
# process dies first or after two minutes.
wait_server() {
	local i
	for ((i = 0; i < 600; i++)); do
		if mariadb-admin --protocol=socket --socket="$SOCK" -uroot ping >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "$1" 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}

if [ ! -e "$MARK" ]; then
	if [ -d "$DATADIR/mysql" ]; then
		die "$DATADIR holds a datadir whose initialisation did not finish: remove the volume (make compose-down)"
	fi
	log "first start: initialising $DATADIR"
	if ! mariadb-install-db --user=mysql --datadir="$DATADIR" --skip-test-db \
		--auth-root-authentication-method=socket >/tmp/install-db.log 2>&1; then
		cat /tmp/install-db.log >&2
		die "mariadb-install-db failed"
	fi
	# Same server options as the real start (server_id decides the GTIDs
	# the master's init writes), but no clients, no replication, and no
	# semi-sync wait for replicas that are not there yet.
	mariadbd --user=mysql "$@" --skip-networking --skip-slave-start \
		--rpl-semi-sync-master-enabled=OFF --socket="$SOCK" &
	init_pid=$!
	wait_server "$init_pid" || die "the temporary server did not start"
	export QHA_SOCKET=$SOCK
	for f in /docker-entrypoint-initdb.d/*; do
		case $f in
		*.sh)
			log "running $f"
			# shellcheck disable=SC1090 # sourced like the official image does
			. "$f"
			;;
		*.sql)
			log "running $f"
			mariadb --protocol=socket --socket="$SOCK" -uroot <"$f"
			;;
		*) [ -e "$f" ] && log "ignoring $f" ;;
		esac
	done
	mariadb-admin --protocol=socket --socket="$SOCK" -uroot shutdown
	wait "$init_pid" || die "the temporary server exited with status $?"
	touch "$MARK"
	log "initialised"
fi

mariadbd --user=mysql "$@" &
db=$!
wait_server "$db" || die "mariadbd did not start"
setpriv --reuid=mysql --regid=mysql --init-groups \
	/usr/local/bin/quorumha agent --config "$AGENT_CONFIG" &
agent=$!
touch "$READY"
log "mariadbd pid $db and quorumha agent pid $agent running"

stop() { kill -TERM "$agent" "$db" 2>/dev/null || true; }
trap stop TERM INT
set +e
wait -n "$db" "$agent"
rc=$?
log "a process exited (status $rc): stopping the other"
rm -f "$READY"
stop
wait "$agent"
wait "$db"
rc_db=$?
exit $((rc_db > rc ? rc_db : rc))
