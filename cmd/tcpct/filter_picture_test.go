package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestExplainFilterKeepsPicture: with a filter, explain -o still draws
// the whole connection: the picture is the one drawn without the filter.
func TestExplainFilterKeepsPicture(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.svg"), filepath.Join(dir, "b.svg")
	const capPath = "../../examples/out-of-window.pcap"
	if code, _, errs := runCmd(t, nil, "explain", "-ct", "INVALID", "-o", a, capPath); code != 0 {
		t.Fatalf("status %d, stderr %q", code, errs)
	}
	if code, _, errs := runCmd(t, nil, "explain", "-conn", "10.1.0.2:40112->10.1.0.80:80", "-o", b, capPath); code != 0 {
		t.Fatalf("status %d, stderr %q", code, errs)
	}
	x, _ := os.ReadFile(a)
	y, _ := os.ReadFile(b)
	if len(x) == 0 || !bytes.Equal(x, y) {
		t.Errorf("the filtered run drew a different picture (%d bytes against %d)", len(x), len(y))
	}
}
