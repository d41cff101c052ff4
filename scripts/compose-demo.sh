#!/usr/bin/env bash
# The docker compose demo (docker/compose.yaml), start to finish. The
# Makefile targets and docker/e2e_test.go call it.
#
#   scripts/compose-demo.sh images   # engine, base image, static binary, both images
#   scripts/compose-demo.sh up       # images, then start
#   scripts/compose-demo.sh start    # secrets, compose up (images must exist), wait until ready
#   scripts/compose-demo.sh wait     # wait until the group is ready
#   scripts/compose-demo.sh down     # remove containers, networks and volumes;
#                                    # stop the engine if scripts/docker-engine.sh started it
#   scripts/compose-demo.sh compose ARGS...   # docker compose -p quorumha -f docker/compose.yaml ARGS
#
# Images: quorumha:$TAG (controller) and quorumha-mariadb:$TAG (MariaDB +
# host agent), FROM the base scripts/docker-base.sh prints. Docker's layer
# cache makes a rebuild cheap: only the layer with the binary changes when
# the code does; the Debian package layers are rebuilt only when the base
# or the Dockerfile's package line changes.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH=$PATH:/usr/local/go/bin:/usr/sbin
PROJECT=${QUORUMHA_COMPOSE_PROJECT:-quorumha}
TAG=${QUORUMHA_VERSION:-compose}
export QUORUMHA_VERSION=$TAG
GO=${GO:-go}
READY_TIMEOUT=${QUORUMHA_READY_TIMEOUT:-300}
CLUSTER=demo
CONTROLLERS=(172.30.0.11 172.30.0.12 172.30.0.13)

say() { echo "compose-demo: $*" >&2; }
die() {
	say "$*"
	exit 1
}

compose() {
	if docker compose version >/dev/null 2>&1; then
		docker compose -p "$PROJECT" -f "$ROOT/docker/compose.yaml" "$@"
	elif command -v docker-compose >/dev/null 2>&1; then
		docker-compose -p "$PROJECT" -f "$ROOT/docker/compose.yaml" "$@"
	else
		die "neither 'docker compose' nor docker-compose is installed (make deps)"
	fi
}

images() {
	"$ROOT/scripts/docker-engine.sh" start
	local base
	base=$("$ROOT/scripts/docker-base.sh")
	export QUORUMHA_BASE_IMAGE=$base
	local version
	version=$(git -C "$ROOT" describe --tags --always --dirty 2>/dev/null || echo dev)
	say "static binary docker/build/quorumha ($version)"
	(cd "$ROOT" && CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-s -w -X main.version=$version" \
		-o docker/build/quorumha ./cmd/quorumha)
	local img df
	for img in "quorumha:$TAG=Dockerfile" "quorumha-mariadb:$TAG=mariadb/Dockerfile" "quorumha-haproxy:$TAG=haproxy/Dockerfile"; do
		df=${img#*=}
		img=${img%%=*}
		say "building $img FROM $base"
		# --network host: the engine may run without NAT (--ip-masq=false),
		# and apt-get needs the mirror. The legacy builder reads
		# docker/.dockerignore (context docker/).
		if ! DOCKER_BUILDKIT=0 docker build -q --network host --build-arg "BASE_IMAGE=$base" \
			-f "$ROOT/docker/$df" -t "$img" "$ROOT/docker" >/dev/null; then
			die "docker build $img failed (run it without -q to see why: docker build --network host --build-arg BASE_IMAGE=$base -f docker/$df docker)"
		fi
	done
}

secrets() {
	if [ ! -e "$ROOT/docker/secrets/controller/agent.token" ] || [ ! -e "$ROOT/docker/secrets/db/fence.pass" ]; then
		"$ROOT/docker/gen-secrets.sh" >&2
	fi
}

# ctl_get IP PATH: GET from a controller's API, from inside c1 (the host may
# not route to the compose networks). `docker exec` on c1's container id,
# not `compose exec`: docker-compose 1.x takes about a second per exec,
# which made each round of wait_ready (six calls) last six seconds.
C1_ID=""
ctl_get() {
	if [ -z "$C1_ID" ]; then
		C1_ID=$(compose ps -q c1 2>/dev/null) || true
		[ -n "$C1_ID" ] || return 1
	fi
	docker exec "$C1_ID" curl -fsS --max-time 2 "http://$1:8080$2" 2>/dev/null
}

wait_ready() {
	local deadline=$((SECONDS + READY_TIMEOUT)) ip missing
	say "waiting for the group: /readyz on c1..c3 and a healthy master of cluster $CLUSTER on each (up to ${READY_TIMEOUT}s)"
	while :; do
		missing=""
		for ip in "${CONTROLLERS[@]}"; do
			if ! ctl_get "$ip" /readyz >/dev/null || ! ctl_get "$ip" "/v1/clusters/$CLUSTER/master" >/dev/null; then
				missing="$missing $ip"
			fi
		done
		if [ -z "$missing" ]; then
			say "ready: $(ctl_get "${CONTROLLERS[0]}" "/v1/clusters/$CLUSTER/master")"
			return 0
		fi
		if ((SECONDS > deadline)); then
			compose ps >&2 || true
			die "not ready after ${READY_TIMEOUT}s: not ready or no healthy master on$missing (compose logs: $0 compose logs)"
		fi
		sleep 2
	done
}

start() {
	secrets
	say "starting the stack (project $PROJECT)"
	compose up -d --no-build
	wait_ready
}

up() {
	images
	start
	local c="$0 compose"
	cat <<EOF

The demo runs: three controllers (c1..c3), master db1, replicas db2 and db3,
each server with its host agent (fencing on). Watch a failover:

  # the group, the master, its lease:
  $c exec c1 quorumha status
  # kill the master's container (server and agent die together):
  docker kill \$($c ps -q db1)
  # the failover record (fence step, candidates, every step):
  $c exec c1 quorumha history
  # db2 or db3 is the master now, the other replicates from it:
  $c exec c1 quorumha status
  # the controllers' decisions:
  $c logs -f c1 c2 c3

Applications go through haproxy: 172.30.0.30:5000 writes (the recorded
master, before and after a failover), 172.30.0.30:5001 reads (replicas):
  mariadb -h 172.30.0.30 -P 5000 -u quorumha -p\$(cat docker/secrets/controller/monitor.pass) -e 'SELECT @@hostname'

Writes to the API need its token: QUORUMHA_TOKEN=\$(cat docker/secrets/controller/api.token)
Stop and remove everything: make compose-down
EOF
}

down() {
	if docker info >/dev/null 2>&1; then
		say "removing the stack (project $PROJECT): containers, networks, volumes"
		compose down -v --remove-orphans -t 20
		if [ -z "$(docker ps -aq)" ]; then
			"$ROOT/scripts/docker-engine.sh" stop
		else
			say "other containers exist: the engine is left running"
		fi
	else
		say "no Docker engine answers: nothing to remove"
	fi
}

case ${1:-} in
images) images ;;
up) up ;;
start) start ;;
wait) wait_ready ;;
down) down ;;
compose)
	shift
	compose "$@"
	;;
*)
	echo "usage: $0 images|up|start|wait|down|compose ARGS..." >&2
	exit 2
	;;
esac
