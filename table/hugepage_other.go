//go:build !linux

package table

import "unsafe"

func adviseHuge(p unsafe.Pointer, n uintptr) {}
