//go:build !amd64

package table

import "unsafe"

// prefetchLines brings in the lines at the first n addresses of lines
// with loads (loadLines): unlike the amd64 version's prefetches, they
// wait for the lines.
func prefetchLines(lines *unsafe.Pointer, n int) { loadLines(lines, n) }
