# quorumha — run `make help` for the targets.
SHELL := /bin/bash
GO ?= go
export PATH := $(PATH):/usr/local/go/bin:/usr/sbin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN := bin/quorumha
PKGS := ./...
TEST_TIMEOUT ?= 25m
# How many tests of one package run at once: the e2e tests that call
# parallel(t) run this many side by side, beside one lane(t) test whose
# processes run at a higher priority (tests/e2e/parallel_test.go). 5 keeps
# the 2-core build machine's cores busy; QUORUMHA_E2E_SERIAL=1 runs every
# e2e test one at a time.
TEST_PARALLEL ?= 5
# tests/e2e is by far the longest package: naming it first makes `go test`
# start it first instead of after every other package.
TEST_PKGS = $(if $(filter ./...,$(PKGS)),./tests/e2e/ $(PKGS),$(PKGS))

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets with a one-line description
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

.PHONY: deps
deps: ## Install MariaDB, network tools, HAProxy, promtool, Chromium, Docker and debootstrap when missing (apt-get, needs root)
	@scripts/install-deps.sh

.PHONY: build
build: ## Build bin/quorumha
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/quorumha

.PHONY: test
test: deps build ## Unit and integration tests against real MariaDB (installs it when missing)
	QUORUMHA_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -parallel $(TEST_PARALLEL) -timeout $(TEST_TIMEOUT) $(TEST_PKGS)

.PHONY: test-short
test-short: ## Unit tests only (no MariaDB, no processes)
	$(GO) test -count=1 -short $(PKGS)

.PHONY: race
race: deps build ## Tests with the race detector (slower)
	QUORUMHA_BIN=$(CURDIR)/$(BIN) $(GO) test -race -count=1 -timeout 40m $(PKGS)

.PHONY: fuzz
fuzz: ## Run each fuzz target for 30s
	$(GO) test ./config -run '^$$' -fuzz '^FuzzParseMHA$$' -fuzztime 30s
	$(GO) test ./config -run '^$$' -fuzz '^FuzzLoadYAML$$' -fuzztime 30s

.PHONY: lint
lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@command -v staticcheck >/dev/null 2>&1 || $(GO) install honnef.co/go/tools/cmd/staticcheck@latest
	$$( $(GO) env GOPATH )/bin/staticcheck $(PKGS)

.PHONY: bench
bench: deps build ## Go benchmarks and printed figures (FSM apply, API, raft failover)
	QUORUMHA_BIN=$(CURDIR)/$(BIN) $(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./fsm ./consensus ./api ./detector
	set -o pipefail; QUORUMHA_BIN=$(CURDIR)/$(BIN) QUORUMHA_BENCH=1 $(GO) test -count=1 -run '^TestBench(LeaderFailover|Detection|Scale|Switchover|Salvage)$$' -v -timeout 30m ./tests/... | tee bench.log; rc=$$?; \
		scripts/bench-summary.sh bench.log; exit $$rc

.PHONY: demo
demo: deps build ## Bring up a MariaDB sandbox (master + 2 replicas), check it, print what to try
	@$(BIN) sandbox down >/dev/null 2>&1 || true
	$(BIN) sandbox up
	$(BIN) check-repl --config .sandbox/quorumha.yaml
	@echo
	@echo "Try:  $(BIN) sandbox status"
	@echo "      $(BIN) check-config --config .sandbox/quorumha.yaml"
	@echo "      $(BIN) sandbox down"

.PHONY: clean
clean: ## Remove build output
	rm -rf bin docker/build bench.log bench-failover.log

.PHONY: bench-failover
bench-failover: deps build ## Failover figures over N runs each on fresh sandboxes: kill -9 without and with agents, master host isolated and frozen at slave_net_timeout=60, failovers+switchovers through HAProxy (QUORUMHA_BENCH_RUNS, default 7); summary table at the end
	set -o pipefail; QUORUMHA_BIN=$(CURDIR)/$(BIN) QUORUMHA_BENCH=1 $(GO) test -count=1 -run '^TestBench(Failover|FailoverAgents|IsolatedMaster|HostVanished|Proxy)$$' -v -timeout 90m ./tests/e2e/ | tee bench-failover.log; rc=$$?; \
		scripts/bench-summary.sh bench-failover.log; exit $$rc

# The docker compose demo (docker/compose.yaml). The engine is started by
# scripts/docker-engine.sh with --iptables=false --ip-masq=false
# --ip-forward=false when none runs: dockerd's defaults would set the
# host's iptables FORWARD policy to DROP.
.PHONY: docker-base
docker-base: ## Base image of the demo images: debian:bookworm-slim if it can be pulled, else quorumha/base:bookworm (debootstrap, made once)
	@scripts/docker-engine.sh start
	@scripts/docker-base.sh

.PHONY: docker-images
docker-images: ## Build quorumha:compose and quorumha-mariadb:compose (static binary, cached layers)
	@scripts/compose-demo.sh images

.PHONY: compose-demo
compose-demo: deps ## Docker compose demo: 3 controllers, MariaDB master + 2 replicas with host agents; waits until ready
	@scripts/compose-demo.sh up

.PHONY: compose-down
compose-down: ## Stop and remove the compose demo (containers, networks, volumes) and the engine it started
	@scripts/compose-demo.sh down

# Randomized fault schedules against the isolated-master environment
# (tests/e2e/chaos_test.go, issue 15). SEED replays a run; the report goes
# to chaos-report/. `make test` runs a short fixed schedule of the same test.
# FAULTS=kill9_master+replica_down,... replays given rounds instead of drawn ones;
# SEMISYNC_TIMEOUT=10s sets rpl_semi_sync_master_timeout on every server (sandbox: 2s).
ROUNDS ?= 10
FAULTS ?=
SEMISYNC_TIMEOUT ?=
SEED ?= $(shell date +%s)
.PHONY: chaos
chaos: deps build ## Random fault rounds with independent checkers (SEED=n ROUNDS=n; report in chaos-report/)
	@echo "chaos seed $(SEED), $(ROUNDS) rounds (replay: make chaos SEED=$(SEED) ROUNDS=$(ROUNDS)$(if $(FAULTS), FAULTS=$(FAULTS))$(if $(SEMISYNC_TIMEOUT), SEMISYNC_TIMEOUT=$(SEMISYNC_TIMEOUT)))"
	QUORUMHA_BIN=$(CURDIR)/$(BIN) QUORUMHA_CHAOS_SEED=$(SEED) QUORUMHA_CHAOS_ROUNDS=$(ROUNDS) \
		QUORUMHA_CHAOS_FAULTS=$(FAULTS) QUORUMHA_CHAOS_SEMISYNC_TIMEOUT=$(SEMISYNC_TIMEOUT) QUORUMHA_CHAOS_REPORT=$(CURDIR)/chaos-report \
		$(GO) test -count=1 -run '^TestChaos$$' -v -timeout $$(( 10 + $(ROUNDS) * 5 ))m ./tests/e2e/
