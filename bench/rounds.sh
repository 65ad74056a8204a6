#!/bin/sh
# Wall-time ratios tcpct ÷ gVisor on a shared machine: ROUNDS interleaved
# rounds of every given test binary (go test -c in this directory), each
# round one short run of every step benchmark (-test.cpu 1), and per
# binary the median, quartiles and range of the per-round ratios of
# tcpct's ns/op to gVisor's in the same run, with the load average seen.
# A ratio within one run of one binary is less disturbed by the
# neighbours than either time.
#
#   ./rounds.sh ROUNDS BINARY...        (BENCHTIME, default 30ms)
set -eu
rounds=$1
shift
out=$(mktemp -d)
r=1
while [ "$r" -le "$rounds" ]; do
	for b in "$@"; do
		f="$out/$(echo "$b" | tr / _).txt"
		echo "# load $(cut -d' ' -f1 /proc/loadavg)" >>"$f"
		"$b" -test.run '^$' -test.bench . -test.count 1 -test.benchtime "${BENCHTIME:-30ms}" -test.cpu 1 | grep '^Benchmark' >>"$f"
	done
	r=$((r + 1))
done
for b in "$@"; do
	echo "== $b"
	awk '
	/^# load/ { n++; load[n] = $3; next }
	{ split($1, p, "/"); sub(/^Benchmark/, "", p[1]); sub(/^impl=/, "", p[2]); sub(/-[0-9]+$/, "", p[2]); t[n, p[1], p[2]] = $3 }
	function pr(bench, impl,    i, k, v, x, j, lo, hi) {
		k = 0
		for (i = 1; i <= n; i++) if (t[i, bench, impl] && t[i, bench, "gvisor"]) v[++k] = t[i, bench, impl] / t[i, bench, "gvisor"]
		for (i = 2; i <= k; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
		printf "  %-12s %-16s median %.2f  quartiles %.2f-%.2f  range %.2f-%.2f  (%d rounds)\n", bench, impl, v[int((k + 1) / 2)], v[int(k / 4) + 1], v[int(3 * k / 4) + 1], v[1], v[k], k
	}
	END {
		lo = hi = load[1]; for (i = 1; i <= n; i++) { if (load[i] < lo) lo = load[i]; if (load[i] > hi) hi = load[i] }
		printf "  load average %s-%s\n", lo, hi
		pr("Established", "tcpct"); pr("Established", "tcpct-preparsed"); pr("Handshake", "tcpct"); pr("Mixed", "tcpct")
	}' "$out/$(echo "$b" | tr / _).txt"
done
