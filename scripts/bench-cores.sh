#!/usr/bin/env bash
# Two cores against one: `tcpct replay -format summary` with -j 2 on two
# cores (GOMAXPROCS=2) against -j 1 on one (GOMAXPROCS=1), in interleaved
# rounds, each round beginning with the control (scripts/spin): one
# spinning goroutine, then two, 0.5 s each. Its ratio says whether the
# machine gave two free cores in that round; a speed-up is worth only as
# much as the control next to it.
#
# Per round it prints the control's ratio, the load average, and for each
# build the wall and CPU (user + sys) seconds of both runs, the speed-up
# (wall -j 1 / wall -j 2) and the CPU ratio (CPU -j 2 / CPU -j 1: what the
# second core's pipeline costs on top; less sensitive to a busy machine
# than the speed-up). Then the medians. The outputs of every run must be
# identical but for the throughput line, or the script fails.
#
# The capture is scripts/bench-capture.sh's (10,000,000 packets; written
# once), or CAP. BASE names an earlier build to measure in the same rounds
# (for example one built from main: go build -o "$HOME/tcpct-base" ./cmd/tcpct in a checkout of it).
#
#   scripts/bench-cores.sh
#   ROUNDS=7 BASE=$HOME/tcpct-base scripts/bench-cores.sh
#   CAP=small.pcap scripts/bench-cores.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
if [ -z "${CAP:-}" ]; then
	. scripts/bench-capture.sh
	write_capture
else
	DIR=${DIR:-${TMPDIR:-/tmp}/tcpct-bench}
	mkdir -p "$DIR"
fi
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
BIN=$DIR/tcpct-cores
go build -pgo=cmd/tcpct/release.pgo -o "$BIN" ./cmd/tcpct # the release build (scripts/pgo.sh)
go build -o "$DIR/spin" ./scripts/spin
BUILDS=("$BIN")
NAMES=(this)
if [ -n "${BASE:-}" ]; then
	BUILDS+=("$BASE")
	NAMES+=(base)
fi
echo "capture: $CAP, $(du -h "$CAP" | cut -f1); machine: $(nproc) CPUs" >&2

# timed OUT ENV... -- CMD...: runs CMD with stdout to OUT, prints
# "wall cpu" in seconds.
timed() {
	local out=$1
	shift
	/usr/bin/time -f '%e %U %S' -o "$DIR/cores.time" "$@" >"$out"
	awk '{printf "%.2f %.2f\n", $1, $2 + $3}' "$DIR/cores.time"
}

RES=$DIR/cores.results
: >"$RES"
printf '%5s %6s %6s  %-5s %14s %14s %8s %8s\n' round spin load build "-j 1 wall,cpu" "-j 2 wall,cpu" speed-up "cpu ×"
for ((r = 1; r <= ROUNDS; r++)); do
	s1=$("$DIR/spin" 1)
	s2=$("$DIR/spin" 2)
	spin=$(awk -v a="$s1" -v b="$s2" 'BEGIN {printf "%.2f", b / a}')
	load=$(cut -d' ' -f1 /proc/loadavg)
	# Odd rounds run the builds in order, -j 1 first; even rounds the
	# other way round, so that no build or -j always runs first.
	order=("${!BUILDS[@]}")
	if ((r % 2 == 0)); then
		order=()
		for ((k = ${#BUILDS[@]} - 1; k >= 0; k--)); do order+=("$k"); done
	fi
	for i in "${order[@]}"; do
		b=${BUILDS[$i]}
		if ((r % 2)); then
			read -r w1 c1 < <(timed "$DIR/cores.out1" env GOMAXPROCS=1 "$b" replay -progress never -j 1 -format summary "$CAP")
			read -r w2 c2 < <(timed "$DIR/cores.out2" env GOMAXPROCS=2 "$b" replay -progress never -j 2 -format summary "$CAP")
		else
			read -r w2 c2 < <(timed "$DIR/cores.out2" env GOMAXPROCS=2 "$b" replay -progress never -j 2 -format summary "$CAP")
			read -r w1 c1 < <(timed "$DIR/cores.out1" env GOMAXPROCS=1 "$b" replay -progress never -j 1 -format summary "$CAP")
		fi
		for o in 1 2; do grep -v ' packets/s$' "$DIR/cores.out$o" >"$DIR/cores.cmp$o"; done
		if [ -s "$DIR/cores.want" ]; then
			cmp -s "$DIR/cores.want" "$DIR/cores.cmp1" || { echo "${NAMES[$i]} -j 1: output differs" >&2; exit 1; }
		else
			cp "$DIR/cores.cmp1" "$DIR/cores.want"
		fi
		cmp -s "$DIR/cores.want" "$DIR/cores.cmp2" || { echo "${NAMES[$i]} -j 2: output differs" >&2; exit 1; }
		sp=$(awk -v a="$w1" -v b="$w2" 'BEGIN {printf "%.2f", a / b}')
		cx=$(awk -v a="$c1" -v b="$c2" 'BEGIN {printf "%.2f", b / a}')
		printf '%5d %6s %6s  %-5s %14s %14s %7s× %7s×\n' "$r" "$spin" "$load" "${NAMES[$i]}" "$w1 s, $c1 s" "$w2 s, $c2 s" "$sp" "$cx"
		echo "${NAMES[$i]} $spin $sp $cx" >>"$RES"
	done
done
rm -f "$DIR/cores.want"
echo
for n in "${NAMES[@]}"; do
	awk -v n="$n" '$1 == n {s[++k] = $2; p[k] = $3; c[k] = $4}
		function median(a, k,   i, j, t) {
			for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
			return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
		}
		END {printf "%-5s median of %d rounds: control %.2f, speed-up %.2f×, cpu %.2f×\n", n, k, median(s, k), median(p, k), median(c, k)}' "$RES"
done
