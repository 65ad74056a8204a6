package tcpct

import (
	"encoding/binary"
	"net/netip"
	"strconv"

	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/table"
)

// ICMP errors that quote a TCP segment.
//
// A router or host that cannot deliver a TCP segment answers with an ICMP
// (or ICMPv6) error carrying the segment's IP header and the start of its
// TCP header. Linux's nf_conntrack (net/netfilter/nf_conntrack_core.c,
// nf_conntrack_in → nf_conntrack_handle_icmp; Linux 6.18) hands such a
// packet to nf_conntrack_icmpv4_error (nf_conntrack_proto_icmp.c) or
// nf_conntrack_icmpv6_error (nf_conntrack_proto_icmpv6.c), which check
// the ICMP header and then call nf_conntrack_inet_error:
//
//   - An ICMP header shorter than 8 bytes: INVALID ("short packet").
//   - With nf_conntrack_checksum on, in PRE_ROUTING only (the checksum
//     knob): a wrong ICMP checksum is INVALID ("bad hw icmp checksum";
//     ICMPv6: "ICMPv6 checksum failed", over the IPv6 pseudo-header).
//   - ICMP types above 18 (NR_ICMP_TYPES) are INVALID ("invalid icmp
//     type"). Errors are destination unreachable (3), source quench (4),
//     redirect (5), time exceeded (11) and parameter problem (12)
//     (icmp_is_err); any other type goes to the ICMP tracker itself. For
//     ICMPv6 every type below 128 is an error (RFC 4443 §2.1: the high
//     bit clear), the others are informational.
//   - The quoted packet's tuple is read as for any packet
//     (nf_ct_get_tuplepr): for IPv4 a 20-byte IP header whose fragment
//     offset is 0 and whose header length does not pass the end of the
//     packet, for IPv6 a 40-byte header and the extension headers
//     ipv6_skip_exthdr walks, then 4 bytes of TCP: only the ports. No
//     other field of the quoted headers is checked (not the version, the
//     lengths, the IP or TCP checksum, the flags), and the quoted header
//     length may be below 20 bytes. Without a tuple: INVALID, no log.
//   - The inverted tuple is looked up. Not found (no entry, or an entry
//     past its deadline): INVALID, no log.
//   - The entry's destination in the matched direction — the quoted
//     packet's source — must be the error's destination: otherwise
//     INVALID ("outer daddr A != inner B").
//   - Otherwise the packet is RELATED to the entry, in the direction the
//     inverted tuple has in it (an error about an original-direction
//     segment travels in the reply direction). The entry is neither
//     changed nor refreshed, and nothing is counted in it.
//
// The kernel counts every such INVALID in /proc/net/stat/nf_conntrack's
// "icmp_error" column, not in "invalid" (Stats.ICMPErrors).
//
// The rules are Linux 6.18's for every profile: the tutorial profile's
// 2.4-era kernel (icmp_error_track) decided ICMP errors with rules of its
// own that tcpct does not model.
//
// tcpct judges ICMP errors whose quoted packet is TCP, and ICMP headers
// the kernel rejects before looking inside (too short, an unknown type,
// a bad checksum with the knob on). An error quoting UDP or another
// protocol, and informational ICMP (echo, neighbour discovery), belong to
// trackers tcpct does not model: Track returns ErrNotTCP for them, and
// PacketOf does not make an ICMP packet of them.

// ICMP says what an ICMP or ICMPv6 packet is, for the tracker: its type
// and code and, in a Verdict, the outcome. The zero ICMP (Family 0) is
// no ICMP packet.
type ICMP struct {
	// Family is 4 for ICMP over IPv4, 6 for ICMPv6; 0 when the packet is
	// not ICMP.
	Family uint8
	// Type and Code are the ICMP header's.
	Type, Code uint8
	// Outcome is what the tracker made of it. In a Packet it is the
	// outcome decided before the lookup: ICMPLookup when the quoted tuple
	// is to be looked up.
	Outcome ICMPOutcome
	// BadChecksum: the ICMP checksum is wrong (set by PacketOf and
	// Track when the packet was whole). The tracker acts on it only with
	// the checksum knob on, as the kernel does in PRE_ROUTING.
	BadChecksum bool
}

// ICMPOutcome is what the tracker made of an ICMP error.
type ICMPOutcome uint8

const (
	// ICMPLookup: the quoted tuple is to be looked up (a Packet's
	// outcome before tracking; never a Verdict's).
	ICMPLookup ICMPOutcome = iota
	// ICMPRelated: the packet is RELATED to the entry it quotes.
	ICMPRelated
	// ICMPShort: the ICMP header is shorter than 8 bytes.
	ICMPShort
	// ICMPBadChecksum: the checksum knob is on and the ICMP checksum is
	// wrong.
	ICMPBadChecksum
	// ICMPBadType: an ICMP (IPv4) type above 18.
	ICMPBadType
	// ICMPNoTuple: the quoted IP or TCP header is too short (or a
	// non-first fragment) to give a tuple.
	ICMPNoTuple
	// ICMPNoEntry: no live entry matches the quoted tuple.
	ICMPNoEntry
	// ICMPOuterDaddr: an entry matches, but the error's destination is
	// not the quoted packet's source.
	ICMPOuterDaddr
	numICMPOutcomes
)

var icmpOutcomeText = [numICMPOutcomes]string{
	ICMPLookup:      "",
	ICMPRelated:     "",
	ICMPShort:       "short packet",
	ICMPBadChecksum: "bad hw icmp checksum",
	ICMPBadType:     "invalid icmp type",
	// Not logged by the kernel: tcpct's words.
	ICMPNoTuple: "icmp error: the quoted header holds no tuple",
	ICMPNoEntry: "icmp error: no connection matches the quoted header",
	// The kernel's message names the two addresses; tcpct's reason is
	// its fixed part, so that it costs no allocation.
	ICMPOuterDaddr: "outer daddr != inner",
}

// icmpRelatedText[f][type] is the reason of a RELATED verdict: the
// error's name (f: 0 ICMP, 1 ICMPv6).
var icmpRelatedText [2][256]string

func init() {
	for t := range 256 {
		icmpRelatedText[0][t] = "related: icmp error type " + strconv.Itoa(t)
		icmpRelatedText[1][t] = "related: icmpv6 error type " + strconv.Itoa(t)
	}
	for t, n := range map[int]string{3: "destination unreachable", 4: "source quench", 5: "redirect", 11: "time exceeded", 12: "parameter problem"} {
		icmpRelatedText[0][t] = "related: icmp " + n
	}
	for t, n := range map[int]string{1: "destination unreachable", 2: "packet too big", 3: "time exceeded", 4: "parameter problem"} {
		icmpRelatedText[1][t] = "related: icmpv6 " + n
	}
}

// String is the outcome's reason text, as ICMP.Text gives it (without
// the error's name for ICMPRelated).
func (o ICMPOutcome) String() string {
	if o < numICMPOutcomes {
		if o == ICMPRelated {
			return "related"
		}
		return icmpOutcomeText[o]
	}
	return "icmp outcome(?)"
}

// Text is the reason a verdict on this ICMP packet gives: the kernel's
// log message for an INVALID one where it logs one, tcpct's words where
// it does not, and for RELATED the error's name. "" for the zero ICMP.
func (i *ICMP) Text() string {
	switch {
	case i.Family == 0:
		return ""
	case i.Outcome == ICMPRelated:
		f := 0
		if i.Family == 6 {
			f = 1
		}
		return icmpRelatedText[f][i.Type]
	case i.Outcome == ICMPBadChecksum && i.Family == 6:
		return "ICMPv6 checksum failed"
	}
	return i.Outcome.String()
}

// ICMP protocol numbers and the kernel's limits.
const (
	protoICMP   = 1
	protoICMPv6 = 58
	protoTCP    = 6
	nrICMPTypes = 18 // NR_ICMP_TYPES (include/uapi/linux/icmp.h)
)

// IsICMP reports whether a decoded record is an ICMP or ICMPv6 packet
// that the tracker judges: an error quoting TCP, or an ICMP header the
// kernel rejects before looking inside. PacketOf makes its Packet.
func IsICMP(p *capture.Packet) bool {
	_, _, ok := parseICMP(p)
	return ok
}

// parseICMP reads an ICMP error as nf_conntrack_icmpv4_error and
// nf_conntrack_icmpv6_error do, up to the lookup. ok is false for what
// the tracker does not judge (not ICMP, informational ICMP, an error
// quoting another protocol than TCP).
func parseICMP(p *capture.Packet) (k table.Key, i ICMP, ok bool) {
	if p.Kind != capture.KindNonTCP {
		return k, i, false
	}
	switch {
	case p.Family == 4 && p.Proto == protoICMP:
	case p.Family == 6 && p.Proto == protoICMPv6:
	default:
		return k, i, false
	}
	off := p.IPLen - p.IPPayloadLen
	if off < 0 || off > len(p.IP) {
		return k, i, false
	}
	// b is the ICMP message as captured; whole when the snap length
	// kept all of it. The kernel reads up to the end of the IP packet.
	b := p.IP[off:]
	whole := len(b) >= p.IPPayloadLen
	i.Family = p.Family
	if len(b) >= 2 {
		i.Type, i.Code = b[0], b[1]
	}
	if len(b) < 8 {
		if whole {
			i.Outcome = ICMPShort
			return k, i, true
		}
		return k, i, false // cut by the capture: unknown
	}
	i.Type, i.Code = b[0], b[1]
	if whole {
		i.BadChecksum = !icmpChecksumOK(p, b)
	}
	if p.Family == 4 {
		switch {
		case i.Type > nrICMPTypes:
			i.Outcome = ICMPBadType
		case i.Type == 3, i.Type == 4, i.Type == 5, i.Type == 11, i.Type == 12: // icmp_is_err
		default:
			return k, i, false
		}
	} else if i.Type >= 128 {
		return k, i, false
	}
	src, dst, sport, dport, proto, ports, tupleOK := quotedTuple(p.Family, b[8:])
	switch {
	case ports && proto != protoTCP:
		if i.Outcome == ICMPLookup {
			return k, i, false // another tracker's error
		}
	case ports:
		// The quoted segment went src→dst; the kernel looks the
		// inverted tuple up. Where it does not (a rejected header, a
		// quoted later fragment), the tracker still looks, to show the
		// connection the error names.
		k = keyOf(dst, src, dport, sport)
	}
	if i.Outcome == ICMPLookup {
		switch {
		case !tupleOK:
			i.Outcome = ICMPNoTuple
		case src != p.Dst:
			// The kernel's check after the lookup; related makes it
			// count only when an entry is found.
			i.Outcome = ICMPOuterDaddr
		}
	}
	return k, i, true
}

// quotedTuple reads the tuple of the packet an ICMP error quotes, q
// being the bytes from its IP header to the end of the error, as
// nf_ct_get_tuplepr does (ipv4_get_l4proto / ipv6_get_l4proto, then
// nf_ct_get_tuple_ports). The quoted header's family is the error's.
// ports says whether the addresses, the protocol and (for TCP) the ports
// could be read at all; ok whether the kernel reads them (it refuses a
// quoted IPv4 fragment other than the first, and IPv6 extension headers
// that do not fit).
func quotedTuple(family uint8, q []byte) (src, dst netip.Addr, sport, dport uint16, proto uint8, ports, ok bool) {
	var l4 int
	ok = true
	if family == 4 {
		if len(q) < 20 {
			return src, dst, 0, 0, 0, false, false
		}
		ok = binary.BigEndian.Uint16(q[6:])&0x1fff == 0
		l4 = int(q[0]&15) * 4
		if l4 > len(q) {
			return src, dst, 0, 0, 0, false, false
		}
		proto = q[9]
		src, dst = netip.AddrFrom4([4]byte(q[12:16])), netip.AddrFrom4([4]byte(q[16:20]))
	} else {
		if len(q) < 7 {
			return src, dst, 0, 0, 0, false, false
		}
		var frag bool
		if l4, proto, frag = skipExt(q, q[6]); l4 < 0 || len(q) < 40 {
			return src, dst, 0, 0, 0, false, false
		}
		ok = !frag
		src, dst = netip.AddrFrom16([16]byte(q[8:24])), netip.AddrFrom16([16]byte(q[24:40]))
	}
	if proto != protoTCP {
		// Another tracker's tuple; its ports are its business.
		return src, dst, 0, 0, proto, true, ok
	}
	if len(q) < l4+4 {
		return src, dst, 0, 0, proto, false, false
	}
	return src, dst, binary.BigEndian.Uint16(q[l4:]), binary.BigEndian.Uint16(q[l4+2:]), proto, true, ok
}

// skipExt walks IPv6 extension headers from offset 40 as the kernel's
// ipv6_skip_exthdr does (net/ipv6/exthdrs_core.c): it returns the
// upper-layer offset (-1 when a header does not fit or is "no next
// header"), the upper-layer protocol, and whether a fragment header with
// a non-zero offset stopped the walk.
func skipExt(q []byte, nh uint8) (off int, proto uint8, frag bool) {
	off = 40
	for {
		switch nh {
		case 0, 43, 60: // hop-by-hop, routing, destination options
		case 44: // fragment
		case 51: // AH
		case 59: // no next header
			return -1, nh, false
		default:
			return off, nh, false
		}
		if off+2 > len(q) {
			return -1, nh, false
		}
		var n int
		switch nh {
		case 44:
			if off+4 > len(q) {
				return -1, nh, false
			}
			if binary.BigEndian.Uint16(q[off+2:])&^7 != 0 {
				return off, q[off], true
			}
			n = 8
		case 51:
			n = (int(q[off+1]) + 2) * 4
		default:
			n = (int(q[off+1]) + 1) * 8
		}
		nh = q[off]
		off += n
	}
}

// icmpChecksumOK verifies the checksum of the whole ICMP message b: for
// ICMP the Internet checksum of the message (RFC 792), for ICMPv6 with
// the IPv6 pseudo-header (RFC 4443 §2.3).
func icmpChecksumOK(p *capture.Packet, b []byte) bool {
	var sum uint32
	if p.Family == 6 {
		s, d := p.Src.As16(), p.Dst.As16()
		sum = sum16(sum, s[:])
		sum = sum16(sum, d[:])
		sum += uint32(len(b)>>16) + uint32(len(b)&0xffff) + protoICMPv6
	}
	sum = sum16(sum, b)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return sum == 0xffff
}

func sum16(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
		if sum > 1<<31 {
			sum = sum&0xffff + sum>>16
		}
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

// related fills *v with the verdict on an ICMP error (a Packet from
// PacketOf, or one Track parsed): the checks the kernel makes before the
// lookup, then the lookup of the inverted quoted tuple. It reads the
// entry without locking it: the error changes nothing in it.
func (tr *Tracker) related(v *Verdict, k *table.Key, i ICMP, now int64) {
	cs := tr.counter()
	cs.icmp.Add(1)
	tr.t.Reclaim(now)
	if i.BadChecksum && i.Outcome != ICMPShort && tr.m.Checksums() {
		i.Outcome = ICMPBadChecksum
	}
	// The class of a packet without a TCP header: the profile's "none".
	var zero fsm.Conn
	none := tr.m.Step(&zero, &fsm.Segment{Malformed: fsm.ReasonTruncated}, fsm.Original, now).Class
	*v = Verdict{Verdict: fsm.Verdict{CT: fsm.CTInvalid, Class: none, Cell: fsm.CellNone}, now: now, p: tr.p}
	if k.IsZero() {
		v.ICMP = i
		cs.icmpErrors.Add(1)
		return
	}
	v.Key = k.Reverse() // the quoted segment's own tuple, until an entry says otherwise
	s, d, ok := tr.t.Get(*k, now)
	if !ok {
		if i.Outcome == ICMPLookup || i.Outcome == ICMPOuterDaddr {
			i.Outcome = ICMPNoEntry
		}
	} else {
		v.Key = s.Key
		v.Dir = fsm.Dir(d)
		v.Old, v.New = s.V.State, s.V.State
		v.Entry, v.State, v.deadline = true, s.V.State, s.V.Deadline
		v.Assured, v.SeenReply = s.V.Assured(), s.V.SeenReply()
		v.Ref = s.Ref
		if i.Outcome == ICMPLookup {
			i.Outcome = ICMPRelated
			v.CT = fsm.CTRelated
		}
	}
	v.ICMP = i
	if v.CT == fsm.CTInvalid {
		cs.icmpErrors.Add(1)
	}
}
