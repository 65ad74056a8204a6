//go:build linux

package table

import (
	"syscall"
	"unsafe"
)

const (
	hugePage     = 2 << 20
	madvHugepage = 14 // MADV_HUGEPAGE
	madvCollapse = 25 // MADV_COLLAPSE (Linux 6.1+; EINVAL before, ignored)
	// hugeThreshold is the smallest array that always holds a whole,
	// aligned huge page, wherever the heap puts it. It was 4 huge pages:
	// the tracker's index and expiry links at the default max (262,144
	// entries, 6 MiB each) stayed on 4 KiB pages, and a random bucket
	// access then also missed the TLB.
	hugeThreshold = 2 * hugePage
)

// adviseHuge asks the kernel to back the 2 MiB-aligned interior of a large
// table array with transparent huge pages. At 1e6 connections and beyond
// every lookup is two dependent random accesses (index bucket, record) into
// hundreds of MiB; with 4 KiB pages each also misses the TLB and pays a page
// walk (two-dimensional under a hypervisor), which costs as much as the
// cache miss itself. With THP in "madvise" mode (the common distribution
// default) Go heap memory is never huge-page backed unless asked.
//
// The memory stays an ordinary Go heap object (pointer-free, never scanned,
// counted in the heap statistics and freed by the GC); madvise only sets a
// flag on the mapping. MADV_COLLAPSE additionally collapses pages that were
// already populated (heap memory reused from earlier objects). Both are
// hints: failures are ignored and the table works the same without them.
func adviseHuge(p unsafe.Pointer, n uintptr) {
	if n < hugeThreshold {
		return
	}
	start := uintptr(p)
	a := (start + hugePage - 1) &^ (hugePage - 1)
	e := (start + n) &^ (hugePage - 1)
	if e <= a {
		return
	}
	b := unsafe.Slice((*byte)(p), n)[a-start : e-start]
	_ = syscall.Madvise(b, madvHugepage)
	_ = syscall.Madvise(b, madvCollapse)
}
