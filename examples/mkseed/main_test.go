package main

import (
	"bytes"
	"os"
	"testing"
)

// The committed capture is exactly what this program writes, so the golden
// outputs of cmd/tcpct rest on a reproducible file.
func TestCommittedCaptureIsCurrent(t *testing.T) {
	got, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../telnet-seed.pcap")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("examples/telnet-seed.pcap is stale: run go run ./examples/mkseed")
	}
}
