package capture

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"time"
)

// Kind classifies a record by what the tracker can do with it.
type Kind uint8

const (
	// KindTCP: an unfragmented IPv4 or IPv6 packet carrying at least a
	// 20-byte TCP header. TCP, SrcPort and DstPort are set.
	KindTCP Kind = iota
	// KindNonTCP: a well-formed IP packet whose upper-layer protocol is not
	// TCP (Proto says which; 50 for ESP and 59 for IPv6 "no next header").
	KindNonTCP
	// KindNonIP: the link layer carries something other than IPv4/IPv6
	// (ARP, LLDP, 802.3 LLC, netlink, ...).
	KindNonIP
	// KindFragment: an IPv4 or IPv6 fragment. Conntrack runs after
	// defragmentation, so a fragment on its own is never a TCP segment to
	// the tracker; see the package documentation for the policy.
	KindFragment
	// KindMalformed: a header is truncated or inconsistent (Reason says
	// which). Family, addresses and Proto are set as far as the IP header
	// was read; [Packet.TrackedInvalid] tells a packet that conntrack sees
	// and counts INVALID (a sound IP packet whose TCP header is
	// incomplete) from one whose IP header the kernel drops before
	// conntrack.
	KindMalformed
)

var kindNames = [...]string{"TCP", "NonTCP", "NonIP", "Fragment", "Malformed"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Packet is one capture record, decoded down to the TCP header.
//
// The Reader reuses a single Packet and its slices alias the Reader's
// buffer: everything is valid until the next call to Next. Copy what must
// outlive it (netip.Addr and the integer fields are values already).
type Packet struct {
	Index     int      // 0-based record number, counting every packet record
	Offset    int64    // offset of the record header / pcapng block in the (decompressed) stream
	Time      int64    // capture time in nanoseconds since the Unix epoch
	Interface int      // pcapng interface ID; 0 for pcap
	Link      LinkType // link type of the record's interface
	OrigLen   int      // length on the wire as the capture header says (>= len(Data))
	Data      []byte   // the record as captured, link header included

	Kind   Kind
	Reason string // why the record is not KindTCP; empty for KindTCP

	// IP layer; Family is 0 when no IP header was decoded.
	//
	// IP is the packet from its IP header on, a window of Data: set
	// whenever the link layer says IPv4 or IPv6 follows (or, for raw IP,
	// the version nibble does), even if that header then proves
	// malformed; nil for KindNonIP and a truncated link header. Once the
	// header's length has been checked, bytes beyond it (Ethernet
	// padding, an FCS) are cut, as for TCP; the snap length may have cut
	// the tail.
	IP           []byte
	Family       uint8      // 4 or 6
	Src, Dst     netip.Addr // Is4() for IPv4, Is6() for IPv6 (never 4-in-6 mapped)
	Proto        uint8      // upper-layer protocol (after IPv6 extension headers)
	IPPayloadLen int        // L4 length per the IP header; > len(TCP) when the snap length cut the record
	IPLen        int        // the IP packet's length per its header (IPv4 total length, IPv6 40 + payload length), which nf_conntrack_acct counts

	// Tunnel names the encapsulation Decode removed last when Decap is
	// set ("VXLAN", "GRE", "MPLS", ...): the IP and TCP fields then
	// describe the innermost packet. Empty when nothing was removed.
	Tunnel string

	// Decap is an input to Decode, not a result: when set, Decode looks
	// inside tunnels (see the package documentation, "Tunnels") and
	// decodes the packet they carry, as the inner host's firewall sees
	// it. [Reader.SetDecap] sets it on the Reader's Packet. Decode
	// leaves it alone.
	Decap bool

	depth int // tunnels entered by this Decode

	// The reason of the last unsupported link type, kept so that a file
	// of one such type costs one allocation, not one per record.
	lastLink   LinkType
	lastReason string

	// TCP layer, set for KindTCP. For a TrackedInvalid record TCP holds the
	// bytes of the incomplete header that were captured, and the ports
	// are set when at least 4 were: the kernel finds a connection's entry
	// from them (nf_ct_get_tuple reads only the ports) before its TCP
	// tracker rejects the header.
	TCP              []byte // TCP header and payload as captured, Ethernet padding removed
	SrcPort, DstPort uint16
}

// TrackedInvalid reports a KindMalformed record that reaches the
// connection tracker, which counts it INVALID: an IP packet whose header
// the kernel's receive path accepts, but whose TCP header is incomplete
// (shorter than 20 bytes per the IP length, which tcp_error rejects, or
// cut by the capture's snap length), or an IPv6 packet whose extension
// headers run past its payload (nf_conntrack_in finds no transport header
// and counts it INVALID, whatever the protocol). A broken IP header
// (ip_rcv_core and ip6_rcv_core drop it before any netfilter hook) is
// not: see the package documentation, "IP".
func (p *Packet) TrackedInvalid() bool {
	return p.Kind == KindMalformed && (p.Reason == reasonTCPShort || p.Reason == reasonTCPSnap || p.Reason == reasonV6ExtOver)
}

// HasPorts reports whether SrcPort and DstPort are set: a KindTCP record,
// or a TrackedInvalid one of which at least the 4 port bytes were captured.
func (p *Packet) HasPorts() bool {
	return p.Kind == KindTCP || (p.TrackedInvalid() && len(p.TCP) >= 4)
}

// Timestamp returns Time as a time.Time in UTC.
func (p *Packet) Timestamp() time.Time { return time.Unix(0, p.Time).UTC() }

// Truncated reports whether the snap length cut off part of the L4 data.
func (p *Packet) Truncated() bool { return len(p.TCP) < p.IPPayloadLen }

// SrcAddrPort is the packet's source address and port (port 0 for a
// packet without one).
func (p *Packet) SrcAddrPort() netip.AddrPort { return netip.AddrPortFrom(p.Src, p.SrcPort) }

// DstAddrPort is the packet's destination address and port.
func (p *Packet) DstAddrPort() netip.AddrPort { return netip.AddrPortFrom(p.Dst, p.DstPort) }

// Reasons. They are constants so that classifying a record never allocates.
const (
	reasonNotTCP      = "not TCP"
	reasonESP         = "ESP (encrypted payload)"
	reasonNoNext      = "IPv6 no next header"
	reasonNotIP       = "not IPv4 or IPv6"
	reasonLinkShort   = "truncated link-layer header"
	reasonAFUnknown   = "unknown loopback address family"
	reasonVersion     = "IP version does not match the link-layer protocol"
	reasonV4Short     = "truncated IPv4 header"
	reasonV4IHL       = "IPv4 header length below 20"
	reasonV4Opts      = "IPv4 options truncated"
	reasonV4TotLen    = "IPv4 total length below header length"
	reasonV4Over      = "IPv4 total length exceeds packet length"
	reasonV4Frag      = "IPv4 fragment"
	reasonV6Short     = "truncated IPv6 header"
	reasonV6Jumbo     = "IPv6 payload length 0 on a packet under 64 KiB"
	reasonV6Over      = "IPv6 payload length exceeds packet length"
	reasonV6ExtOver   = "IPv6 extension headers exceed payload length"
	reasonV6ExtSnap   = "IPv6 extension headers truncated by snap length"
	reasonV6Frag      = "IPv6 fragment"
	reasonTCPShort    = "TCP segment shorter than 20 bytes"
	reasonTCPSnap     = "TCP header truncated by snap length"
	reasonVLANTooDeep = "too many VLAN tags"
	reasonNetlinkSLL  = "netlink (not IP)"
)

// EtherTypes, IP protocol numbers and address families used below.
const (
	etherIPv4  = 0x0800
	etherIPv6  = 0x86dd
	etherVLAN  = 0x8100 // IEEE 802.1Q C-tag
	etherQinQ  = 0x88a8 // IEEE 802.1ad S-tag
	etherQinQ1 = 0x9100 // pre-standard QinQ tag still seen on switches

	protoHopOpts  = 0
	protoTCP      = 6
	protoRouting  = 43
	protoFragment = 44
	protoESP      = 50
	protoAH       = 51
	protoNoNext   = 59
	protoDstOpts  = 60

	arphrdNetlink = 824 // linux/if_arp.h: SLL protocol field is a netlink family
)

// maxVLANTags bounds the tag loop; the kernel's own limit for nested VLAN
// devices is far below this, so a deeper stack is garbage, not traffic.
const maxVLANTags = 8

// Decode classifies one link-layer frame and fills the IP and TCP fields of
// p (Kind, Reason, IP, Family, Src, Dst, Proto, IPPayloadLen, TCP, ports,
// Link, Data, OrigLen). Index, Offset, Time and Interface are left alone.
// origLen is the length on the wire; pass len(data) when the frame is
// complete.
//
// Decode never allocates and never panics, whatever the bytes.
func (p *Packet) Decode(link LinkType, data []byte, origLen int) {
	cut := p.reset(link, data, origLen)
	// IPv4 over Ethernet or raw IP, most of what captures hold, goes
	// straight to ipv4, as link would send it after two more calls
	// (TestDecodeShortcutIsLink).
	switch {
	case link == LinkEthernet && len(data) >= 14 && binary.BigEndian.Uint16(data[12:]) == etherIPv4:
		p.ipv4(data[14:], cut)
	case link == LinkRaw && len(data) > 0 && data[0]>>4 == 4:
		p.ipv4(data, cut)
	default:
		p.link(link, data, cut)
	}
}

// reset sets the fields Decode fills to those of a record not decoded
// yet, and returns cut: the bytes missing at the end of the record (IP
// length checks compare the IP header's claims with what was on the
// wire, not what was kept).
func (p *Packet) reset(link LinkType, data []byte, origLen int) (cut int) {
	p.Link = link
	p.Data = data
	if origLen < len(data) {
		origLen = len(data)
	}
	p.OrigLen = origLen
	p.IP, p.Family, p.Proto, p.IPPayloadLen, p.IPLen = nil, 0, 0, 0, 0
	p.Src, p.Dst = netip.Addr{}, netip.Addr{}
	p.TCP, p.SrcPort, p.DstPort = nil, 0, 0
	p.Reason = ""
	p.Tunnel, p.depth = "", 0
	return origLen - len(data)
}

// link decodes a frame of link type link; cut is as for ipv4.
func (p *Packet) link(link LinkType, b []byte, cut int) {
	switch link {
	case LinkEthernet:
		if len(b) < 14 {
			p.skip(KindMalformed, reasonLinkShort)
			return
		}
		p.ether(binary.BigEndian.Uint16(b[12:]), b[14:], cut)
	case LinkLinuxSLL:
		// Linux cooked v1, pcap-linktype(7) LINKTYPE_LINUX_SLL: packet type,
		// ARPHRD type, address length, 8 address bytes, protocol.
		if len(b) < 16 {
			p.skip(KindMalformed, reasonLinkShort)
			return
		}
		if binary.BigEndian.Uint16(b[2:]) == arphrdNetlink {
			p.skip(KindNonIP, reasonNetlinkSLL)
			return
		}
		p.ether(binary.BigEndian.Uint16(b[14:]), b[16:], cut)
	case LinkSLL2:
		// Linux cooked v2, LINKTYPE_LINUX_SLL2: protocol, reserved,
		// interface index, ARPHRD type, packet type, address length, address.
		if len(b) < 20 {
			p.skip(KindMalformed, reasonLinkShort)
			return
		}
		if binary.BigEndian.Uint16(b[8:]) == arphrdNetlink {
			p.skip(KindNonIP, reasonNetlinkSLL)
			return
		}
		p.ether(binary.BigEndian.Uint16(b[0:]), b[20:], cut)
	case LinkRaw:
		p.rawIP(b, cut)
	case LinkIPv4:
		p.ipv4(b, cut)
	case LinkIPv6:
		p.ipv6(b, cut)
	case LinkNull, LinkLoop:
		if len(b) < 4 {
			p.skip(KindMalformed, reasonLinkShort)
			return
		}
		var af uint32
		if link == LinkLoop {
			af = binary.BigEndian.Uint32(b) // OpenBSD: network byte order
		} else {
			// DLT_NULL is in the byte order of the capturing host, which
			// need not be the file's; like libpcap, take whichever reading
			// is small (families are < 256).
			af = binary.LittleEndian.Uint32(b)
			if af&0xffff0000 != 0 {
				af = binary.BigEndian.Uint32(b)
			}
		}
		switch af {
		case 2: // AF_INET everywhere
			p.ipv4(b[4:], cut)
		case 10, 24, 28, 30: // AF_INET6: Linux, Net/OpenBSD, FreeBSD, Darwin
			p.ipv6(b[4:], cut)
		default:
			p.skip(KindNonIP, reasonAFUnknown)
		}
	default:
		if !p.otherLink(link, b, cut) {
			p.skip(KindNonIP, p.unsupported(link))
		}
	}
}

// rawIP decodes an IP packet whose version nibble says which.
func (p *Packet) rawIP(b []byte, cut int) {
	if len(b) == 0 {
		p.skip(KindMalformed, reasonLinkShort)
		return
	}
	switch b[0] >> 4 {
	case 4:
		p.ipv4(b, cut)
	case 6:
		p.ipv6(b, cut)
	default:
		p.skip(KindNonIP, reasonNotIP)
	}
}

// ether decodes what follows an EtherType (after any VLAN tags): IPv4 or
// IPv6, and with Decap an MPLS label stack or a PPPoE session.
func (p *Packet) ether(ether uint16, b []byte, cut int) {
	for tags := 0; ether == etherVLAN || ether == etherQinQ || ether == etherQinQ1; tags++ {
		if tags == maxVLANTags {
			p.skip(KindMalformed, reasonVLANTooDeep)
			return
		}
		if len(b) < 4 {
			p.skip(KindMalformed, reasonLinkShort)
			return
		}
		ether = binary.BigEndian.Uint16(b[2:])
		b = b[4:]
	}
	switch ether {
	case etherIPv4:
		p.ipv4(b, cut)
	case etherIPv6:
		p.ipv6(b, cut)
	case etherMPLS, etherMPLSMulti:
		if p.enter(tunnelMPLS) {
			p.mpls(b, cut)
		}
	case etherPPPoESession:
		if p.enter(tunnelPPPoE) {
			p.pppoe(b, cut)
		}
	default:
		p.skip(KindNonIP, reasonNotIP)
	}
}

func (p *Packet) skip(k Kind, reason string) {
	p.Kind = k
	p.Reason = reason
}

// ipv4 decodes an IPv4 header per RFC 791. cut is how many bytes of the
// frame the snap length dropped.
func (p *Packet) ipv4(b []byte, cut int) {
	p.IP = b
	if len(b) < 20 {
		p.skip(KindMalformed, reasonV4Short)
		return
	}
	if b[0]>>4 != 4 {
		p.skip(KindMalformed, reasonVersion)
		return
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 {
		p.skip(KindMalformed, reasonV4IHL)
		return
	}
	p.Family = 4
	p.Src = netip.AddrFrom4([4]byte(b[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(b[16:20]))
	p.Proto = b[9]
	if len(b) < ihl {
		p.skip(KindMalformed, reasonV4Opts)
		return
	}
	tot := int(binary.BigEndian.Uint16(b[2:]))
	if tot == 0 {
		// Linux BIG TCP (6.3+): a GRO/GSO super-packet over 64 KiB has
		// total length 0 and the kernel takes its length from the skb
		// (iph_totlen), which is the record's wire length here. Under
		// 64 KiB a 0 is a TSO send captured on the sending host before
		// the NIC filled the length in (tcpdump's print-ip.c presumes
		// the same); the kernel's hooks saw the real length, the wire's.
		tot = len(b) + cut
	}
	if tot < ihl {
		p.skip(KindMalformed, reasonV4TotLen)
		return
	}
	// The kernel drops a packet shorter than its total length before any
	// hook runs (ip_rcv_core); only the snap length may legitimately hide
	// the tail. Bytes beyond tot are link padding (or an FCS) and go.
	if tot > len(b)+cut {
		p.skip(KindMalformed, reasonV4Over)
		return
	}
	p.IPPayloadLen, p.IPLen = tot-ihl, tot
	end := min(tot, len(b))
	p.IP = b[:end]
	// MF set or a non-zero offset: a fragment (RFC 791 flags/offset field).
	if binary.BigEndian.Uint16(b[6:])&0x3fff != 0 {
		p.skip(KindFragment, reasonV4Frag)
		return
	}
	p.l4(b[ihl:end])
}

// ipv6 decodes an IPv6 header per RFC 8200 and walks the extension headers
// the kernel's ipv6_skip_exthdr walks (hop-by-hop, routing, destination
// options, fragment, AH), stopping at ESP and "no next header".
func (p *Packet) ipv6(b []byte, cut int) {
	p.IP = b
	if len(b) < 40 {
		p.skip(KindMalformed, reasonV6Short)
		return
	}
	if b[0]>>4 != 6 {
		p.skip(KindMalformed, reasonVersion)
		return
	}
	p.Family = 6
	p.Src = netip.AddrFrom16([16]byte(b[8:24]))
	p.Dst = netip.AddrFrom16([16]byte(b[24:40]))
	nh := b[6]
	p.Proto = nh
	plen := int(binary.BigEndian.Uint16(b[4:]))
	if plen == 0 {
		// An RFC 2675 jumbogram or a Linux BIG TCP super-packet: the
		// payload is over 64 KiB and its length is the frame's. (The
		// jumbo option, if present, is a hop-by-hop option walked below.)
		// On anything shorter a zero length is a corrupt header.
		if len(b)+cut-40 <= 0xffff {
			p.skip(KindMalformed, reasonV6Jumbo)
			return
		}
		plen = len(b) + cut - 40
	}
	tot := 40 + plen
	if tot > len(b)+cut {
		p.skip(KindMalformed, reasonV6Over)
		return
	}
	p.IPLen = tot
	end := min(tot, len(b))
	p.IP = b[:end]
	off := 40
	for {
		var hlen int
		switch nh {
		case protoHopOpts, protoRouting, protoDstOpts:
			if off+2 > end {
				p.extShort(off, tot)
				return
			}
			hlen = (int(b[off+1]) + 1) * 8
		case protoAH:
			if off+2 > end {
				p.extShort(off, tot)
				return
			}
			hlen = (int(b[off+1]) + 2) * 4 // RFC 4302 §2.2: in 32-bit words, minus 2
		case protoFragment:
			if off+8 > end {
				p.extShort(off, tot)
				return
			}
			// Offset (13 bits) or M set: a real fragment. Both clear is an
			// RFC 6946 atomic fragment, a whole packet: keep walking.
			if binary.BigEndian.Uint16(b[off+2:])&0xfff9 != 0 {
				p.Proto = b[off]
				p.IPPayloadLen = tot - off - 8
				p.skip(KindFragment, reasonV6Frag)
				return
			}
			hlen = 8
		case protoESP:
			p.Proto = nh
			p.IPPayloadLen = tot - off
			p.skip(KindNonTCP, reasonESP)
			return
		case protoNoNext:
			p.Proto = nh
			p.IPPayloadLen = tot - off
			p.skip(KindNonTCP, reasonNoNext)
			return
		default:
			p.Proto = nh
			p.IPPayloadLen = tot - off
			// The headers walked may end beyond what the snap length
			// kept (off > end): then nothing of the L4 header was captured.
			p.l4(b[min(off, end):end])
			return
		}
		nh = b[off]
		off += hlen
		if off > tot {
			p.skip(KindMalformed, reasonV6ExtOver)
			return
		}
	}
}

// extShort classifies an extension header that does not fit: beyond the
// payload length it is malformed, beyond the captured bytes it was cut.
func (p *Packet) extShort(off, tot int) {
	if off+2 > tot {
		p.skip(KindMalformed, reasonV6ExtOver)
	} else {
		p.skip(KindMalformed, reasonV6ExtSnap)
	}
}

// l4 finishes a whole (unfragmented) IP packet whose upper-layer bytes, as
// captured, are b; p.Proto and p.IPPayloadLen are set.
func (p *Packet) l4(b []byte) {
	if p.Proto != protoTCP {
		if !p.tunnel(b) {
			p.skip(KindNonTCP, reasonNotTCP)
		}
		return
	}
	p.TCP = b
	if len(b) >= 4 {
		p.SrcPort = binary.BigEndian.Uint16(b[0:])
		p.DstPort = binary.BigEndian.Uint16(b[2:])
	}
	if p.IPPayloadLen < 20 {
		p.skip(KindMalformed, reasonTCPShort)
		return
	}
	if len(b) < 20 {
		p.skip(KindMalformed, reasonTCPSnap)
		return
	}
	p.Kind = KindTCP
}

// TcpdumpFlags renders TCP header flags (the byte at offset 13) as tcpdump
// prints them between brackets: "S", "S.", "F.", "R", "P.", and "none"
// for no flag. Explain and the trace summaries print packets that way.
func TcpdumpFlags(f uint8) string {
	var b [8]byte
	n := 0
	for _, x := range [...]struct {
		f uint8
		c byte
	}{{0x02, 'S'}, {0x01, 'F'}, {0x04, 'R'}, {0x08, 'P'}, {0x20, 'U'}, {0x40, 'E'}, {0x80, 'W'}, {0x10, '.'}} {
		if f&x.f != 0 {
			b[n] = x.c
			n++
		}
	}
	if n == 0 {
		return "none"
	}
	return string(b[:n])
}
