#!/usr/bin/env bash
# Throughput of `tcpct replay` on a large capture, next to tshark.
#
# Writes (once; kept in $DIR) a 10,000,000-packet capture: 1,000,000
# connections of 10 packets, 100,000 open at a time, packets 120 µs apart
# (20 minutes of traffic), 16 servers (examples/mkload). Then times, REPEAT
# times each (default 3):
#
#   tcpct replay -format summary, one core   (GOMAXPROCS=1 -j 1)
#   tcpct replay -format summary, two cores  (GOMAXPROCS=2 -j 2)
#   tcpct replay -format jsonl > /dev/null   (GOMAXPROCS=1 -j 1, and -j 2)
#   tshark -r FILE -q -z conv,tcp            (once: it is slow)
#
# and prints packets/s (best run, and the spread), the ratio to tshark and
# the peak RSS (/usr/bin/time -v). Last it prints the floor of a one-core
# replay in the same spell of the machine (internal/cmd/replayfloor:
# reading, parsing, two cold cache lines per packet, and the latency of
# one cache miss). Installs tshark and time with apt-get when missing.
#
#   scripts/bench-replay.sh
#   PACKETS_CONNS=200000 REPEAT=5 scripts/bench-replay.sh   # smaller capture
#   SKIP_TSHARK=1 scripts/bench-replay.sh
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/bench-capture.sh
REPEAT=${REPEAT:-3}
BIN=$DIR/tcpct

need() {
	if ! command -v "$1" >/dev/null 2>&1 && [ ! -x "$2" ]; then
		echo "installing $3 ..." >&2
		if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
		DEBIAN_FRONTEND=noninteractive $SUDO apt-get update -qq >/dev/null
		echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections 2>/dev/null || true
		DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$3" >/dev/null
	fi
}
need /usr/bin/time /usr/bin/time time
[ -n "${SKIP_TSHARK:-}" ] || need tshark /usr/bin/tshark tshark

go build -pgo=cmd/tcpct/release.pgo -o "$BIN" ./cmd/tcpct # the release build (scripts/pgo.sh)
go build -o "$DIR/replayfloor" ./internal/cmd/replayfloor
write_capture
echo "capture: $CAP, $(du -h "$CAP" | cut -f1), $PACKETS packets, $CONCURRENT connections open at a time" >&2
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# run NAME ENV... -- CMD...: REPEAT timed runs; records wall seconds and
# peak RSS (KiB) of each in $DIR/NAME.times.
run() {
	local name=$1 n=$2
	shift 2
	: >"$DIR/$name.times"
	for ((i = 0; i < n; i++)); do
		/usr/bin/time -v -o "$DIR/$name.tv" "$@" >/dev/null 2>"$DIR/$name.err" || true
		local wall rss
		wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, a, ":"); s = 0; for (j = 1; j <= n; j++) s = s * 60 + a[j]; print s}' "$DIR/$name.tv")
		rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$DIR/$name.tv")
		echo "$wall $rss" >>"$DIR/$name.times"
		echo "  $name run $((i + 1)): ${wall}s, RSS ${rss} KiB" >&2
	done
}

run summary-1core "$REPEAT" env GOMAXPROCS=1 "$BIN" replay -progress never -j 1 -format summary "$CAP"
run summary-2core "$REPEAT" env GOMAXPROCS=2 "$BIN" replay -progress never -j 2 -format summary "$CAP"
run jsonl-1core "$REPEAT" env GOMAXPROCS=1 "$BIN" replay -progress never -j 1 -format jsonl "$CAP"
run jsonl-2core "$REPEAT" env GOMAXPROCS=2 "$BIN" replay -progress never -j 2 -format jsonl "$CAP"
TSHARK=
if [ -z "${SKIP_TSHARK:-}" ]; then
	run tshark 1 tshark -r "$CAP" -q -z conv,tcp
	TSHARK=$(awk '{print $1}' "$DIR/tshark.times")
fi

echo
printf '%-28s %12s %12s %22s %10s %10s\n' command "best s" "pps (best)" "pps range" "× tshark" "RSS MiB"
row() {
	local name=$1 label=$2
	awk -v p="$PACKETS" -v label="$label" -v ts="$TSHARK" '
		{ w[NR] = $1; r = ($2 > r ? $2 : r) }
		END {
			min = w[1]; max = w[1]
			for (i = 2; i <= NR; i++) { if (w[i] < min) min = w[i]; if (w[i] > max) max = w[i] }
			ratio = (ts != "" && min > 0) ? sprintf("%.1f", ts / min) : "-"
			printf "%-28s %12.2f %12.2fM %10.2fM..%.2fM %10s %10.0f\n", label, min, p / min / 1e6, p / max / 1e6, p / min / 1e6, ratio, r / 1024
		}' "$DIR/$name.times"
}
row summary-1core "summary, 1 core (-j 1)"
row summary-2core "summary, 2 cores (-j 2)"
row jsonl-1core "jsonl >/dev/null, 1 core"
row jsonl-2core "jsonl >/dev/null, 2 cores"
[ -z "$TSHARK" ] || row tshark "tshark -q -z conv,tcp"
s1=$(sort -n "$DIR/summary-1core.times" | head -1 | cut -d' ' -f1)
s2=$(sort -n "$DIR/summary-2core.times" | head -1 | cut -d' ' -f1)
echo
awk -v a="$s1" -v b="$s2" 'BEGIN { printf "summary speed-up 1 -> 2 cores (best runs): %.2fx\n", a / b }'
echo "(wall clock includes process start, table allocation and the final dump; the machine's load average was $(cut -d' ' -f1-3 /proc/loadavg) at the end)"

# What no one-core replay can go below on this machine, now: reading,
# parsing, and reaching two cold lines per packet (internal/cmd/replayfloor).
echo
echo "floor, one core (internal/cmd/replayfloor, best of $REPEAT):"
GOMAXPROCS=1 "$DIR/replayfloor" -n "$REPEAT" "$CAP"
