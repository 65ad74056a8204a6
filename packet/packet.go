// Package packet builds raw IPv4 and IPv6 TCP packets, IP header first,
// with correct checksums and the TCP options conntrack looks at (MSS,
// window scale, SACK-permitted, SACK blocks, timestamps): the packets a
// test, an example or a trace generator feeds to tcpct.Tracker.Track.
//
//	b, err := packet.Segment{
//		Src:   netip.MustParseAddrPort("10.0.0.1:40000"),
//		Dst:   netip.MustParseAddrPort("10.0.0.2:80"),
//		Flags: packet.SYN, Seq: 1000, Window: 65535,
//		Options: packet.Options{MSS: 1460, SACKPermitted: true},
//	}.Build()
//
// Every field that influences nf_conntrack's decision (flags, sequence
// and acknowledgement numbers, raw window, option layout, payload length)
// is set explicitly, and nothing is "fixed up" behind the caller's back.
// Decoding lives in package capture.
//
// Building is allocation-free when the destination slice has capacity:
// [Segment.Append] only appends.
package packet

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/fdac824a/tcpct/spec"
)

// Flags are the TCP header flag bits, in wire order (RFC 9293 §3.1, plus
// ECE and CWR from RFC 3168): the one flag type of the module (spec.Flags,
// which tcpct.Segment carries too), so a built packet's flags and a parsed
// one's compare directly.
type Flags = spec.Flags

// TCP flag bits.
const (
	FIN = spec.FIN
	SYN = spec.SYN
	RST = spec.RST
	PSH = spec.PSH
	ACK = spec.ACK
	URG = spec.URG
	ECE = spec.ECE
	CWR = spec.CWR
)

// SACKBlock is one SACK block (RFC 2018): the left edge and the sequence
// number just past the right edge.
type SACKBlock struct{ Left, Right uint32 }

// Options are the TCP options to emit. The zero value emits none. Options
// are written in the order Linux uses on a SYN (MSS, SACK-permitted,
// timestamps, window scale) and padded with NOPs so the header length is a
// multiple of four; conntrack parses any order, but a familiar layout keeps
// captures easy to read in Wireshark.
type Options struct {
	MSS           uint16 // 0: no MSS option
	WScale        uint8  // shift count; sent only when HasWScale
	HasWScale     bool
	SACKPermitted bool
	Timestamps    bool // emit TSval/TSecr
	TSVal, TSEcr  uint32
	// SACK blocks; at most 4, or 3 together with timestamps (40 bytes of
	// option space).
	SACK []SACKBlock
}

// Len is the encoded length of the options in bytes, padding included.
func (o *Options) Len() int {
	n := 0
	if o.MSS != 0 {
		n += 4
	}
	if o.SACKPermitted {
		n += 2
	}
	if o.Timestamps {
		n += 10
	}
	if o.HasWScale {
		n += 3
	}
	if len(o.SACK) > 0 {
		n += 2 + 8*len(o.SACK)
	}
	return (n + 3) &^ 3
}

// Segment describes one TCP segment and the IP header that carries it. The
// address family comes from Src and Dst, which must agree.
type Segment struct {
	Src, Dst netip.AddrPort
	Seq, Ack uint32
	Flags    Flags
	Window   uint16 // raw (unscaled) window field
	Urgent   uint16
	Options  Options
	// Payload is copied in when non-nil; otherwise PayloadLen bytes of a
	// fixed filler pattern are written.
	Payload    []byte
	PayloadLen int
	// IPID is the IPv4 identification field; FlowLabel the low 20 bits of
	// the IPv6 flow label. Neither influences conntrack, which makes them a
	// convenient place for a packet number.
	IPID      uint16
	FlowLabel uint32
	TTL       uint8 // IPv4 TTL / IPv6 hop limit; 0 means 64
}

// Errors returned by Append.
var (
	ErrFamily  = errors.New("packet: source and destination must both be valid and of the same family")
	ErrOptions = errors.New("packet: TCP options exceed 40 bytes")
	ErrTooLong = errors.New("packet: packet exceeds the IP length field")
)

// Header lengths.
const (
	IPv4HeaderLen = 20
	IPv6HeaderLen = 40
	TCPHeaderLen  = 20
)

func (s *Segment) payloadLen() int {
	if s.Payload != nil {
		return len(s.Payload)
	}
	return s.PayloadLen
}

// Len is the total length of the packet Append will produce.
func (s *Segment) Len() int {
	ip := IPv4HeaderLen
	if s.Src.Addr().Is6() && !s.Src.Addr().Is4In6() {
		ip = IPv6HeaderLen
	}
	return ip + TCPHeaderLen + s.Options.Len() + s.payloadLen()
}

func (s *Segment) family() (v6 bool, err error) {
	a, b := s.Src.Addr(), s.Dst.Addr()
	if !a.IsValid() || !b.IsValid() {
		return false, ErrFamily
	}
	a4, b4 := a.Is4() || a.Is4In6(), b.Is4() || b.Is4In6()
	if a4 != b4 {
		return false, ErrFamily
	}
	return !a4, nil
}

// Append appends the packet, starting at the IP header, to b and returns the
// extended slice. IP and TCP checksums are computed; the IPv4 header carries
// DF and no options.
func (s *Segment) Append(b []byte) ([]byte, error) {
	v6, err := s.family()
	if err != nil {
		return b, err
	}
	olen := s.Options.Len()
	if olen > 40 {
		return b, ErrOptions
	}
	tcpLen := TCPHeaderLen + olen + s.payloadLen()
	ttl := s.TTL
	if ttl == 0 {
		ttl = 64
	}
	start := len(b)
	b, err = appendIP(b, ipHeader{src: s.Src.Addr(), dst: s.Dst.Addr(), v6: v6, proto: 6, ttl: ttl,
		id: s.IPID, df: true, flow: s.FlowLabel}, tcpLen)
	if err != nil {
		return b, err
	}
	ipEnd := len(b)
	b = grow(b, TCPHeaderLen+olen)
	t := b[ipEnd:]
	binary.BigEndian.PutUint16(t[0:], s.Src.Port())
	binary.BigEndian.PutUint16(t[2:], s.Dst.Port())
	binary.BigEndian.PutUint32(t[4:], s.Seq)
	binary.BigEndian.PutUint32(t[8:], s.Ack)
	t[12] = byte((TCPHeaderLen+olen)/4) << 4
	t[13] = byte(s.Flags)
	binary.BigEndian.PutUint16(t[14:], s.Window)
	t[16], t[17] = 0, 0
	binary.BigEndian.PutUint16(t[18:], s.Urgent)
	s.Options.put(t[TCPHeaderLen : TCPHeaderLen+olen])
	if s.Payload != nil {
		b = append(b, s.Payload...)
	} else {
		for n := s.PayloadLen; n > 0; {
			k := min(n, len(filler))
			b = append(b, filler[:k]...)
			n -= k
		}
	}
	seg := b[ipEnd:]
	binary.BigEndian.PutUint16(seg[16:], Checksum(seg, pseudoSum(b[start:ipEnd], v6, 6, len(seg))))
	return b, nil
}

// ipHeader is the IP header Append writes in front of a TCP segment or an
// ICMP message: IPv4 without options, IPv6 without extension headers.
type ipHeader struct {
	src, dst   netip.Addr
	v6         bool
	proto, ttl byte
	id         uint16 // IPv4: identification
	df         bool   // IPv4: don't fragment
	flow       uint32 // IPv6: flow label (low 20 bits)
}

// appendIP appends h, for a payload of n bytes, to b, with the IPv4
// header checksum computed.
func appendIP(b []byte, h ipHeader, n int) ([]byte, error) {
	start := len(b)
	if h.v6 {
		if n > 0xffff {
			return b, ErrTooLong
		}
		b = grow(b, IPv6HeaderLen)
		p := b[start:]
		binary.BigEndian.PutUint32(p[0:], 6<<28|h.flow&0xfffff)
		binary.BigEndian.PutUint16(p[4:], uint16(n))
		p[6], p[7] = h.proto, h.ttl
		src, dst := h.src.As16(), h.dst.As16()
		copy(p[8:24], src[:])
		copy(p[24:40], dst[:])
		return b, nil
	}
	if IPv4HeaderLen+n > 0xffff {
		return b, ErrTooLong
	}
	b = grow(b, IPv4HeaderLen)
	p := b[start:]
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(IPv4HeaderLen+n))
	binary.BigEndian.PutUint16(p[4:], h.id)
	if h.df {
		binary.BigEndian.PutUint16(p[6:], 0x4000)
	}
	p[8], p[9] = h.ttl, h.proto
	src, dst := h.src.Unmap().As4(), h.dst.Unmap().As4()
	copy(p[12:16], src[:])
	copy(p[16:20], dst[:])
	binary.BigEndian.PutUint16(p[10:], Checksum(p[:IPv4HeaderLen], 0))
	return b, nil
}

// pseudoSum is the one's-complement sum of the pseudo-header (RFC 9293
// 3.1, RFC 8200 8.1) of an upper-layer message of n bytes of protocol
// proto behind the IP header ip, for its checksum.
func pseudoSum(ip []byte, v6 bool, proto byte, n int) uint32 {
	if v6 {
		return sum(ip[8:40], 0) + uint32(n) + uint32(proto)
	}
	return sum(ip[12:20], 0) + uint32(n) + uint32(proto)
}

// put writes the options into o, which has exactly o.Len() bytes.
func (o *Options) put(p []byte) {
	i := 0
	if o.MSS != 0 {
		p[0], p[1] = 2, 4
		binary.BigEndian.PutUint16(p[2:], o.MSS)
		i = 4
	}
	if o.SACKPermitted {
		p[i], p[i+1] = 4, 2
		i += 2
	}
	if o.Timestamps {
		p[i], p[i+1] = 8, 10
		binary.BigEndian.PutUint32(p[i+2:], o.TSVal)
		binary.BigEndian.PutUint32(p[i+6:], o.TSEcr)
		i += 10
	}
	if o.HasWScale {
		p[i], p[i+1], p[i+2] = 3, 3, o.WScale
		i += 3
	}
	if len(o.SACK) > 0 {
		p[i], p[i+1] = 5, byte(2+8*len(o.SACK))
		i += 2
		for _, blk := range o.SACK {
			binary.BigEndian.PutUint32(p[i:], blk.Left)
			binary.BigEndian.PutUint32(p[i+4:], blk.Right)
			i += 8
		}
	}
	for ; i < len(p); i++ {
		p[i] = 1 // NOP; EOL would also do, NOP matches what stacks send
	}
}

// filler is the payload written when Segment.Payload is nil: a repeating
// alphabet, recognisable in a hex dump.
var filler = func() (f [26 * 64]byte) {
	for i := range f {
		f[i] = byte('a' + i%26)
	}
	return
}()

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		b = b[:len(b)+n]
		clear(b[len(b)-n:])
		return b
	}
	return append(b, make([]byte, n)...)
}

// sum adds p as big-endian 16-bit words to acc without folding.
func sum(p []byte, acc uint32) uint32 {
	for len(p) >= 2 {
		acc += uint32(p[0])<<8 | uint32(p[1])
		p = p[2:]
	}
	if len(p) == 1 {
		acc += uint32(p[0]) << 8
	}
	return acc
}

// Checksum returns the Internet checksum (RFC 1071) of p. initial is a
// partial, unfolded sum to start from, such as a pseudo-header's; 0 for none.
func Checksum(p []byte, initial uint32) uint16 {
	acc := uint64(sum(p, 0)) + uint64(initial)
	for acc>>16 != 0 {
		acc = acc&0xffff + acc>>16
	}
	return ^uint16(acc)
}

// Build returns the packet as a new slice: Append for a literal, in one
// line.
func (s Segment) Build() ([]byte, error) { return s.Append(nil) }
