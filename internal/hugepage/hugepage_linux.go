//go:build linux

// Package hugepage asks Linux to back large pointer-free arrays of the Go
// heap with transparent huge pages.
//
// With THP in "madvise" mode (the common distribution default) Go heap
// memory is never huge-page backed unless asked. For the connection
// table's arrays and the summary's per-connection counters, touched at
// random or first written one connection after another, 4 KiB pages mean
// a TLB miss with a page walk (two-dimensional under a hypervisor) on
// most accesses and a page fault every few dozen connections; a 2 MiB
// page saves both. The memory stays an ordinary Go heap object (counted,
// never scanned, freed by the GC): madvise only sets a flag on the
// mapping. Every call is a hint: failures are ignored, and the program
// works the same without them.
package hugepage

import (
	"syscall"
	"unsafe"
)

const (
	size         = 2 << 20
	madvHugepage = 14 // MADV_HUGEPAGE
	madvCollapse = 25 // MADV_COLLAPSE (Linux 6.1+; EINVAL before, ignored)
)

// Advise asks for huge pages on the 2 MiB-aligned interior of the n bytes
// at p (MADV_HUGEPAGE). With collapse it also collapses the pages already
// populated there (MADV_COLLAPSE: heap memory reused from earlier objects),
// which populates the whole interior at once.
func Advise(p unsafe.Pointer, n uintptr, collapse bool) {
	start := uintptr(p)
	a := (start + size - 1) &^ (size - 1)
	e := (start + n) &^ (size - 1)
	if e <= a {
		return
	}
	b := unsafe.Slice((*byte)(p), n)[a-start : e-start]
	_ = syscall.Madvise(b, madvHugepage)
	if collapse {
		_ = syscall.Madvise(b, madvCollapse)
	}
}
