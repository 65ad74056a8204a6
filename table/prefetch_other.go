//go:build !amd64

package table

import (
	"sync/atomic"
	"unsafe"
)

// prefetchLines loads a word of each of the first n lines (every one is
// 8-byte aligned and holds words only written atomically or under a lock
// the caller holds), which brings it into the cache but, unlike the
// amd64 version's prefetches, waits for it.
func prefetchLines(lines *unsafe.Pointer, n int) {
	for _, p := range unsafe.Slice(lines, n) {
		atomic.LoadUint64((*uint64)(p))
	}
}
