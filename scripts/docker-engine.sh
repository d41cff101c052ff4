#!/usr/bin/env bash
# Starts and stops a Docker engine for the compose demo and its e2e test
# without touching the host's firewall or sysctls.
#
#   scripts/docker-engine.sh start    # no-op when an engine already answers
#   scripts/docker-engine.sh stop     # stops only an engine this script started
#   scripts/docker-engine.sh status
#
# Why not `systemctl start docker` or a bare `dockerd`: by default dockerd
# sets the host's iptables FORWARD policy to DROP, adds its own chains, turns
# on net.ipv4.ip_forward and masquerades its subnets. On a machine where
# other tests wire network namespaces together through bridges (quorumha's
# partition tests: bridges qha*, 198.18.0.0/15) that silently cuts them off.
# The demo needs none of it: its containers only talk to each other on their
# own bridges, and image builds that fetch packages use `--network host`.
# So dockerd runs with --iptables=false --ip-masq=false --ip-forward=false,
# and with its default bridge and address pools in 172.29.0.0/16, clear of
# 198.18.0.0/15 and of the demo's fixed 172.30.0.0/22.
#
# The engine this script starts is remembered by its pid in $PIDFILE; stop
# kills that pid only (dockerd stops the containerd it started), never an
# engine someone else runs. Its log is $LOG.
set -euo pipefail

PIDFILE=${QUORUMHA_DOCKERD_PIDFILE:-/run/quorumha-dockerd.pid}
LOG=${QUORUMHA_DOCKERD_LOG:-/var/log/quorumha-dockerd.log}
BIP=${QUORUMHA_DOCKERD_BIP:-172.29.0.1/24}
POOL=${QUORUMHA_DOCKERD_POOL:-base=172.29.128.0/17,size=24}
WAIT=${QUORUMHA_DOCKERD_WAIT:-60}

die() {
	echo "docker-engine: $*" >&2
	exit 1
}

answers() { docker info >/dev/null 2>&1; }

forward_policy() {
	if command -v iptables >/dev/null 2>&1; then
		iptables -S FORWARD 2>/dev/null | sed -n 's/^-P FORWARD //p'
	fi
}

ours() { # the pid in $PIDFILE, when it is a running dockerd
	local pid
	[ -r "$PIDFILE" ] || return 1
	pid=$(cat "$PIDFILE")
	[ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = dockerd ] || return 1
	echo "$pid"
}

start() {
	if answers; then
		if ours >/dev/null; then
			echo "docker-engine: dockerd (pid $(ours)) already running, started by this script" >&2
		else
			echo "docker-engine: a Docker engine already answers; using it as it is" >&2
			echo "docker-engine: (check it runs with --iptables=false if other tests share this host: iptables FORWARD policy is $(forward_policy))" >&2
		fi
		return 0
	fi
	command -v docker >/dev/null 2>&1 || die "no docker CLI (make deps installs docker.io)"
	command -v dockerd >/dev/null 2>&1 || die "no dockerd (make deps installs docker.io; PATH needs /usr/sbin)"
	[ "$(id -u)" = 0 ] || die "dockerd must be started as root"
	local before
	before=$(forward_policy)
	echo "docker-engine: starting dockerd --iptables=false --ip-masq=false --ip-forward=false --bip=$BIP (log $LOG)" >&2
	# setsid: the engine outlives the shell (or go test) that started it,
	# until stop.
	setsid dockerd \
		--iptables=false --ip6tables=false --ip-masq=false --ip-forward=false \
		--bip="$BIP" --default-address-pool="$POOL" \
		--storage-driver=overlay2 \
		--pidfile=/var/run/docker.pid \
		>>"$LOG" 2>&1 </dev/null &
	local pid=$!
	echo "$pid" >"$PIDFILE"
	local i
	for ((i = 0; i < WAIT * 4; i++)); do
		if answers; then
			local after
			after=$(forward_policy)
			if [ "$before" != "$after" ]; then
				echo "docker-engine: iptables FORWARD policy changed from $before to $after" >&2
			fi
			echo "docker-engine: dockerd pid $pid ready" >&2
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			rm -f "$PIDFILE"
			tail -n 20 "$LOG" >&2 || true
			die "dockerd exited during start (log $LOG)"
		fi
		sleep 0.25
	done
	tail -n 20 "$LOG" >&2 || true
	die "dockerd pid $pid did not answer within ${WAIT}s (log $LOG; left running: $0 stop)"
}

stop() {
	local pid
	if ! pid=$(ours); then
		rm -f "$PIDFILE"
		if answers; then
			echo "docker-engine: the running Docker engine was not started by this script: left alone" >&2
		fi
		return 0
	fi
	echo "docker-engine: stopping dockerd pid $pid" >&2
	kill -TERM "$pid"
	local i
	for ((i = 0; i < 240; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.25
	done
	if kill -0 "$pid" 2>/dev/null; then
		die "dockerd pid $pid still running 60s after SIGTERM"
	fi
	rm -f "$PIDFILE"
	# dockerd leaves its default bridge behind; remove it when it is the
	# one this script configured, so the host is as before.
	if ip -4 -br addr show dev docker0 2>/dev/null | grep -qF "${BIP}"; then
		ip link del docker0 || true
	fi
}

status() {
	local pid
	if pid=$(ours); then
		echo "dockerd pid $pid (started by $0)"
	elif answers; then
		echo "a Docker engine answers (not started by $0)"
	else
		echo "no Docker engine"
		return 3
	fi
	echo "iptables FORWARD policy: $(forward_policy)"
}

case ${1:-} in
start) start ;;
stop) stop ;;
status) status ;;
*)
	echo "usage: $0 start|stop|status" >&2
	exit 2
	;;
esac
