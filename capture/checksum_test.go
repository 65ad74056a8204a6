package capture

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
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
	for _, n := range []int{0, 5, 22, 1448} {
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

// refSum is RFC 1071's sum written the plain way: big-endian 16-bit
// words, an odd last byte padded with a zero, carries folded back in.
func refSum(b []byte) uint16 {
	var s uint32
	for i := 0; i < len(b); i += 2 {
		w := uint32(b[i]) << 8
		if i+1 < len(b) {
			w |= uint32(b[i+1])
		}
		s += w
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// TestSum64MatchesReference: sum64, folded, agrees with refSum over random bytes
// at every alignment and over every length up to 300 (and some longer),
// all tails of 0-7 bytes included, short slices (no 8-byte load back)
// too, with a carry coming in.
func TestSum64MatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, 3))
	buf := make([]byte, 4096+16)
	for round := range 3 {
		for i := range buf {
			switch round {
			case 0:
				buf[i] = byte(rng.Uint32())
			case 1:
				buf[i] = 0xff // carries everywhere
			default:
				buf[i] = byte(rng.Uint32()) | 0xf0
			}
		}
		for n := 0; n <= 4096; n++ {
			if n > 300 && rng.IntN(20) != 0 {
				continue
			}
			off := rng.IntN(16)
			b := buf[off : off+n]
			want := refSum(b)
			if got := bits.ReverseBytes16(fold(sum64(b, 0, 0))); got != want {
				t.Fatalf("round %d, %d bytes at offset %d: sum64 %#04x, reference %#04x", round, n, off, got, want)
			}
			// A carry in adds 1 to the little-endian sum: 0x0100 in the
			// reference's big-endian words.
			w := uint32(want) + 0x0100
			want1 := uint16(w&0xffff + w>>16)
			if got := bits.ReverseBytes16(fold(sum64(b, 0, 1))); got != want1 {
				t.Fatalf("round %d, %d bytes at offset %d, carry in: sum64 %#04x, reference %#04x", round, n, off, got, want1)
			}
		}
	}
}
