#!/usr/bin/env bash
# The Linux kernel's own per-packet nf_conntrack cost for TCP, measured by
# difference in throw-away network namespaces, next to tcpct's eBPF
# tracker (on TC ingress in the same path, and under BPF_PROG_TEST_RUN)
# and its Go tracker, on one tracegen packet mix, interleaved in one run
# (ebpf/internal/cmd/ctcost says how). Needs root, ip, nft and conntrack;
# without them it says why and exits 0.
#
#   scripts/bench-conntrack.sh                      # 1M packets, 7 rounds
#   scripts/bench-conntrack.sh -rounds 9 -v         # every measurement as it is made
#   scripts/bench-conntrack.sh -packets 300000 -chunk 256
#
# Takes about a minute a round on the shared 2-vCPU machine.
set -euo pipefail
cd "$(dirname "$0")/../ebpf"
exec go run ./internal/cmd/ctcost "$@"
