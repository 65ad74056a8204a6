// Package conformance holds the kernel-differential suite: it replays
// traces through the tracker (package tcpct) and compares every packet's
// verdict with what Linux nf_conntrack decided for the same packet.
//
// Subpackages: gen generates traces, kernel runs them through the real
// kernel in a throw-away network namespace, compare matches two verdict
// streams field by field. The tests here use both: recorded kernel traces
// from testdata/kernel (no privileges needed), and fresh traces run
// through the kernel when the machine allows (root, nft, ip netns).
package conformance
