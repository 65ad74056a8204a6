//go:build !cgo

package c

import "testing"

// TestNeedsCgo says why nothing ran: the differential compiles the C step
// with the host C compiler through cgo.
func TestNeedsCgo(t *testing.T) {
	t.Skip("cgo is off (CGO_ENABLED=0 or no C compiler): the C step's differential tests need it")
}
