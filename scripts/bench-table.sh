#!/usr/bin/env bash
# Side-by-side benchmark of table.Table against xsync/v4, sync.Map, a
# 64-shard RWMutex map, a global RWMutex map and a plain map (see
# table/bench_test.go for the workloads), then a benchstat comparison with
# the implementations as columns.
#
#   scripts/bench-table.sh                # 1e3, 1e5, 1e6; -cpu 1,2; -count 6
#   TCPCT_BIG=1 scripts/bench-table.sh    # adds 1e7 (needs ~6 GiB free)
#   COUNT=10 BENCHTIME=1s scripts/bench-table.sh
#   BENCH='CT/n=1e5/.*/W1$' scripts/bench-table.sh
#
# Raw results go to $OUT (default bench-table.txt in the current directory).
#
# Besides sec/op, the concurrent workloads report cpu-sec/op (process CPU
# time per operation). On a shared, loaded machine wall-clock sec/op also
# counts the time the benchmark was descheduled; cpu-sec/op does not, and
# at -cpu 2 it shows contention directly (perfect scaling keeps it equal to
# the -cpu 1 value). Compare both, and compare ratios from the same run.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${COUNT:-6}
BENCHTIME=${BENCHTIME:-150ms}
CPUS=${CPUS:-1,2}
BENCH=${BENCH:-.}
OUT=${OUT:-bench-table.txt}
BENCHSTAT=${BENCHSTAT:-go run golang.org/x/perf/cmd/benchstat@latest}

go test -run '^$' -bench "$BENCH" -benchtime "$BENCHTIME" -count "$COUNT" \
	-cpu "$CPUS" -timeout 60m ./table | tee "$OUT"

echo
echo "== implementations side by side (ratios vs impl=table) =="
$BENCHSTAT -col '/impl@(table xsync syncmap shard64 globalrw plainmap)' -filter '.name:CT' "$OUT" || true
echo
echo "== table: early-drop create and sweep reclaim =="
$BENCHSTAT -filter '.name:(W2Full OR SweepReclaim)' "$OUT" || true
