package capture

import "encoding/binary"

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
	var acc uint64
	switch p.Family {
	case 4:
		acc = sum32(p.IP[12:20], 0)
	case 6:
		acc = sum32(p.IP[8:40], 0)
	default:
		return false, false
	}
	n := uint64(len(p.TCP))
	acc += n>>32 + n&0xffffffff + protoTCP
	acc = sum32(p.TCP, acc)
	for acc>>16 != 0 {
		acc = acc>>16 + acc&0xffff
	}
	return acc == 0xffff, true
}

// sum32 adds b to acc as big-endian 32-bit words (the last one padded
// with zeros), which folds to the same 16-bit one's complement sum as
// adding 16-bit words (2^16 is 1 modulo 0xffff). acc cannot overflow:
// a record is at most MaxRecord bytes.
func sum32(b []byte, acc uint64) uint64 {
	for len(b) >= 4 {
		acc += uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	}
	var tail [4]byte
	copy(tail[:], b)
	return acc + uint64(binary.BigEndian.Uint32(tail[:]))
}
