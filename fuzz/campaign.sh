#!/usr/bin/env bash
# campaign.sh [duration] — run every native fuzz target of the module in
# turn for duration each (default 10m; any go test -fuzztime value), then
# print a summary: target, execs/s, new corpus entries, crashers.
#
# New interesting inputs stay in Go's fuzz cache ($(go env GOCACHE)/fuzz),
# so the next campaign starts from them; a crasher is written by go test
# to <pkg>/testdata/fuzz/<Target>/ and fails the run — commit it once the
# bug is fixed, so plain go test replays it forever.
#
# Minimizing a new input is capped at TCPCT_FUZZ_MINIMIZE (default 5s, go
# test's is 60s): FuzzSpec's inputs are whole spec files, and minimizing one
# for a minute stalls the campaign with zero execs.
#
# Workers per target are TCPCT_FUZZ_PARALLEL (default 2, one per core of
# our machine type); 1 leaves a core free for other work during a long
# campaign.
#
# CI, briefly: fuzz/campaign.sh 20s
set -u
cd "$(dirname "$0")/.."
D="${1:-10m}"
TARGETS=(
	"./fuzz FuzzPacket"
	"./fuzz FuzzTrace"
	"./fuzz FuzzSegment"
	"./fuzz FuzzSpec"
	"./fuzz FuzzTable"
	"./capture FuzzReader"
	"./property FuzzRapidTracker"
)
# Targets added later are found too: any func FuzzXxx(f *testing.F) in the module.
for f in $(grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+\(f \*testing\.F\)' . | sort); do
	pkg="./$(dirname "${f#./}")"
	for name in $(grep -oE '^func Fuzz[A-Za-z0-9_]+' "$f" | sed 's/^func //'); do
		known=0
		for t in "${TARGETS[@]}"; do [ "$t" = "$pkg $name" ] && known=1; done
		[ $known = 0 ] && TARGETS+=("$pkg $name")
	done
done

# deadline_race LOG: the run failed only with the coordinator's
# "context deadline exceeded" at the end of -fuzztime (golang/go#75804):
# the FAIL line is followed by that message alone, and no input is named.
deadline_race() {
	grep -q -- '--- FAIL: Fuzz' "$1" &&
		grep -A1 -- '--- FAIL: Fuzz' "$1" | grep -qx '    context deadline exceeded' &&
		! grep -qE 'Failing input|panic:|fuzzing process hung|terminated unexpectedly' "$1"
}

LOG="$(mktemp -d)"
status=0
printf '%s\n' "fuzzing ${#TARGETS[@]} targets for $D each; logs in $LOG" >&2
rows=()
for t in "${TARGETS[@]}"; do
	pkg="${t% *}"
	name="${t#* }"
	log="$LOG/$name.log"
	crashdir="$pkg/testdata/fuzz/$name"
	before=$(ls "$crashdir" 2>/dev/null | wc -l)
	printf '== %s %s\n' "$pkg" "$name" >&2
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "$D" -fuzzminimizetime "${TCPCT_FUZZ_MINIMIZE:-5s}" -parallel "${TCPCT_FUZZ_PARALLEL:-2}" "$pkg" >"$log" 2>&1
	rc=$?
	after=$(ls "$crashdir" 2>/dev/null | wc -l)
	crashers=$((after - before))
	if [ $rc -ne 0 ] && [ $crashers -eq 0 ] && deadline_race "$log"; then
		# Go's fuzz coordinator can report its own -fuzztime deadline
		# as a failure (golang/go#75804, fixed in Go 1.27): no input
		# failed, nothing was written. Counted, not failed.
		rc=0
		crashers="0 (go#75804)"
	fi
	[ $rc -ne 0 ] && status=1 && [ "$crashers" = 0 ] && crashers="fail(rc=$rc)"
	# go test -fuzz prints "fuzz: elapsed: 1m0s, execs: 123456 (2057/sec), new interesting: 12 (total: 40)".
	last=$(grep -E 'fuzz: elapsed: .*execs: ' "$log" | tail -1)
	execs=$(sed -nE 's/.*execs: ([0-9]+) .*/\1/p' <<<"$last")
	secs=$(sed -nE 's/.*elapsed: ([0-9hms.]+),.*/\1/p' <<<"$last")
	newi=$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")
	rate="-"
	if [ -n "$execs" ] && [ -n "$secs" ]; then
		s=$(awk -v d="$secs" 'BEGIN{t=0; n=""; for(i=1;i<=length(d);i++){c=substr(d,i,1); if(c~/[0-9.]/){n=n c}else{if(c=="h")t+=n*3600; if(c=="m")t+=n*60; if(c=="s")t+=n; n=""}} print t}')
		rate=$(awk -v e="$execs" -v s="$s" 'BEGIN{ if (s>0) printf "%.0f", e/s; else print "-" }')
	fi
	rows+=("$(printf '%-34s %10s %12s %8s %10s' "$pkg $name" "${execs:--}" "$rate" "${newi:--}" "$crashers")")
	if [ $rc -ne 0 ]; then
		grep -E -- '--- FAIL|Failing input|panic:' "$log" | head -5 >&2
	fi
done
printf '\n%-34s %10s %12s %8s %10s\n' "target" "execs" "execs/s" "new" "crashers"
printf '%s\n' "${rows[@]}"
exit $status
