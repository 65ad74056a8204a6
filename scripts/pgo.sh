#!/usr/bin/env bash
# Writes cmd/tcpct/release.pgo, the CPU profile that the release build
# uses to optimise the tcpct command (profile-guided optimisation: Go
# inlines and lays out the hot paths the profile names;
# https://go.dev/doc/pgo):
#
#   go build -pgo=cmd/tcpct/release.pgo ./cmd/tcpct
#
# The profile is deliberately not named default.pgo: `go build` and
# `go run` would then pick it up on their own, and a cold build cache
# would recompile the standard library with it, which makes a newcomer's
# first `go run ./cmd/tcpct` several times slower for a few per cent of
# replay speed.
#
# The profile is of the work the command is built for: replaying the
# 10M-packet capture of scripts/bench-replay.sh (written once into $DIR
# if missing) with -format summary and with -format jsonl, on one core,
# by a build without PGO. Rerun it after changing the packet path; a
# stale profile still builds and is still correct, only less useful.
# Profiles differ from run to run: time builds with the new and the old
# profile, interleaved, before committing the new one (cmd/tcpct/README.md,
# Performance, has one such comparison).
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
go tool pprof -proto "$DIR/pgo-summary.prof" "$DIR/pgo-jsonl.prof" >cmd/tcpct/release.pgo
echo "wrote cmd/tcpct/release.pgo ($(wc -c <cmd/tcpct/release.pgo) bytes)" >&2
