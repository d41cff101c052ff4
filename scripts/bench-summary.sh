#!/usr/bin/env bash
# Prints the BENCH lines of a benchmark log (make bench, make bench-failover)
# as one table: figure, runs, median, p95, max. Lines without run
# statistics (writes lost, runs never fenced) follow the table as they are.
set -euo pipefail
log=${1:?usage: bench-summary.sh LOG}
echo
echo "==== summary ($(basename "$log")) ===="
grep -E '^BENCH .*: runs=[0-9]+ median=' "$log" | sed -E 's/^BENCH //' |
	awk '{
		i = index($0, ": runs="); what = substr($0, 1, i - 1); rest = substr($0, i + 2)
		n = split(rest, f, " "); delete v
		for (k = 1; k <= n; k++) { split(f[k], kv, "="); v[kv[1]] = kv[2] }
		printf "%-100s %5s %10s %10s %10s\n", what, v["runs"], v["median"], v["p95"], v["max"]
	}' | { printf "%-100s %5s %10s %10s %10s\n" "figure" "runs" "median" "p95" "max"; cat; }
grep -E '^BENCH ' "$log" | grep -vE ': runs=[0-9]+ median=' | sed -E 's/^BENCH //' || true
