//go:build !amd64

package table

import (
	"sync/atomic"
	"unsafe"
)

// prefetchLines loads the word at each of the first n addresses (an index
// bucket's first word, written only atomically, or a stripe's line,
// never written), which brings its line into the cache but, unlike the
// amd64 version's prefetches, waits for it.
func prefetchLines(lines *unsafe.Pointer, n int) {
	for _, p := range unsafe.Slice(lines, n) {
		atomic.LoadUint64((*uint64)(p))
	}
}
