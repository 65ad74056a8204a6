#!/usr/bin/env bash
# CPU time of `tcpct replay -format summary` on one core, this tree against
# a baseline revision, interleaved, on a loaded machine's terms:
#
#   scripts/bench-compare.sh [-r ROUNDS] [-pgo] BASE_REV CAPTURE...
#
# Builds BASE_REV (a git worktree in a temporary directory) and the working
# tree, both with -pgo=off (or, with -pgo, each with its own profile:
# cmd/tcpct/release.pgo, or default.pgo in older trees), then runs ROUNDS
# rounds (default 11), each replaying every CAPTURE once with each binary
# in turn (GOMAXPROCS=1 -j 1, under nice -n -15 when root). It prints per
# capture and binary the median and the minimum of user+sys CPU seconds,
# the median of the per-round ratios new/base (the figure to quote: pairs
# taken in the same round share the machine's spell), the load average,
# and whether the two outputs are byte-identical once the throughput line,
# which holds a wall time, is left out.
#
#   scripts/bench-compare.sh 3dfff03 load.pcap          # go run ./examples/mkload -o load.pcap ...
#   scripts/bench-compare.sh -r 5 -pgo HEAD~3 "$DIR/load-1000000-100000-120us.pcap"   # scripts/bench-capture.sh's capture
#
# Captures: examples/mkload writes them (see scripts/bench-capture.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=11
PGO=off
while [ $# -gt 0 ]; do
	case $1 in
	-r) ROUNDS=$2; shift 2 ;;
	-pgo) PGO=own; shift ;;
	*) break ;;
	esac
done
[ $# -ge 2 ] || { sed -n '2,22p' "$0" >&2; exit 2; }
BASE=$1
shift

TMP=$(mktemp -d)
trap 'git worktree remove --force "$TMP/base" >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT
git worktree add --detach "$TMP/base" "$BASE" >/dev/null 2>&1

build() { # build DIR OUT
	local pgo=off
	if [ "$PGO" = own ]; then
		for f in cmd/tcpct/release.pgo cmd/tcpct/default.pgo; do
			if [ -f "$1/$f" ]; then pgo=$(cd "$1" && pwd)/$f; break; fi
		done
	fi
	(cd "$1" && go build -pgo="$pgo" -o "$2" ./cmd/tcpct)
}
build "$TMP/base" "$TMP/base.bin"
build . "$TMP/new.bin"

NICE=
[ "$(id -u)" = 0 ] && NICE="nice -n -15"
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

echo "base $BASE ($(git rev-parse --short "$BASE")), new $(git rev-parse --short HEAD)$(git diff --quiet || echo +changes), -pgo=$PGO, $ROUNDS rounds"
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start"
for cap in "$@"; do
	: >"$TMP/base.t"
	: >"$TMP/new.t"
	for ((i = 0; i < ROUNDS; i++)); do
		for b in base new; do
			$NICE /usr/bin/time -f "%U %S" -o "$TMP/t" env GOMAXPROCS=1 "$TMP/$b.bin" replay -progress never -j 1 -format summary "$cap" 2>/dev/null |
				grep -v 'packets/s' >"$TMP/$b.out"
			awk '{print $1 + $2}' "$TMP/t" >>"$TMP/$b.t"
		done
	done
	same=identical
	cmp -s "$TMP/base.out" "$TMP/new.out" || same=DIFFERENT
	med() { sort -n "$1" | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
	echo "$cap:"
	for b in base new; do
		echo "  $b: median $(med "$TMP/$b.t") s, min $(sort -n "$TMP/$b.t" | head -1) s  [$(tr '\n' ' ' <"$TMP/$b.t")]"
	done
	paste "$TMP/base.t" "$TMP/new.t" | awk '{print $2 / $1}' >"$TMP/ratio"
	echo "  new/base: median of the per-round ratios $(med "$TMP/ratio" | awk '{printf "%.3f", $1}'); output $same; load average $(cut -d' ' -f1-3 /proc/loadavg)"
done
