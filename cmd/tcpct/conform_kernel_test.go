//go:build linux

package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fdac824a/tcpct/internal/conformance/kernel"
)

// TestConformKernel asks the running kernel (root, nft, ip netns; skips
// without them): with the linux profile every probed cell agrees (the
// profile was verified on Linux 6.18), and with a spec whose cell
// original/fin/ESTABLISHED says CLOSE_WAIT instead of FIN_WAIT exactly
// that cell is reported, with the FIN that shows it. Every cell a packet
// can reach is probed. No namespace is left behind.
func TestConformKernel(t *testing.T) {
	if err := kernel.Available(); err != nil {
		t.Skipf("kernel oracle unavailable: %v", err)
	}
	code, out, errs := runCmd(t, nil, "conform", "-format", "jsonl")
	if code != exitOK {
		t.Errorf("linux: status %d, stderr %q\n%s", code, errs, out)
	}
	cells, sum := conformLines(t, out)
	if sum.Differ != 0 || sum.Packets != sum.Agree || sum.Agreeing < 90 || len(cells) != 121 {
		t.Errorf("linux: summary %+v", sum)
	}
	for _, c := range cells {
		// Only the cells no packet can consult stay unprobed: the none
		// class (tcp_error rejects it before the table) and replies
		// without an entry (a first packet is always original).
		if c.Result == "not probed" && c.Class != "none" && !(c.Dir == "reply" && c.State == "NONE") {
			t.Errorf("linux: reachable cell %s not probed", c.Cell)
		}
	}
	t.Logf("linux on %s: %d packets agree, %d cells agree, %d not probed", sum.Kernel, sum.Agree, sum.Agreeing, sum.Unprobed)

	file := writeTemp(t, "edited.spec", editCell(t, "original", "fin", 3, "sCW"))
	code, out, errs = runCmd(t, nil, "conform", "-format", "jsonl", "-spec", file, "-cells", "1000", "-packets", "1000")
	checkOneCellDiffers(t, code, out, errs, "original/fin/ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "CLOSE_WAIT")
	if ns := kernel.Namespaces(); len(ns) != 0 {
		t.Errorf("namespaces left behind: %v", ns)
	}
}

// An interrupt (SIGINT) while the kernel is being asked ends conform with
// status 6 and deletes its namespace.
func TestConformInterrupted(t *testing.T) {
	if err := kernel.Available(); err != nil {
		t.Skipf("kernel oracle unavailable: %v", err)
	}
	type result struct {
		code      int
		out, errs string
	}
	done := make(chan result, 1)
	go func() {
		var r result
		r.code, r.out, r.errs = runCmd(t, nil, "conform")
		done <- r
	}()
	// The namespace exists only once conform catches SIGINT (it starts
	// catching before it creates the namespace).
	deadline := time.Now().Add(20 * time.Second)
	for len(kernel.Namespaces()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("conform created no namespace within 20 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.code != exitNoKernel || !strings.Contains(r.errs, "interrupted") {
		t.Errorf("status %d, stderr %q; want %d and \"interrupted\"", r.code, r.errs, exitNoKernel)
	}
	if ns := kernel.Namespaces(); len(ns) != 0 {
		t.Errorf("namespaces left behind: %v", ns)
	}
}
