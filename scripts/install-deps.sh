#!/usr/bin/env bash
# Installs what quorumha's tests and demo need on a Debian machine: MariaDB
# server and client tools (real servers for every integration test), the
# network tools used by partition tests, HAProxy and promtool, Chromium for the web view's
# browser test, and Docker (engine, compose, debootstrap for a local base
# image) for the compose demo and its e2e test. Idempotent: does nothing when all is present. Without root it
# only says what to install, and fails.
set -euo pipefail

need=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
command -v mariadb-install-db >/dev/null 2>&1 || need+=(mariadb-server)
command -v mariadb >/dev/null 2>&1 || need+=(mariadb-client)
command -v mariadb-binlog >/dev/null 2>&1 || need+=(mariadb-client)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
# The deploy/docker checks: the unit file is verified by systemd-analyze and
# the compose file by docker compose (v2 plugin) or docker-compose (v1).
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
{ docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; } || need+=(docker-compose)
# The compose demo and docker/e2e_test.go: an engine (dockerd, started by
# scripts/docker-engine.sh with safe flags, never by the package) and
# debootstrap for the local base image when no registry is reachable.
command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] || need+=(docker.io)
command -v docker >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
# The web view's browser test (tests/e2e/ui_test.go) runs headless Chromium.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# The proxy e2e test (tests/e2e/proxy_test.go) and proxy-config's golden
# test run the real HAProxy; the alert rules are checked by promtool.
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v go >/dev/null 2>&1 || { echo "install-deps: Go is not on PATH (need Go >= 1.26, /usr/local/go/bin)" >&2; exit 1; }

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
# de-duplicate
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${need[*]}" >&2
  echo "install-deps: run as root: apt-get update && apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "install-deps: installing ${need[*]} (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d keeps Debian's postinst from starting a system mariadb we do
# not use, a system haproxy or prometheus, and a dockerd with its defaults (which set the iptables FORWARD
# policy to DROP and break the partition tests' bridges).
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || { echo "install-deps: mariadbd still missing after install" >&2; exit 1; }
for tool in dockerd debootstrap haproxy; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || { echo "install-deps: $tool still missing after install" >&2; exit 1; }
done
if printf '%s\n' "${need[@]}" | grep -qx docker.io && [ -d /run/systemd/system ]; then
  echo "install-deps: docker.io enables docker.service, which starts dockerd with its default iptables rules at boot;" >&2
  echo "install-deps: on a host that also runs the partition tests: systemctl disable --now docker.service docker.socket (scripts/docker-engine.sh starts a safe one)" >&2
fi
