# Sourced by bench-replay.sh and pgo.sh (from the repository root): the
# benchmark capture they share. Sets DIR, CONNS, CONCURRENT, GAP, CAP and
# PACKETS from the environment (PACKETS_CONNS, CONCURRENT, GAP, DIR) and
# defines write_capture.

DIR=${DIR:-${TMPDIR:-/tmp}/tcpct-bench}
CONNS=${PACKETS_CONNS:-1000000}
CONCURRENT=${CONCURRENT:-100000}
GAP=${GAP:-120us}
mkdir -p "$DIR"
CAP=$DIR/load-$CONNS-$CONCURRENT-$GAP.pcap
PACKETS=$((CONNS * 10))

# write_capture writes $CAP with examples/mkload (10 packets a
# connection, 16 servers) unless an earlier run left it there.
write_capture() {
	if [ ! -s "$CAP" ]; then
		echo "writing $CAP ($CONNS connections, $CONCURRENT at a time) ..." >&2
		go run ./examples/mkload -o "$CAP" -conns "$CONNS" -concurrent "$CONCURRENT" -gap "$GAP" -servers 16
	fi
}
