package capture

import (
	"encoding/binary"
	"math/bits"
)

// TCPChecksumOK verifies the TCP checksum of a KindTCP record over the
// segment and the IPv4 or IPv6 pseudo-header (RFC 9293 §3.1, RFC 8200
// §8.1), as the kernel's nf_checksum does for conntrack. known is false
// when the record cannot be verified: it is not KindTCP, or the snap
// length cut the segment. (An IPv6 routing header's final destination is
// not looked for: the header's Dst is used.)
//
// Whether a wrong checksum matters is the tracker's business: a capture
// taken on the sending host shows the checksums of segments whose
// checksum the NIC computes later (TX offload) as wrong.
func (p *Packet) TCPChecksumOK() (ok, known bool) {
	if p.Kind != KindTCP || p.Truncated() {
		return false, false
	}
	// The one's complement sum does not depend on the byte order it is
	// computed in (RFC 1071 §2(B)): sum little-endian 64-bit words, the
	// machine's own loads, and add the big-endian 16-bit fields of the
	// pseudo-header byte-swapped.
	var acc, c uint64
	switch p.Family {
	case 4:
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(p.IP[12:20]), 0)
	case 6:
		for i := 8; i < 40; i += 8 {
			acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(p.IP[i:]), c)
		}
	default:
		return false, false
	}
	n := uint32(len(p.TCP))
	acc, c = bits.Add64(acc, uint64(bits.ReverseBytes16(protoTCP))+uint64(bits.ReverseBytes16(uint16(n)))+uint64(bits.ReverseBytes16(uint16(n>>16))), c)
	return fold(sum64(p.TCP, acc, c)) == 0xffff, true
}

// fold folds a 64-bit one's complement sum and its pending carry to 16
// bits, carries wrapping around.
func fold(acc, c uint64) uint16 {
	acc, c = bits.Add64(acc, c, 0)
	acc += c
	s32, c32 := bits.Add32(uint32(acc), uint32(acc>>32), 0)
	s32 += c32
	s16 := s32&0xffff + s32>>16
	s16 = s16&0xffff + s16>>16
	return uint16(s16)
}

// sum64 adds b to acc (with carry c in and out) as little-endian 64-bit
// words, the last one padded with zeros: 32 bytes per round, since a
// full-size segment is most of what a capture holds.
func sum64(b []byte, acc, c uint64) (uint64, uint64) {
	for len(b) >= 32 {
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[8:]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[16:]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[24:]), c)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b), c)
		b = b[8:]
	}
	// The last 0-7 bytes as a little-endian word padded with zeros, from
	// loads of 4, 2 and 1 bytes: copying them into a zeroed [8]byte and
	// loading that back as one word stalled on the copy's narrow stores.
	var w uint64
	i := 0
	if len(b) >= 4 {
		w, i = uint64(binary.LittleEndian.Uint32(b)), 4
	}
	if len(b)-i >= 2 {
		w |= uint64(binary.LittleEndian.Uint16(b[i:])) << (8 * i)
		i += 2
	}
	if len(b)-i >= 1 {
		w |= uint64(b[i]) << (8 * i)
	}
	return bits.Add64(acc, w, c)
}
