package conformance

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/packet"
)

// TestKernelMalformedIP asks the kernel which malformed packets conntrack
// counts INVALID when they arrive from a network (received or forwarded
// traffic, what a capture shows): each frame goes through a veth pair
// and the namespace's invalid statistic is read before and after. The
// rule tcpct follows (capture.Packet.TrackedInvalid, the package documentation
// of capture, "IP"): an IP header that the receive path rejects is
// dropped before any hook and never counted; a sound IP packet with a
// TCP header under 20 bytes reaches conntrack and is counted INVALID.
func TestKernelMalformedIP(t *testing.T) {
	l := newVethLab(t, nil)
	syn := func(src, dst netip.Addr, sport uint16) []byte {
		b, err := (&packet.Segment{Src: netip.AddrPortFrom(src, sport), Dst: netip.AddrPortFrom(dst, 80), Seq: 1000, Flags: packet.SYN, Window: 64240}).Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	v4 := func(f func(b []byte) []byte) []byte {
		b := syn(labSrc4, labDst4, 40000)
		b = f(b)
		// A correct header checksum, so that only the fault under test
		// can make the kernel drop the packet.
		if len(b) >= 20 && int(b[0]&15)*4 <= len(b) && b[0]&15 >= 5 {
			b[10], b[11] = 0, 0
			binary.BigEndian.PutUint16(b[10:], packet.Checksum(b[:int(b[0]&15)*4], 0))
		}
		return b
	}
	tot := func(b []byte, n int) { binary.BigEndian.PutUint16(b[2:], uint16(n)) }
	cases := []struct {
		name    string
		ip      []byte
		counted bool // what the kernel does (asserted), and what tcpct must do
	}{
		{"IPv4 IHL 4", v4(func(b []byte) []byte { b[0] = 0x44; return b }), false},
		{"IPv4 total length below the header", v4(func(b []byte) []byte { tot(b, 16); return b }), false},
		{"IPv4 total length beyond the packet", v4(func(b []byte) []byte { tot(b, len(b)+8); return b }), false},
		{"IPv4 options beyond the packet", v4(func(b []byte) []byte { b[0] = 0x4f; tot(b, 40); return b[:40] }), false},
		{"IPv4 TCP header of 12 bytes", v4(func(b []byte) []byte { tot(b, 32); return b[:32] }), true},
		{"IPv4 TCP header of 3 bytes", v4(func(b []byte) []byte { tot(b, 23); return b[:23] }), true},
		{"IPv4 TCP data offset 4", v4(func(b []byte) []byte { b[32] = 4 << 4; return b }), true},
		{"IPv6 payload length beyond the packet", func() []byte {
			b := syn(labSrc6, labDst6, 40001)
			binary.BigEndian.PutUint16(b[4:], uint16(len(b)-40+8))
			return b
		}(), false},
		{"IPv6 destination options beyond the payload", func() []byte {
			b := syn(labSrc6, labDst6, 40003)
			b[6] = 60                              // destination options, then TCP
			opts := []byte{6, 3, 1, 4, 0, 0, 0, 0} // length 3: 32 bytes, more than the packet
			b = append(b[:40:40], append(opts, b[40:]...)...)
			binary.BigEndian.PutUint16(b[4:], uint16(len(b)-40))
			return b
		}(), true},
		{"IPv6 TCP header of 10 bytes", func() []byte {
			b := syn(labSrc6, labDst6, 40002)[:50]
			binary.BigEndian.PutUint16(b[4:], 10)
			return b
		}(), true},
	}
	tr := newTracker(t, nil)
	for _, c := range cases {
		before := l.invalid()
		l.send(l.frame(c.ip))
		got := l.invalid() - before
		var p capture.Packet
		p.Decode(capture.LinkRaw, c.ip, len(c.ip))
		v, err := tr.Track(c.ip, time.Now())
		ours := err == nil && v.CT == fsm.CTInvalid
		t.Logf("%s: kernel invalid +%d; tcpct: %v %q, tracked INVALID %v (%v)", c.name, got, p.Kind, p.Reason, ours, err)
		if (got == 1) != c.counted || got > 1 {
			t.Errorf("%s: the kernel counted %d INVALID, want %v", c.name, got, c.counted)
		}
		if ours != c.counted {
			t.Errorf("%s: tcpct decodes %v %q and counts it INVALID: %v (%v); the kernel counted %d", c.name, p.Kind, p.Reason, ours, err, got)
		}
	}
	// The valid SYN, last: it creates an entry, so the lab works.
	l.send(l.frame(syn(labSrc4, labDst4, 40009)))
	if e := l.entries(); !strings.Contains(e, "SYN_SENT") || !strings.Contains(e, "sport=40009") {
		t.Errorf("a valid SYN through the lab left no entry: %q", e)
	}
}
