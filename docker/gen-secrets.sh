#!/bin/sh
# Generate the secrets of the compose demo under docker/secrets/ (ignored by
# git). Run as root (sudo) so the controller's files can be given to uid
# 10001, the image's quorumha user: quorumha refuses a password, token or
# gossip key file that its group or others can read, and a bind mount keeps
# the host owner and mode.
#
#   secrets/controller/{monitor.pass,repl.pass,api.token,gossip.key,agent.token}  0600, uid 10001
#   secrets/db/{monitor.pass,repl.pass,fence.pass,agent.token}                    0600
#
# The db copies are read by the MariaDB containers' entrypoint, which runs
# as root: the init script creates the accounts with them, and the host
# agent gets private 0600 copies of agent.token and fence.pass owned by the
# container's mysql user. MariaDB's root has no password (unix_socket).
# Existing files are kept (pass --force to regenerate everything).
set -eu

dir=$(cd "$(dirname "$0")" && pwd)/secrets
uid=${QUORUMHA_UID:-10001}
gid=${QUORUMHA_GID:-10001}

if [ "${1:-}" = "--force" ]; then
	rm -rf "$dir"
fi

rand() { # rand BYTES: hex, so no quoting problem in SQL or YAML
	od -An -vtx1 -N"$1" /dev/urandom | tr -d ' \n'
}

umask 077
mkdir -p "$dir/controller" "$dir/db"
chmod 0700 "$dir" "$dir/db"
chmod 0755 "$dir/controller"
rm -f "$dir/db/root.pass" # older demos; root authenticates by unix_socket now

put() { # put FILE VALUE: write VALUE unless FILE exists
	[ -e "$1" ] || printf '%s\n' "$2" >"$1"
}

put "$dir/db/monitor.pass" "$(rand 24)"
put "$dir/db/repl.pass" "$(rand 24)"
put "$dir/db/fence.pass" "$(rand 24)"
# The agents' bearer token: the controllers send it, the agents check it.
put "$dir/db/agent.token" "$(rand 32)"
chmod 0600 "$dir"/db/*

# The controller gets the same passwords, in its own 0600 copies.
put "$dir/controller/monitor.pass" "$(cat "$dir/db/monitor.pass")"
put "$dir/controller/repl.pass" "$(cat "$dir/db/repl.pass")"
put "$dir/controller/agent.token" "$(cat "$dir/db/agent.token")"
put "$dir/controller/api.token" "$(rand 32)"
# memberlist key: 32 random bytes, base64 (quorumha also accepts 16 or 24).
put "$dir/controller/gossip.key" "$(head -c 32 /dev/urandom | base64)"
chmod 0600 "$dir"/controller/*

if [ "$(id -u)" = 0 ]; then
	chown "$uid:$gid" "$dir"/controller/*
else
	echo >&2 "gen-secrets.sh: not root: run 'sudo chown $uid:$gid $dir/controller/*'"
	echo >&2 "  (the controller image runs as uid $uid and must own its 0600 secret files)"
fi
echo "secrets in $dir; API token for writes: QUORUMHA_TOKEN=\$(sudo cat $dir/controller/api.token)"
