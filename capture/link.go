package capture

import (
	"encoding/binary"
	"net/netip"
	"strconv"
)

// More link types Decode reads (values from the tcpdump.org link-layer
// header type registry, also IANA's "PCAP LinkType List"). Captures of TCP
// traffic taken on dial-up and DSL links, WAN routers and wireless
// interfaces use them.
const (
	LinkPPP          LinkType = 9   // PPP, RFC 1661; optionally with RFC 1662's 0xff 0x03
	LinkPPPHDLC      LinkType = 50  // PPP in HDLC-like framing (RFC 1662), or Cisco PPP (RFC 1547 §4.3.1)
	LinkPPPoE        LinkType = 51  // PPP_ETHER: PPPoE session header (RFC 2516), then PPP
	LinkCHDLC        LinkType = 104 // Cisco HDLC: address, control, EtherType
	LinkIEEE80211    LinkType = 105 // IEEE 802.11 MAC frames, LLC/SNAP payload
	LinkRadiotap     LinkType = 127 // radiotap header, then an 802.11 frame
	LinkPPPWithDir   LinkType = 204 // a direction byte, then PPP as for LinkPPP
	LinkCHDLCWithDir LinkType = 205 // a direction byte, then Cisco HDLC
	LinkNFLOG        LinkType = 239 // Linux nfnetlink_log: family, version, resource ID, TLVs (tcpdump -i nflog:N)
	LinkIPoIB        LinkType = 242 // IP over InfiniBand (RFC 4391): two 20-byte hardware addresses, EtherType, reserved
)

// linkNames are the registry's names (without the LINKTYPE_ prefix) of
// the link types a capture is likely to name, whether Decode reads them
// or not, so that a record skipped for its link type says which it was.
var linkNames = map[LinkType]string{
	0: "NULL", 1: "ETHERNET", 3: "AX25", 6: "IEEE802_5", 7: "ARCNET_BSD", 8: "SLIP",
	9: "PPP", 10: "FDDI", 50: "PPP_HDLC", 51: "PPP_ETHER", 100: "ATM_RFC1483",
	101: "RAW", 104: "C_HDLC", 105: "IEEE802_11", 107: "FRELAY", 108: "LOOP",
	113: "LINUX_SLL", 114: "LTALK", 117: "PFLOG", 119: "IEEE802_11_PRISM",
	122: "IP_OVER_FC", 123: "SUNATM", 127: "IEEE802_11_RADIOTAP", 129: "ARCNET_LINUX",
	138: "APPLE_IP_OVER_IEEE1394", 139: "MTP2_WITH_PHDR", 140: "MTP2", 141: "MTP3",
	130: "JUNIPER_MLPPP", 131: "JUNIPER_MLFR", 132: "JUNIPER_ES", 133: "JUNIPER_GGSN", 134: "JUNIPER_MFR",
	135: "JUNIPER_ATM2", 136: "JUNIPER_SERVICES", 137: "JUNIPER_ATM1", 178: "JUNIPER_ETHER",
	142: "SCCP", 143: "DOCSIS", 144: "LINUX_IRDA",
	147: "USER0", 148: "USER1", 149: "USER2", 150: "USER3", 151: "USER4", 152: "USER5",
	153: "USER6", 154: "USER7", 155: "USER8", 156: "USER9", 157: "USER10", 158: "USER11",
	159: "USER12", 160: "USER13", 161: "USER14", 162: "USER15",
	163: "IEEE802_11_AVS", 165: "BACNET_MS_TP", 166: "PPP_PPPD", 169: "GPRS_LLC",
	177: "LINUX_LAPD", 187: "BLUETOOTH_HCI_H4", 189: "USB_LINUX", 192: "PPI",
	195: "IEEE802_15_4_WITHFCS", 197: "ERF", 201: "BLUETOOTH_HCI_H4_WITH_PHDR",
	204: "PPP_WITH_DIR", 205: "C_HDLC_WITH_DIR", 206: "FRELAY_WITH_DIR",
	209: "IPMB_LINUX", 215: "IEEE802_15_4_NONASK_PHY", 220: "USB_LINUX_MMAPPED",
	226: "IPNET", 227: "CAN_SOCKETCAN", 228: "IPV4", 229: "IPV6",
	230: "IEEE802_15_4_NOFCS", 231: "DBUS", 239: "NFLOG", 240: "NETANALYZER",
	241: "NETANALYZER_TRANSPARENT", 242: "IPOIB", 243: "MPEG_2_TS", 247: "INFINIBAND",
	248: "SCTP", 249: "USBPCAP", 251: "BLUETOOTH_LE_LL", 253: "NETLINK",
	254: "BLUETOOTH_LINUX_MONITOR", 256: "BLUETOOTH_LE_LL_WITH_PHDR", 258: "PKTAP",
	106: "ATM_CLIP", 182: "MFR", 281: "DSA_TAG_BRCM", 282: "DSA_TAG_BRCM_PREPEND", 284: "DSA_TAG_DSA", 285: "DSA_TAG_EDSA",
	263: "WATTSTOPPER_DLM", 266: "USB_DARWIN", 271: "VSOCK", 272: "NORDIC_BLE",
	274: "ETHERNET_MPACKET", 276: "LINUX_SLL2", 283: "IEEE802_15_4_TAP",
	290: "ETW",
}

// unsupportedReasons holds "unsupported link type N (NAME)" for every
// named type, built once, so that naming the type costs no allocation.
var unsupportedReasons = func() map[LinkType]string {
	m := make(map[LinkType]string, len(linkNames))
	for l, n := range linkNames {
		m[l] = "unsupported link type " + strconv.FormatUint(uint64(l), 10) + " (" + n + ")"
	}
	return m
}()

// Name returns the link type's name in the tcpdump.org registry (the
// LINKTYPE_ name without its prefix: "ETHERNET", "PPP", "IEEE802_11_RADIOTAP"),
// or "" for a value that is not in tcpct's copy of it.
func (l LinkType) Name() string { return linkNames[l] }

// unsupported is the Reason of a record whose link type Decode does not
// read: "unsupported link type 147 (USER0)", the name left out when the
// registry's is not known here.
func (p *Packet) unsupported(l LinkType) string {
	if r, ok := unsupportedReasons[l]; ok {
		return r
	}
	if p.lastReason == "" || p.lastLink != l {
		p.lastLink, p.lastReason = l, "unsupported link type "+strconv.FormatUint(uint64(l), 10)
	}
	return p.lastReason
}

// Reasons of the link types and tunnels in this file.
const (
	reasonPPPNotIP      = "PPP protocol other than IPv4 or IPv6"
	reasonWifiNotData   = "802.11 management or control frame"
	reasonWifiNoData    = "802.11 data frame without payload"
	reasonWifiProtected = "802.11 protected (encrypted) frame"
	reasonWifiAMSDU     = "802.11 A-MSDU aggregate"
	reasonLLC           = "802.2 LLC frame without SNAP"
	reasonRadiotapBad   = "malformed radiotap header"
	reasonNFLOGNoPacket = "NFLOG record without a packet"
	reasonNFLOGBad      = "malformed NFLOG TLV"
	reasonTunnelOff     = "tunnelled traffic, not decapsulated (decapsulation is off)"
	reasonTunnelDeep    = "more than 8 nested tunnels"
	reasonTunnelShort   = "truncated tunnel header"
	reasonTunnelOther   = "tunnel payload other than Ethernet, IPv4, IPv6, MPLS or PPP"
	reasonUDPLen        = "UDP length inconsistent with the IP length"
	reasonMPLSDeep      = "MPLS label stack without bottom of stack"
)

// Tunnel names (Packet.Tunnel).
const (
	tunnelVXLAN    = "VXLAN"
	tunnelVXLANGPE = "VXLAN-GPE"
	tunnelGeneve   = "Geneve"
	tunnelGRE      = "GRE"
	tunnelIPIP     = "IP-in-IP"
	tunnelMPLS     = "MPLS"
	tunnelMPLSUDP  = "MPLS-in-UDP"
	tunnelPPPoE    = "PPPoE"
)

// Protocol numbers and ports of the tunnels.
const (
	etherMPLS         = 0x8847 // RFC 3032 §5
	etherMPLSMulti    = 0x8848
	etherPPPoESession = 0x8864 // RFC 2516
	etherTEB          = 0x6558 // transparent Ethernet bridging (RFC 1701): Ethernet in GRE/Geneve
	etherPPP          = 0x880b // PPP in enhanced GRE (RFC 2637 §4.1)
	etherWCCP         = 0x883e // WCCP v2 redirection in GRE

	pppIPv4 = 0x0021 // RFC 1332
	pppIPv6 = 0x0057 // RFC 5072
	pppMPLS = 0x0281 // RFC 3032 §4.4

	protoIPIP = 4  // RFC 2003
	protoUDP  = 17 // RFC 768
	protoIPv6 = 41 // RFC 2473
	protoGRE  = 47 // RFC 2784, 2890

	portVXLAN      = 4789 // RFC 7348 §5
	portVXLANLinux = 8472 // the Linux vxlan driver's default before IANA's port (flannel still uses it)
	portVXLANGPE   = 4790
	portGeneve     = 6081 // RFC 8926 §3.3
	portMPLSUDP    = 6635 // RFC 7510

	maxTunnels   = 8
	maxMPLSDepth = 16
)

// enter accounts for one more tunnel. Without Decap the record is
// skipped as tunnelled traffic; beyond maxTunnels it is garbage.
func (p *Packet) enter(name string) bool {
	if !p.Decap {
		p.skip(KindNonIP, reasonTunnelOff)
		if p.Family != 0 {
			p.Kind = KindNonTCP
		}
		return false
	}
	if p.depth == maxTunnels {
		p.skip(KindMalformed, reasonTunnelDeep)
		return false
	}
	p.depth++
	p.Tunnel = name
	// What follows describes the inner packet; the tunnel endpoints'
	// IP header is forgotten, so that a broken inner packet is not
	// mistaken for one with the outer addresses.
	p.IP, p.Family, p.Proto, p.IPPayloadLen, p.IPLen = nil, 0, 0, 0, 0
	p.Src, p.Dst = netip.Addr{}, netip.Addr{}
	return true
}

// otherLink decodes the link types of this file; false for one it does
// not know.
func (p *Packet) otherLink(link LinkType, b []byte, cut int) bool {
	switch link {
	case LinkPPPWithDir, LinkCHDLCWithDir:
		if len(b) < 1 {
			p.skip(KindMalformed, reasonLinkShort)
			return true
		}
		b = b[1:] // 0x00 received, 0x01 sent
		if link == LinkCHDLCWithDir {
			return p.otherLink(LinkCHDLC, b, cut)
		}
		fallthrough
	case LinkPPP:
		p.ppp(b, cut)
	case LinkPPPHDLC:
		if len(b) >= 1 && (b[0] == 0x0f || b[0] == 0x8f) {
			return p.otherLink(LinkCHDLC, b, cut) // Cisco PPP: HDLC framing
		}
		p.ppp(b, cut)
	case LinkCHDLC:
		// Address (0x0f unicast, 0x8f broadcast), control 0, then an
		// EtherType (SLARP and CDP are not IP).
		if len(b) < 4 {
			p.skip(KindMalformed, reasonLinkShort)
			return true
		}
		p.ether(binary.BigEndian.Uint16(b[2:]), b[4:], cut)
	case LinkPPPoE:
		p.pppoe(b, cut)
	case LinkNFLOG:
		p.nflog(b, cut)
	case LinkIPoIB:
		// Two 20-byte hardware addresses (QPN and GID), the EtherType
		// and 2 reserved bytes: 44 bytes, as tcpdump's print-ipoib.c
		// and its test capture ipoib.pcap have them.
		if len(b) < 44 {
			p.skip(KindMalformed, reasonLinkShort)
			return true
		}
		p.ether(binary.BigEndian.Uint16(b[40:]), b[44:], cut)
	case LinkIEEE80211:
		p.wifi(b, cut, false)
	case LinkRadiotap:
		p.radiotap(b, cut)
	default:
		return false
	}
	return true
}

// ppp decodes a PPP frame (RFC 1661 §2): an optional 0xff 0x03 address
// and control (RFC 1662 §3.1), then the protocol, one byte when
// compressed (its low bit set, RFC 1661 §6.5).
func (p *Packet) ppp(b []byte, cut int) {
	if len(b) >= 2 && b[0] == 0xff && b[1] == 0x03 {
		b = b[2:]
	}
	var proto uint16
	switch {
	case len(b) >= 1 && b[0]&1 == 1:
		proto, b = uint16(b[0]), b[1:]
	case len(b) >= 2:
		proto, b = binary.BigEndian.Uint16(b), b[2:]
	default:
		p.skip(KindMalformed, reasonLinkShort)
		return
	}
	switch proto {
	case pppIPv4:
		p.ipv4(b, cut)
	case pppIPv6:
		p.ipv6(b, cut)
	case pppMPLS:
		if p.enter(tunnelMPLS) {
			p.mpls(b, cut)
		}
	default:
		p.skip(KindNonIP, reasonPPPNotIP)
	}
}

// pppoe decodes a PPPoE session header (RFC 2516 §4: version and type,
// code 0, session ID, length) and the PPP frame after it.
func (p *Packet) pppoe(b []byte, cut int) {
	if len(b) < 8 {
		p.skip(KindMalformed, reasonLinkShort)
		return
	}
	p.ppp(b[6:], cut)
}

// mpls pops an MPLS label stack (RFC 3032 §2.1) down to the entry with
// the bottom-of-stack bit and decodes the payload by its first nibble,
// as forwarding hardware does: 4 is IPv4, 6 IPv6, 0 a pseudowire control
// word (RFC 4385 §3) followed by an Ethernet frame (RFC 4448).
func (p *Packet) mpls(b []byte, cut int) {
	for i := 0; ; i++ {
		if i == maxMPLSDepth {
			p.skip(KindMalformed, reasonMPLSDeep)
			return
		}
		if len(b) < 4 {
			p.skip(KindMalformed, reasonTunnelShort)
			return
		}
		bottom := b[2]&1 == 1
		b = b[4:]
		if bottom {
			break
		}
	}
	if len(b) == 0 {
		p.skip(KindMalformed, reasonTunnelShort)
		return
	}
	switch b[0] >> 4 {
	case 4:
		p.ipv4(b, cut)
	case 6:
		p.ipv6(b, cut)
	case 0:
		if len(b) < 4+14 {
			p.skip(KindMalformed, reasonTunnelShort)
			return
		}
		p.ether(binary.BigEndian.Uint16(b[4+12:]), b[4+14:], cut)
	default:
		p.skip(KindNonIP, reasonTunnelOther)
	}
}

// nflog decodes a Linux NFLOG record (LINKTYPE_NFLOG; nfnetlink_log's
// message as libpcap writes it): an address family, a version, a
// resource ID, then TLVs of a 16-bit length and a 16-bit type, padded to
// 4 bytes; type 9 (NFULA_PAYLOAD) holds the packet from its IP header
// on. The lengths and types are in the byte order of the capturing host,
// which need not be the file's: like libpcap, take the reading that
// makes sense (a length from 4 to what is left).
func (p *Packet) nflog(b []byte, cut int) {
	if len(b) < 4 {
		p.skip(KindMalformed, reasonLinkShort)
		return
	}
	family := b[0]
	b = b[4:]
	for len(b) >= 4 {
		n, typ := int(binary.LittleEndian.Uint16(b)), binary.LittleEndian.Uint16(b[2:])
		if n < 4 || n > len(b) {
			n, typ = int(binary.BigEndian.Uint16(b)), binary.BigEndian.Uint16(b[2:])
			if n < 4 || n > len(b) {
				p.skip(KindMalformed, reasonNFLOGBad)
				return
			}
		}
		if typ&0x3fff == 9 { // NFULA_PAYLOAD; the top bits are netlink's nesting flags
			switch family {
			case 2: // AF_INET
				p.ipv4(b[4:n], cut)
			case 10: // AF_INET6
				p.ipv6(b[4:n], cut)
			default:
				p.skip(KindNonIP, reasonAFUnknown)
			}
			return
		}
		b = b[min((n+3)&^3, len(b)):]
	}
	p.skip(KindNonIP, reasonNFLOGNoPacket)
}

// radiotap skips a radiotap header (radiotap.org: version 0, pad,
// little-endian length, presence bitmaps) and decodes the 802.11 frame
// after it. The only field read is Flags, for the "frame has padding
// between the 802.11 header and the payload" bit; an FCS at the end (the
// other bit that matters) is cut with the link padding by the IP length.
func (p *Packet) radiotap(b []byte, cut int) {
	if len(b) < 8 {
		p.skip(KindMalformed, reasonLinkShort)
		return
	}
	n := int(binary.LittleEndian.Uint16(b[2:]))
	if b[0] != 0 || n < 8 || n > len(b) {
		p.skip(KindMalformed, reasonRadiotapBad)
		return
	}
	h := b[:n]
	present := binary.LittleEndian.Uint32(h[4:])
	off := 8
	for w := present; w&(1<<31) != 0; {
		if off+4 > n {
			p.skip(KindMalformed, reasonRadiotapBad)
			return
		}
		w = binary.LittleEndian.Uint32(h[off:])
		off += 4
	}
	pad := false
	if present&1 != 0 { // TSFT: 8 bytes, 8-aligned
		off = (off+7)&^7 + 8
	}
	if present&2 != 0 { // Flags: 1 byte
		if off >= n {
			p.skip(KindMalformed, reasonRadiotapBad)
			return
		}
		pad = h[off]&0x20 != 0
	}
	p.wifi(b[n:], cut, pad)
}

// wifi decodes an IEEE 802.11 data frame (IEEE 802.11-2020 §9.2.4.1,
// §9.3.2.1): frame control, duration, addresses (a fourth one between
// access points), sequence control, QoS control in QoS data frames and an
// HT control field when the order bit is set on one; then an LLC/SNAP
// header (RFC 1042) carrying an EtherType. pad aligns the payload to 4
// bytes (radiotap's data padding flag).
func (p *Packet) wifi(b []byte, cut int, pad bool) {
	if len(b) < 24 {
		p.skip(KindMalformed, reasonLinkShort)
		return
	}
	fc0, fc1 := b[0], b[1]
	if fc0&0x0c != 0x08 { // type: management (0), control (1), extension (3)
		p.skip(KindNonIP, reasonWifiNotData)
		return
	}
	if fc0&0x40 != 0 { // subtypes with the "no data" bit: Null, QoS Null, CF-*
		p.skip(KindNonIP, reasonWifiNoData)
		return
	}
	if fc1&0x40 != 0 {
		p.skip(KindNonIP, reasonWifiProtected)
		return
	}
	hdr := 24
	if fc1&0x03 == 0x03 { // ToDS and FromDS: four addresses
		hdr += 6
	}
	if fc0&0x80 != 0 { // QoS data
		if len(b) < hdr+2 {
			p.skip(KindMalformed, reasonLinkShort)
			return
		}
		if b[hdr]&0x80 != 0 {
			p.skip(KindNonIP, reasonWifiAMSDU)
			return
		}
		hdr += 2
		if fc1&0x80 != 0 { // +HTC
			hdr += 4
		}
	}
	if pad {
		hdr = (hdr + 3) &^ 3
	}
	if len(b) < hdr+8 {
		p.skip(KindMalformed, reasonLinkShort)
		return
	}
	b = b[hdr:]
	// SNAP: DSAP and SSAP 0xaa, UI, then an OUI of 0 (RFC 1042) or
	// 00-00-f8 (802.1H bridge tunnel), then the EtherType.
	if b[0] != 0xaa || b[1] != 0xaa || b[2] != 0x03 || b[3] != 0 || b[4] != 0 || (b[5] != 0 && b[5] != 0xf8) {
		p.skip(KindNonIP, reasonLLC)
		return
	}
	p.ether(binary.BigEndian.Uint16(b[6:]), b[8:], cut)
}

// tunnel decodes the inner packet of an IP packet carrying a tunnel
// (p.Proto, p.IPPayloadLen set; b is the upper-layer bytes as captured)
// and reports whether it was one. Without Decap it only classifies the
// record as tunnelled traffic.
func (p *Packet) tunnel(b []byte) bool {
	cut := p.IPPayloadLen - len(b) // bytes the snap length dropped
	switch p.Proto {
	case protoIPIP:
		if p.enter(tunnelIPIP) {
			p.ipv4(b, cut)
		}
	case protoIPv6:
		if p.enter(tunnelIPIP) {
			p.ipv6(b, cut)
		}
	case protoGRE:
		if p.enter(tunnelGRE) {
			p.gre(b, cut)
		}
	case protoUDP:
		if len(b) < 8 {
			return false
		}
		var name string
		switch binary.BigEndian.Uint16(b[2:]) {
		case portVXLAN, portVXLANLinux:
			name = tunnelVXLAN
		case portVXLANGPE:
			name = tunnelVXLANGPE
		case portGeneve:
			name = tunnelGeneve
		case portMPLSUDP:
			name = tunnelMPLSUDP
		default:
			return false
		}
		ipl := p.IPPayloadLen // enter forgets the outer header
		if !p.enter(name) {
			return true
		}
		ulen := int(binary.BigEndian.Uint16(b[4:]))
		if ulen == 0 && ipl > 0xffff {
			// A BIG TCP super-packet through a UDP tunnel, or an RFC 2675
			// §4 jumbogram: the length is the IP payload's.
			ulen = ipl
		}
		if ulen < 8 || ulen > ipl {
			p.skip(KindMalformed, reasonUDPLen)
			return true
		}
		// The datagram ends at the UDP length; what the snap length cut
		// of it is still missing.
		end := min(ulen, len(b))
		p.udpTunnel(name, b[8:end], ulen-end)
	default:
		return false
	}
	return true
}

// udpTunnel decodes the payload of a UDP tunnel.
func (p *Packet) udpTunnel(name string, b []byte, cut int) {
	switch name {
	case tunnelVXLAN:
		// RFC 7348 §5: flags (I set), reserved, VNI, reserved; then Ethernet.
		if len(b) < 8+14 {
			p.skip(KindMalformed, reasonTunnelShort)
			return
		}
		p.ether(binary.BigEndian.Uint16(b[8+12:]), b[8+14:], cut)
	case tunnelVXLANGPE:
		// draft-ietf-nvo3-vxlan-gpe §3: next protocol in byte 3.
		if len(b) < 8 {
			p.skip(KindMalformed, reasonTunnelShort)
			return
		}
		switch b[3] {
		case 1:
			p.ipv4(b[8:], cut)
		case 2:
			p.ipv6(b[8:], cut)
		case 3:
			if len(b) < 8+14 {
				p.skip(KindMalformed, reasonTunnelShort)
				return
			}
			p.ether(binary.BigEndian.Uint16(b[8+12:]), b[8+14:], cut)
		case 5:
			p.mpls(b[8:], cut)
		default:
			p.skip(KindNonIP, reasonTunnelOther)
		}
	case tunnelGeneve:
		// RFC 8926 §3.4: version and option length (4-byte words),
		// flags, protocol type, VNI, reserved; then the options.
		if len(b) < 8 {
			p.skip(KindMalformed, reasonTunnelShort)
			return
		}
		n := 8 + int(b[0]&0x3f)*4
		if len(b) < n {
			p.skip(KindMalformed, reasonTunnelShort)
			return
		}
		p.encapsulated(binary.BigEndian.Uint16(b[2:]), b[n:], cut)
	case tunnelMPLSUDP:
		p.mpls(b, cut)
	}
}

// encapsulated decodes a payload named by an EtherType-valued protocol
// field (GRE, Geneve): Ethernet, IPv4, IPv6, MPLS or PPP.
func (p *Packet) encapsulated(proto uint16, b []byte, cut int) {
	switch proto {
	case etherTEB:
		if len(b) < 14 {
			p.skip(KindMalformed, reasonTunnelShort)
			return
		}
		p.ether(binary.BigEndian.Uint16(b[12:]), b[14:], cut)
	case etherIPv4:
		p.ipv4(b, cut)
	case etherIPv6:
		p.ipv6(b, cut)
	case etherMPLS, etherMPLSMulti:
		if p.enter(tunnelMPLS) {
			p.mpls(b, cut)
		}
	case etherPPP:
		p.ppp(b, cut)
	case etherWCCP:
		// A WCCP v2 redirect header (draft-wilson-wrec-wccp-v2 §4.12),
		// then the redirected IPv4 packet.
		if len(b) < 4 {
			p.skip(KindMalformed, reasonTunnelShort)
			return
		}
		p.ipv4(b[4:], cut)
	default:
		p.skip(KindNonIP, reasonTunnelOther)
	}
}

// gre decodes a GRE header: version 0 (RFC 2784 §2.1 with RFC 2890's key
// and sequence number: C, K and S each add 4 bytes; the routing bit of
// RFC 1701 is not followed) or version 1, PPTP's enhanced GRE (RFC 2637
// §4.1: key always, sequence and acknowledgment numbers optional).
func (p *Packet) gre(b []byte, cut int) {
	if len(b) < 4 {
		p.skip(KindMalformed, reasonTunnelShort)
		return
	}
	flags, proto := binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])
	n := 4
	switch flags & 7 {
	case 0:
		if flags&0x4000 != 0 { // routing present (RFC 1701)
			p.skip(KindNonIP, reasonTunnelOther)
			return
		}
		for _, bit := range [...]uint16{0x8000, 0x2000, 0x1000} { // C, K, S
			if flags&bit != 0 {
				n += 4
			}
		}
	case 1:
		n += 4 // payload length and call ID (the key)
		if flags&0x1000 != 0 {
			n += 4
		}
		if flags&0x0080 != 0 {
			n += 4
		}
	default:
		p.skip(KindNonIP, reasonTunnelOther)
		return
	}
	if len(b) < n {
		p.skip(KindMalformed, reasonTunnelShort)
		return
	}
	p.encapsulated(proto, b[n:], cut)
}
