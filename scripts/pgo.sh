#!/usr/bin/env bash
# Writes cmd/tcpct/default.pgo, the CPU profile that `go build` uses to
# optimise the tcpct command (profile-guided optimisation: Go inlines and
# lays out the hot paths the profile names; https://go.dev/doc/pgo).
#
# The profile is of the work the command is built for: replaying the
# 10M-packet capture of scripts/bench-replay.sh (written once into $DIR
# if missing) with -format summary and with -format jsonl, on one core,
# by a build without PGO. Rerun it after changing the packet path; a
# stale profile still builds and is still correct, only less useful.
# Profiles differ from run to run: time builds with the new and the old
# profile, interleaved, before committing the new one (on 2026-11-30 a
# fresh profile was 3-7 % slower than the kept one; cmd/tcpct/README.md).
#
#   scripts/pgo.sh
#   PACKETS_CONNS=200000 scripts/pgo.sh   # a smaller capture, quicker
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/bench-capture.sh
BIN=$DIR/tcpct-nopgo

go build -pgo=off -o "$BIN" ./cmd/tcpct
write_capture
for f in summary jsonl; do
	echo "profiling -format $f ..." >&2
	GOMAXPROCS=1 "$BIN" replay -progress never -j 1 -format "$f" -cpuprofile "$DIR/pgo-$f.prof" "$CAP" >/dev/null
done
go tool pprof -proto "$DIR/pgo-summary.prof" "$DIR/pgo-jsonl.prof" >cmd/tcpct/default.pgo
echo "wrote cmd/tcpct/default.pgo ($(wc -c <cmd/tcpct/default.pgo) bytes)" >&2
