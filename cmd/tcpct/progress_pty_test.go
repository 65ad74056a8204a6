//go:build linux

package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair; the terminal side's window size is
// left at its initial 0×0.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Skipf("ptsname: %v", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("open pts: %v", err)
	}
	return m, s
}

// TestProgressBarOnUnsizedTerminal: on a terminal that reports a width of
// 0, the bar keeps its fixed width instead of shrinking to "||" (found
// by trying the tool on an unsized pseudo-terminal).
func TestProgressBarOnUnsizedTerminal(t *testing.T) {
	master, tty := openPTY(t)
	defer master.Close()
	if ws, err := unix.IoctlGetWinsize(int(tty.Fd()), unix.TIOCGWINSZ); err != nil || ws.Col != 0 {
		t.Skipf("the new terminal is not unsized: %+v, %v", ws, err)
	}
	var drawn bytes.Buffer
	done := make(chan struct{})
	go func() {
		io.Copy(&drawn, master) // ends with EIO once tty is closed
		close(done)
	}()
	path := filepath.Join(t.TempDir(), "c.pcap")
	if err := os.WriteFile(path, multiConnCapture(t, 6000, 3), 0o644); err != nil {
		t.Fatal(err)
	}
	code := run([]string{"replay", "-format", "jsonl", "-progress", "auto", path}, bytes.NewReader(nil), io.Discard, tty)
	tty.Close()
	<-done
	if code != 0 {
		t.Fatalf("status %d; terminal got %q", code, drawn.String())
	}
	if !regexp.MustCompile(`replay +\d+% \|[^|]{20,}\|`).Match(drawn.Bytes()) {
		t.Errorf("no bar at least 20 columns wide on the unsized terminal: %q", drawn.String())
	}
}
