package main

import (
	"bytes"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/packet"
)

// The busiest-connections list is exact over the whole capture, although
// per-connection counts live in table slots that are reused: a connection
// that expired long before the end, whose slot (and even tuple) other
// connections took over, keeps its own count, and a reused tuple is a new
// connection with a count of its own.
func TestBusiestConnectionsSurviveSlotReuse(t *testing.T) {
	var buf bytes.Buffer
	w, err := capture.NewWriter(&buf, capture.LinkRaw, 0)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	at := t0
	srv := netip.MustParseAddrPort("10.9.0.1:80")
	write := func(s packet.Segment) {
		b, err := s.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WritePacket(at, b); err != nil {
			t.Fatal(err)
		}
		at = at.Add(10 * time.Millisecond)
	}
	// conn writes a handshake and data packets data times from cli; it
	// is left idle (it expires with the short ESTABLISHED timeout).
	conn := func(cli netip.AddrPort, data int) {
		const ci, si = 1000, 9000
		write(packet.Segment{Src: cli, Dst: srv, Seq: ci, Flags: packet.SYN, Window: 64240})
		write(packet.Segment{Src: srv, Dst: cli, Seq: si, Ack: ci + 1, Flags: packet.SYN | packet.ACK, Window: 64240})
		for i := range data {
			write(packet.Segment{Src: cli, Dst: srv, Seq: ci + 1 + uint32(10*i), Ack: si + 1, Flags: packet.ACK | packet.PSH, Window: 502, PayloadLen: 10})
		}
	}
	big := netip.MustParseAddrPort("10.1.0.1:40000")
	conn(big, 40) // 42 packets, then expires
	at = at.Add(10 * time.Second)
	// A table of 4 slots: after big expired, 30 other connections take
	// its slot over and over, and big's tuple comes back for 5 packets.
	for c := range 30 {
		conn(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 2, 0, byte(c)}), 40001), 1+c%3)
		at = at.Add(3 * time.Second)
	}
	conn(big, 3)
	code, out, errs := runCmd(t, buf.Bytes(), "replay", "-format", "summary", "-sysctl", "max=4", "-sysctl", "tcp_timeout_established=2", "-")
	if code != 0 || errs != "" {
		t.Fatalf("status %d, stderr %q", code, errs)
	}
	_, top, ok := strings.Cut(out, "busiest connections (original tuple; bytes of TCP header and payload)\n")
	if !ok {
		t.Fatalf("no busiest connections:\n%s", out)
	}
	lines := strings.Split(top, "\n")
	first := regexp.MustCompile(`^\s+42 pkts\s+(\d+) bytes  10\.1\.0\.1:40000->10\.9\.0\.1:80  \(gone\)$`)
	if m := first.FindStringSubmatch(lines[0]); m == nil || m[1] == "0" {
		t.Fatalf("first busiest line %q; want the 42-packet connection, gone\n%s", lines[0], out)
	}
	// The reused tuple's second connection (5 packets, still live) is a
	// connection of its own, listed with the other 5-packet ones.
	if !regexp.MustCompile(`(?m)^\s+5 pkts .*10\.1\.0\.1:40000->10\.9\.0\.1:80  ESTABLISHED \[ASSURED\]$`).MatchString(top) {
		t.Fatalf("the reused tuple's second connection is not listed with its own 5 packets:\n%s", top)
	}
	if n := strings.Count(top, " pkts "); n != topN {
		t.Fatalf("%d busiest lines, want %d", n, topN)
	}
}

// A connection's count and tuple fill one cache line: a new connection
// touches one line of fresh memory, and each of its packets the same line.
func TestConnSlotIsOneCacheLine(t *testing.T) {
	if n := unsafe.Sizeof(connSlot{}); n != 64 {
		t.Fatalf("connSlot is %d bytes, want 64", n)
	}
}
