package packet

import (
	"encoding/binary"
	"net/netip"
)

// ICMPError describes an ICMP (IPv4, RFC 792) or ICMPv6 (RFC 4443) error
// message and the IP header that carries it: what a router or host sends
// back about a packet it could not deliver, quoting that packet. The
// family comes from Src and Dst.
type ICMPError struct {
	// Src is the error's sender (a router on the path, or the quoted
	// packet's destination), Dst its receiver (normally the quoted
	// packet's source).
	Src, Dst netip.Addr
	// Type and Code: for example 3/3 (port unreachable), 3/4
	// (fragmentation needed), 11/0 (TTL exceeded); ICMPv6 1/4 (port
	// unreachable), 2/0 (packet too big).
	Type, Code uint8
	// Rest is the header's second word: the next-hop MTU of
	// "fragmentation needed", the MTU of "packet too big", the pointer
	// of "parameter problem", a gateway for a redirect; 0 otherwise.
	Rest uint32
	// Quote is the quoted packet from its IP header on, as the error
	// should carry it: a whole built Segment, or a prefix of one (RFC
	// 792 quotes the IP header and 8 bytes; RFC 4443 as much as fits in
	// 1280 bytes), or bytes corrupted on purpose. It is copied as is.
	Quote []byte
	// BadChecksum writes the ICMP checksum plus one, for tests of the
	// checksum knob.
	BadChecksum bool
	IPID        uint16
	TTL         uint8 // 0 means 64
}

// ICMP header length (type, code, checksum, and the second word).
const ICMPHeaderLen = 8

// Append appends the error, starting at its IP header, to b. The ICMP
// checksum covers the message (and, for ICMPv6, the pseudo-header).
func (e *ICMPError) Append(b []byte) ([]byte, error) {
	a, d := e.Src, e.Dst
	if !a.IsValid() || !d.IsValid() || (a.Is4() || a.Is4In6()) != (d.Is4() || d.Is4In6()) {
		return b, ErrFamily
	}
	v6 := !(a.Is4() || a.Is4In6())
	n := ICMPHeaderLen + len(e.Quote)
	ttl := e.TTL
	if ttl == 0 {
		ttl = 64
	}
	start := len(b)
	proto := byte(1)
	if v6 {
		proto = 58
	}
	b, err := appendIP(b, ipHeader{src: a, dst: d, v6: v6, proto: proto, ttl: ttl, id: e.IPID}, n)
	if err != nil {
		return b, err
	}
	var ph uint32 // ICMPv4 has no pseudo-header
	if v6 {
		ph = pseudoSum(b[start:], true, proto, n)
	}
	m := len(b)
	b = grow(b, ICMPHeaderLen)
	b = append(b, e.Quote...)
	icmp := b[m:]
	icmp[0], icmp[1] = e.Type, e.Code
	binary.BigEndian.PutUint32(icmp[4:], e.Rest)
	c := Checksum(icmp, ph)
	if e.BadChecksum {
		c++
	}
	binary.BigEndian.PutUint16(icmp[2:], c)
	return b, nil
}

// Build returns the error as a new slice.
func (e ICMPError) Build() ([]byte, error) { return e.Append(nil) }
