// Package conformance holds the kernel-differential suite: it replays
// traces through the tracker (package tcpct) and compares every packet's
// verdict with what Linux nf_conntrack decided for the same packet.
//
// Subpackages: gen generates traces, kernel runs them through the real
// kernel in a throw-away network namespace, compare matches two verdict
// streams field by field, router is a second oracle that injects nothing
// (real TCP stacks talk through a router namespace whose conntrack stamps
// its verdict on every forwarded packet; its own test compares). The
// tests here use gen and kernel: recorded kernel traces from
// tcpcttest/testdata (no privileges needed), and fresh traces run through
// the kernel when the machine allows (root, nft, ip netns).
//
// The kernel runner injects into LOCAL_OUT, where the IP receive checks
// and nf_conntrack_checksum do not apply. What happens to packets that
// arrive from a network is asked of a veth lab instead (veth_test.go):
// frames written to one end of a veth pair are received on the other and
// forwarded, and the namespace's conntrack statistics and table are read
// after each (TestKernelMalformedIP, TestKernelChecksum).
package conformance
