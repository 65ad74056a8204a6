package table

import "unsafe"

// prefetchLines asks for the cache lines at the first n addresses of
// lines with PREFETCHT0 (prefetch_amd64.s). A load whose value is
// dropped, the portable way to bring a line in, cannot retire before its
// line arrives: a wave of them fills the reorder buffer behind the first
// miss and stalls the core for about one memory latency per wave (16
// index buckets and the stripes of a batch's SYNs, 2026-12-06 profile of
// the 10M-packet replay: 0.49 s of 3.1 s). A prefetch retires at once,
// so the work after it goes on while the lines come.
//
//go:noescape
func prefetchLines(lines *unsafe.Pointer, n int)
