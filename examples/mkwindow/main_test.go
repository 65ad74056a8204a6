package main

import (
	"bytes"
	"os"
	"testing"
)

// The committed capture is exactly what this program writes, so the
// picture in docs/ and the tests of explain -o rest on a reproducible file.
func TestCommittedCaptureIsCurrent(t *testing.T) {
	got, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../out-of-window.pcap")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("examples/out-of-window.pcap is stale: run go run ./examples/mkwindow")
	}
}
