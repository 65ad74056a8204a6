package table

import (
	"unsafe"

	"github.com/fdac824a/tcpct/internal/hugepage"
)

// hugeThreshold is the smallest array that always holds a whole, aligned
// huge page, wherever the heap puts it. It was 4 huge pages: the
// tracker's index and expiry links at the default max (262,144 entries,
// 6 MiB each) stayed on 4 KiB pages, and a random bucket access then also
// missed the TLB.
const hugeThreshold = 2 * (2 << 20)

// adviseHuge asks for huge pages under a large table array and collapses
// those already populated (internal/hugepage). At 1e6 connections and
// beyond every lookup is two dependent random accesses (index bucket,
// record) into hundreds of MiB; with 4 KiB pages each also misses the TLB
// and pays a page walk, which costs as much as the cache miss itself.
func adviseHuge(p unsafe.Pointer, n uintptr) {
	if n >= hugeThreshold {
		hugepage.Advise(p, n, true)
	}
}
