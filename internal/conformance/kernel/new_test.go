package kernel_test

import (
	"strings"
	"testing"

	"github.com/fdac824a/tcpct/internal/conformance/kernel"
)

// A setup that fails after the namespace exists (here a sysctl the kernel
// does not have) is an error naming it, and the namespace is deleted.
func TestNewFailureDeletesNamespace(t *testing.T) {
	if err := kernel.Available(); err != nil {
		t.Skipf("kernel oracle unavailable: %v", err)
	}
	r, err := kernel.New(kernel.Options{Sysctls: map[string]string{"tcp_no_such_knob": "1"}})
	if err == nil || r != nil || !strings.Contains(err.Error(), "tcp_no_such_knob") {
		t.Fatalf("New with an unknown sysctl: runner %v, error %v", r, err)
	}
	if ns := kernel.Namespaces(); len(ns) != 0 {
		t.Errorf("namespaces left behind: %v", ns)
	}
}
