#!/bin/sh
# Side-by-side step benchmarks: tcpct's fsm.Machine.Step next to gVisor's
# tcpconntrack.TCB on the same segments (see step_test.go for what is
# measured), 6 runs each, summarised by benchstat with one column per
# implementation. Extra arguments go to go test (e.g. -benchtime 2s).
set -eu
cd "$(dirname "$0")"
out=${BENCH_OUT:-bench.txt}
go test -run '^$' -bench . -count 6 "$@" . | tee "$out"
if ! command -v benchstat >/dev/null 2>&1; then
	go install golang.org/x/perf/cmd/benchstat@latest
	PATH=$PATH:$(go env GOPATH)/bin
fi
benchstat -col /impl "$out"
