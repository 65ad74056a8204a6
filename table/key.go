package table

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// Address families, numbered as in Linux (AF_INET, AF_INET6) because that is
// the number /proc/net/nf_conntrack prints after "ipv4"/"ipv6".
const (
	FamilyIPv4 = 2
	FamilyIPv6 = 10
)

// ProtoTCP is IPPROTO_TCP, the only layer-4 protocol tcpct tracks.
const ProtoTCP = 6

// Key is one direction of a connection: the 5-tuple of a packet.
//
// It is five full 64-bit words with no padding: both addresses in 16-byte
// form (IPv4 as the v4-mapped IPv6 address), then the ports, protocol and
// family packed into the last word. Building it with five full-width stores
// avoids the store-forwarding stalls that byte-wise assembly followed by
// 8-byte hash loads causes (a load that spans several smaller stores cannot
// be forwarded from the store buffer), and comparing or
// hashing it is five word operations. The zero Key is not a valid tuple.
type Key struct {
	w [5]uint64
}

// last word layout: sport | dport<<16 | proto<<32 | family<<40
func packTail(sport, dport uint16, proto, family uint8) uint64 {
	return uint64(sport) | uint64(dport)<<16 | uint64(proto)<<32 | uint64(family)<<40
}

// MakeKey builds a key from 16-byte addresses. IPv4 callers should use
// MakeKey4 or pass v4-mapped addresses with family FamilyIPv4.
func MakeKey(family uint8, src, dst *[16]byte, sport, dport uint16) Key {
	return Key{w: [5]uint64{
		binary.LittleEndian.Uint64(src[0:8]),
		binary.LittleEndian.Uint64(src[8:16]),
		binary.LittleEndian.Uint64(dst[0:8]),
		binary.LittleEndian.Uint64(dst[8:16]),
		packTail(sport, dport, ProtoTCP, family),
	}}
}

// v4-mapped prefix ::ffff:0:0/96 as the first 12 bytes, little-endian words.
const v4MappedHi = 0
const v4MappedMid = 0xffff << 16 // bytes 10,11 = 0xff in the low half of word 1

// MakeKey4 builds an IPv4 key from 4-byte addresses (network byte order).
func MakeKey4(src, dst [4]byte, sport, dport uint16) Key {
	return Key{w: [5]uint64{
		v4MappedHi,
		v4MappedMid | uint64(binary.LittleEndian.Uint32(src[:]))<<32,
		v4MappedHi,
		v4MappedMid | uint64(binary.LittleEndian.Uint32(dst[:]))<<32,
		packTail(sport, dport, ProtoTCP, FamilyIPv4),
	}}
}

// KeyFromAddrPorts builds a key from netip values, in the family of the
// addresses as given: IPv4 when both are IPv4, IPv6 otherwise. An
// IPv4-mapped IPv6 address (::ffff:a.b.c.d) stays IPv6, as it is in the
// IPv6 packet that carries it: the kernel tracks such a packet in its IPv6
// table, apart from an IPv4 connection between the same addresses (unmap
// addresses that come from a dual-stack socket first). A pair of mixed
// families, which no packet carries, is keyed as IPv6 with the IPv4
// address in its mapped form rather than rejected.
func KeyFromAddrPorts(src, dst netip.AddrPort) Key {
	s, d := src.Addr(), dst.Addr()
	if s.Is4() && d.Is4() {
		return MakeKey4(s.As4(), d.As4(), src.Port(), dst.Port())
	}
	sa, da := s.As16(), d.As16()
	return MakeKey(FamilyIPv6, &sa, &da, src.Port(), dst.Port())
}

// Family returns FamilyIPv4 or FamilyIPv6.
func (k Key) Family() uint8 { return uint8(k.w[4] >> 40) }

// Proto returns the layer-4 protocol number.
func (k Key) Proto() uint8 { return uint8(k.w[4] >> 32) }

// SrcPort returns the source port.
func (k Key) SrcPort() uint16 { return uint16(k.w[4]) }

// DstPort returns the destination port.
func (k Key) DstPort() uint16 { return uint16(k.w[4] >> 16) }

func wordsAddr(fam uint8, hi, lo uint64) netip.Addr {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[0:8], hi)
	binary.LittleEndian.PutUint64(b[8:16], lo)
	a := netip.AddrFrom16(b)
	if fam == FamilyIPv4 {
		return a.Unmap()
	}
	return a
}

// Src returns the source address (a 4-byte Addr for IPv4).
func (k Key) Src() netip.Addr { return wordsAddr(k.Family(), k.w[0], k.w[1]) }

// Dst returns the destination address (a 4-byte Addr for IPv4).
func (k Key) Dst() netip.Addr { return wordsAddr(k.Family(), k.w[2], k.w[3]) }

// Reverse returns the tuple of the other direction. tcpct does no NAT, so
// the reply tuple is the original with source and destination swapped,
// exactly as nf_ct_invert_tuple computes it for TCP.
func (k Key) Reverse() Key {
	t := k.w[4]
	t = t&^0xffffffff | (t&0xffff)<<16 | (t>>16)&0xffff
	return Key{w: [5]uint64{k.w[2], k.w[3], k.w[0], k.w[1], t}}
}

// IsZero reports whether k is the zero Key.
func (k Key) IsZero() bool { return k == Key{} }

// String renders the key as "src:sport->dst:dport".
func (k Key) String() string {
	return netip.AddrPortFrom(k.Src(), k.SrcPort()).String() + "->" +
		netip.AddrPortFrom(k.Dst(), k.DstPort()).String()
}

// hash mixes the five words with the per-table seed. The folded 64x64->128
// multiply is the mixing step of wyhash (public domain, Wang Yi); with a
// random seed per table it keeps bucket placement unpredictable from outside,
// which together with the bounded probe length (insert_failed instead of a
// long chain, as the kernel's chaintoolong) limits hash flooding.
// Not a cryptographic PRF like the kernel's siphash: documented trade-off.
func (k Key) hash(s *[6]uint64) uint64 {
	a := mix(k.w[0]^s[0], k.w[1]^s[1])
	b := mix(k.w[2]^s[2], k.w[3]^s[3])
	c := mix(k.w[4]^s[4], a^s[5])
	return mix(b^s[5], c^s[0])
}

func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// compare orders keys by their words: source address, destination
// address, then ports, protocol and family packed. It is the tie-break of
// Expire's order, so it must not depend on the hash seed.
func (k *Key) compare(o *Key) int {
	for i := range k.w {
		if k.w[i] != o.w[i] {
			if k.w[i] < o.w[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}
