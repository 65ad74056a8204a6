package capture

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/fdac824a/tcpct/packet"
)

// TestTCPChecksumOK: craft's segments (checksums computed by an
// independent 16-bit implementation) verify, for IPv4 and IPv6 and odd
// lengths; any flipped bit in the segment or the addresses does not; a
// record cut by the snap length is not known.
func TestTCPChecksumOK(t *testing.T) {
	for _, c := range []struct{ src, dst string }{
		{"192.0.2.1:1234", "198.51.100.7:80"},
		{"[2001:db8::1]:1234", "[2001:db8:ff::7]:443"},
	} {
		for _, n := range []int{0, 1, 2, 3, 4, 5, 6, 7, 1001} { // every length mod 8
			seg := packet.Segment{Src: netip.MustParseAddrPort(c.src), Dst: netip.MustParseAddrPort(c.dst), Seq: 7, Ack: 9,
				Flags: packet.ACK | packet.PSH, Window: 500, PayloadLen: n}
			b, err := seg.Append(nil)
			if err != nil {
				t.Fatal(err)
			}
			var p Packet
			p.Decode(LinkRaw, b, len(b))
			if ok, known := p.TCPChecksumOK(); !ok || !known {
				t.Fatalf("%s payload %d: ok %v known %v", c.src, n, ok, known)
			}
			hdr := len(b) - len(p.TCP)
			for _, i := range []int{hdr - 1, hdr + 16, len(b) - 1} { // an address byte, the checksum, the last byte
				b[i] ^= 0x10
				p.Decode(LinkRaw, b, len(b))
				if ok, known := p.TCPChecksumOK(); ok || !known {
					t.Errorf("%s payload %d, byte %d flipped: ok %v known %v", c.src, n, i, ok, known)
				}
				b[i] ^= 0x10
			}
			p.Decode(LinkRaw, b[:len(b)-1], len(b))
			if _, known := p.TCPChecksumOK(); known && n > 0 {
				t.Errorf("%s payload %d cut by the snap length: known", c.src, n)
			}
		}
	}
	var p Packet
	p.Decode(LinkRaw, []byte{0x45}, 1)
	if _, known := p.TCPChecksumOK(); known {
		t.Error("malformed record: known")
	}
}

func BenchmarkTCPChecksumOK(b *testing.B) {
	for _, n := range []int{0, 1448} {
		seg := packet.Segment{Src: netip.MustParseAddrPort("192.0.2.1:1234"), Dst: netip.MustParseAddrPort("198.51.100.7:80"),
			Flags: packet.ACK, Window: 500, PayloadLen: n, Options: packet.Options{Timestamps: true}}
		pkt, err := seg.Append(nil)
		if err != nil {
			b.Fatal(err)
		}
		var p Packet
		p.Decode(LinkRaw, pkt, len(pkt))
		b.Run(fmt.Sprintf("payload=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(p.TCP)))
			for range b.N {
				if ok, _ := p.TCPChecksumOK(); !ok {
					b.Fatal("bad checksum")
				}
			}
		})
	}
}
