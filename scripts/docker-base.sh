#!/usr/bin/env bash
# Prints the Debian bookworm base image the demo's images are built FROM,
# making it first when needed:
#
#   1. $BASE_IMAGE (default debian:bookworm-slim) when it is present locally
#      or can be pulled;
#   2. otherwise quorumha/base:bookworm, made once with debootstrap from the
#      Debian mirror apt is configured with and `docker import`ed. It is
#      kept: later runs find it and skip the ~1 min debootstrap.
#
# Set QUORUMHA_BASE_LOCAL=1 to skip the pull and always use (or make) the
# local image. The mirror is read from /etc/apt/sources.list and
# /etc/apt/sources.list.d/ (the first URI serving bookworm); DEBIAN_MIRROR
# overrides it. Needs root (debootstrap) and a running engine.
set -euo pipefail

PUBLIC=${BASE_IMAGE:-debian:bookworm-slim}
LOCAL=quorumha/base:bookworm
SUITE=bookworm

say() { echo "docker-base: $*" >&2; }
die() {
	say "$*"
	exit 1
}

have() { docker image inspect "$1" >/dev/null 2>&1; }

# mirror prints the first http(s) URI apt uses for $SUITE (not -security,
# not -updates), from one-line .list files or deb822 .sources files.
mirror() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		awk -v s="$SUITE" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
			if ($(i+1) == s && $i ~ /^https?:/) { print $i; exit } }' "$f"
	done | head -n 1 | grep . && return 0
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		# deb822: paragraphs separated by blank lines.
		awk -v s="$SUITE" 'BEGIN { RS = ""; FS = "\n" }
			{ uris = ""; suites = ""; deb = 0
			  for (i = 1; i <= NF; i++) {
				if ($i ~ /^URIs:/) { uris = $i; sub(/^URIs:[ \t]*/, "", uris) }
				if ($i ~ /^Suites:/) { suites = " " $i " " }
				if ($i ~ /^Types:.*(^|[ \t])deb([ \t]|$)/) deb = 1
			  }
			  if (deb && suites ~ (" " s " ")) { split(uris, u, /[ \t]+/); if (u[1] ~ /^https?:/) { print u[1]; exit } } }' "$f"
	done | head -n 1 | grep .
}

make_local() {
	command -v debootstrap >/dev/null 2>&1 || die "debootstrap missing (make deps installs it)"
	[ "$(id -u)" = 0 ] || die "debootstrap needs root"
	local url
	url=${DEBIAN_MIRROR:-$(mirror)} || die "no Debian mirror for $SUITE in /etc/apt/sources.list{,.d}: set DEBIAN_MIRROR"
	local dir
	dir=$(mktemp -d /var/tmp/quorumha-base.XXXXXX)
	# shellcheck disable=SC2064 # expand now: dir is local
	trap "rm -rf '$dir'" EXIT
	say "debootstrap --variant=minbase $SUITE from $url (about a minute)"
	if ! debootstrap --variant=minbase "$SUITE" "$dir" "$url" >"$dir.log" 2>&1; then
		tail -n 20 "$dir.log" >&2
		die "debootstrap failed (log $dir.log)"
	fi
	rm -f "$dir.log"
	# What the official images do too: no service starts during package
	# installs (no init in a build), no apt lists or caches in the layer.
	printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
	chmod 0755 "$dir/usr/sbin/policy-rc.d"
	rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/archives/*.deb "$dir"/var/log/* "$dir"/tmp/*
	say "importing $LOCAL"
	tar -C "$dir" --numeric-owner -c . | docker import \
		--change 'CMD ["bash"]' \
		--change "LABEL org.opencontainers.image.source=debootstrap org.quorumha.mirror=$url" \
		- "$LOCAL" >/dev/null
	rm -rf "$dir"
	trap - EXIT
}

docker info >/dev/null 2>&1 || die "no Docker engine answers (scripts/docker-engine.sh start)"

if [ "${QUORUMHA_BASE_LOCAL:-}" != 1 ]; then
	if have "$PUBLIC"; then
		echo "$PUBLIC"
		exit 0
	fi
	if docker pull -q "$PUBLIC" >/dev/null 2>&1; then
		say "pulled $PUBLIC"
		echo "$PUBLIC"
		exit 0
	fi
	say "cannot pull $PUBLIC: using $LOCAL"
fi
if have "$LOCAL"; then
	echo "$LOCAL"
	exit 0
fi
make_local
echo "$LOCAL"
