package table

import (
	"sync/atomic"
	"unsafe"
)

// loadLines loads the word at each of the first n addresses of lines (an
// index bucket's first word, written only atomically, or a stripe's line,
// never written), which brings its cache line in but waits for it: the
// portable prefetchLines (prefetch_other.go), kept in a file every
// architecture builds so that its tests run everywhere.
func loadLines(lines *unsafe.Pointer, n int) {
	for _, p := range unsafe.Slice(lines, n) {
		atomic.LoadUint64((*uint64)(p))
	}
}
