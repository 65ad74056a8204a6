#!/bin/sh
# Instructions per op of the step benchmarks, from valgrind's cachegrind:
# the difference between runs of N1 and N2 ops divided by N2-N1, so that
# start-up and set-up cancel. Unlike wall time this does not depend on
# the neighbours on a shared machine (it misses stalls: see README.md).
#
#   ./instructions.sh [TEST_BINARY] [BENCH_REGEXP...]
#
# TEST_BINARY defaults to one built here (go test -c); the default
# benchmarks are every tracker of Established, Handshake and Mixed.
# GODEBUG=cpu.rdtscp=off: valgrind 3.19 does not know RDTSCP, which the
# runtime's clock uses; GOGC=off keeps the set-up's garbage collections
# out of the measured ops.
set -eu
cd "$(dirname "$0")"
bin=${1:-}
if [ -z "$bin" ]; then
	bin=$(mktemp -d)/bench.test
	go test -c -o "$bin" .
else
	shift
fi
[ $# -gt 0 ] || set -- 'Established/impl=tcpct$' 'Established/impl=tcpct-preparsed' 'Established/impl=gvisor' \
	'Handshake/impl=tcpct' 'Handshake/impl=gvisor' 'Mixed/impl=tcpct' 'Mixed/impl=gvisor'
n1=${N1:-100000}
n2=${N2:-600000}
irefs() {
	GOGC=off GODEBUG=cpu.rdtscp=off valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
		"$bin" -test.run '^$' -test.bench "$1" -test.benchtime "$2"x -test.cpu 1 2>&1 |
		sed -n 's/.*I *refs: *//p' | tr -d ,
}
for b in "$@"; do
	a=$(irefs "$b" "$n1")
	z=$(irefs "$b" "$n2")
	echo "$b $(((z - a) / (n2 - n1))) instructions/op"
done
