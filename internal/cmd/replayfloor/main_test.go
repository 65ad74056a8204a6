//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/internal/conformance/tracegen"
)

// TestLevels runs every level over a generated capture and checks that
// each went through every packet it should have: the floor is only a
// floor if no packet is left out.
func TestLevels(t *testing.T) {
	path, pkts := writeTrace(t, tracegen.Config{Seed: 7, Packets: 3000})
	mem, err := newMemory()
	if err != nil {
		t.Fatal(err)
	}
	n := len(pkts)
	want := map[string]result{
		"read":  {records: n, tcp: n},
		"parse": {records: n, tcp: n, parsed: n},
		"touch": {records: n, tcp: n, parsed: n, touched: n},
	}
	for _, level := range levels {
		r, err := pass(path, level, mem)
		if err != nil {
			t.Fatal(err)
		}
		w := want[level]
		if r.records != w.records || r.tcp != w.tcp || r.parsed != w.parsed || r.touched != w.touched {
			t.Errorf("%s: records %d, tcp %d, parsed %d, touched %d; want %d, %d, %d, %d",
				level, r.records, r.tcp, r.parsed, r.touched, w.records, w.tcp, w.parsed, w.touched)
		}
	}

	var out bytes.Buffer
	if err := run(&out, path, 1, 5e6); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprintf("%d TCP packets", n), "\nread ", "\nparse ", "\ntouch ", "dependent load in 64 MiB", "at 5.00M packets/s a packet has 200 ns"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output lacks %q:\n%s", s, out.String())
		}
	}
}

// TestTouchSameConnectionSameRecord checks the property that makes the
// touch level a tracker's floor: both directions of a connection reach
// the same bucket, so the same record.
func TestTouchSameConnectionSameRecord(t *testing.T) {
	path, pkts := writeTrace(t, tracegen.Config{Seed: 9, Packets: 400, IPv6: 0.5})
	r, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	byConn := map[int]uint64{}
	distinct := map[uint64]bool{}
	for i := 0; ; i++ {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		h := symmetricHash(p)
		if prev, ok := byConn[pkts[i].Conn]; ok && prev != h {
			t.Fatalf("packet %d of connection %d hashes to %x, its earlier packets to %x", i, pkts[i].Conn, h, prev)
		}
		byConn[pkts[i].Conn] = h
		distinct[h] = true
	}
	// Connections reusing a tuple share a hash on purpose; the others
	// must not all collide.
	if len(byConn) < 10 || len(distinct) < len(byConn)/2 {
		t.Fatalf("%d connections, %d distinct hashes", len(byConn), len(distinct))
	}
}

// writeTrace writes a generated trace as a pcap file and returns its path
// and packets.
func writeTrace(t *testing.T, cfg tracegen.Config) (string, []tracegen.Packet) {
	t.Helper()
	pkts := tracegen.Generate(cfg)
	var b bytes.Buffer
	if err := tracegen.WritePcap(&b, pkts); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "trace.pcap")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, pkts
}
