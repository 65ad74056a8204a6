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
// testdata/kernel (no privileges needed), and fresh traces run through
// the kernel when the machine allows (root, nft, ip netns).
package conformance
