package capture

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
)

// outer4 is an IPv4 packet from 10.0.0.1 to 10.0.0.2 carrying l4: a tunnel
// endpoint's packet, whose addresses differ from the inner packet's.
func outer4(proto byte, l4 []byte) []byte {
	b := ipv4(proto, l4, v4opts{})
	copy(b[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	return b
}

// outer6 is outer4 for IPv6 (2001:db8:ff::1 to 2001:db8:ff::2).
func outer6(proto byte, l4 []byte) []byte {
	b := ipv6(proto, nil, l4, 0)
	b[8+5], b[24+5] = 0xff, 0xff
	return b
}

func udp(dport uint16, payload []byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(b[0:], 54321)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(8+len(payload)))
	return append(b, payload...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// wifiData is an 802.11 data frame header: fc0 (type/subtype byte), fc1
// (flags), then addresses; qos adds the QoS control field.
func wifiData(fc0, fc1 byte, qos []byte) []byte {
	b := make([]byte, 24)
	b[0], b[1] = fc0, fc1
	if fc1&3 == 3 {
		b = append(b, make([]byte, 6)...)
	}
	b = append(b, qos...)
	if fc0&0x80 != 0 && fc1&0x80 != 0 {
		b = append(b, 0, 0, 0, 0) // HT control
	}
	return b
}

// snap is an RFC 1042 LLC/SNAP header for an EtherType.
func snap(etype uint16) []byte { return append([]byte{0xaa, 0xaa, 0x03, 0, 0, 0}, be16(etype)...) }

// radiotapHdr is a radiotap header with the TSFT and Flags fields.
func radiotapHdr(flags byte) []byte {
	b := []byte{0, 0, 0, 0, 0x03, 0, 0, 0} // version, pad, length, present = TSFT|Flags
	b = append(b, make([]byte, 8)...)      // TSFT at offset 8 (8-aligned)
	b = append(b, flags, 0)                // Flags, then padding
	binary.LittleEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

// nflogRec is an NFLOG record of family af carrying pkt, with a prefix
// TLV before the payload, in the given byte order.
func nflogRec(af byte, order binary.AppendByteOrder, pkt []byte) []byte {
	b := []byte{af, 0, 0, 1}
	tlv := func(typ uint16, v []byte) {
		b = order.AppendUint16(b, uint16(4+len(v)))
		b = order.AppendUint16(b, typ)
		b = append(b, v...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
	}
	tlv(10, []byte("prefix\x00")) // NFULA_PREFIX, 7 bytes: padded
	tlv(9, pkt)
	return b
}

// TestLinkTypes: every link type Decode reads besides Ethernet, cooked
// and raw IP, with an IPv4 or IPv6 TCP packet inside, and the non-IP
// frames of each skipped with a reason.
func TestLinkTypes(t *testing.T) {
	seg := tcp(1031, 23, 10)
	v4 := ipv4(protoTCP, seg, v4opts{})
	v6 := ipv6(protoTCP, nil, seg, 0)
	okV4 := rec{Kind: KindTCP, Family: 4, Src: "192.168.1.5", Dst: "192.168.1.35", Proto: 6, PayLen: 30, TCPLen: 30, SPort: 1031, DPort: 23}
	okV6 := rec{Kind: KindTCP, Family: 6, Src: "2001:db8::1", Dst: "2001:db8::2", Proto: 6, PayLen: 30, TCPLen: 30, SPort: 1031, DPort: 23}
	nonIP := func(r string) rec { return rec{Kind: KindNonIP, Reason: r} }
	short := rec{Kind: KindMalformed, Reason: reasonLinkShort}
	fcs := []byte{0xde, 0xad, 0xbe, 0xef}
	qosData := byte(0x88)

	tests := []struct {
		name string
		link LinkType
		data []byte
		want rec
	}{
		{"PPP/v4", LinkPPP, cat(be16(pppIPv4), v4), okV4},
		{"PPP/v6", LinkPPP, cat(be16(pppIPv6), v6), okV6},
		{"PPP/address and control", LinkPPP, cat([]byte{0xff, 0x03}, be16(pppIPv4), v4), okV4},
		{"PPP/compressed protocol", LinkPPP, cat([]byte{0x21}, v4), okV4},
		{"PPP/LCP", LinkPPP, cat(be16(0xc021), make([]byte, 8)), nonIP(reasonPPPNotIP)},
		{"PPP/empty", LinkPPP, nil, short},
		{"PPP_HDLC/v4", LinkPPPHDLC, cat([]byte{0xff, 0x03}, be16(pppIPv4), v4), okV4},
		{"PPP_HDLC/Cisco framing", LinkPPPHDLC, cat([]byte{0x0f, 0}, be16(etherIPv6), v6), okV6},
		{"PPP_WITH_DIR", LinkPPPWithDir, cat([]byte{1, 0xff, 0x03}, be16(pppIPv6), v6), okV6},
		{"PPP_WITH_DIR/empty", LinkPPPWithDir, nil, short},
		{"PPP_ETHER/v4", LinkPPPoE, cat([]byte{0x11, 0, 0x12, 0x34}, be16(uint16(2+len(v4))), be16(pppIPv4), v4), okV4},
		{"PPP_ETHER/short", LinkPPPoE, []byte{0x11, 0, 0x12, 0x34, 0, 2, 0}, short},
		{"C_HDLC/v4", LinkCHDLC, cat([]byte{0x0f, 0}, be16(etherIPv4), v4), okV4},
		{"C_HDLC/SLARP", LinkCHDLC, cat([]byte{0x8f, 0}, be16(0x8035), make([]byte, 20)), nonIP(reasonNotIP)},
		{"C_HDLC/short", LinkCHDLC, []byte{0x0f, 0, 8}, short},
		{"C_HDLC_WITH_DIR", LinkCHDLCWithDir, cat([]byte{0, 0x0f, 0}, be16(etherIPv4), v4), okV4},
		{"802.11/data v4", LinkIEEE80211, cat(wifiData(0x08, 0x01, nil), snap(etherIPv4), v4), okV4},
		{"802.11/data v6 with FCS", LinkIEEE80211, cat(wifiData(0x08, 0x02, nil), snap(etherIPv6), v6, fcs), okV6},
		{"802.11/QoS data", LinkIEEE80211, cat(wifiData(qosData, 0x01, []byte{0, 0}), snap(etherIPv4), v4), okV4},
		{"802.11/QoS data +HTC", LinkIEEE80211, cat(wifiData(qosData, 0x81, []byte{0, 0}), snap(etherIPv4), v4), okV4},
		{"802.11/four addresses", LinkIEEE80211, cat(wifiData(qosData, 0x03, []byte{0, 0}), snap(etherIPv4), v4), okV4},
		{"802.11/bridge tunnel SNAP", LinkIEEE80211, cat(wifiData(0x08, 0x01, nil), []byte{0xaa, 0xaa, 0x03, 0, 0, 0xf8}, be16(etherIPv4), v4), okV4},
		{"802.11/beacon", LinkIEEE80211, cat([]byte{0x80, 0}, make([]byte, 40)), nonIP(reasonWifiNotData)},
		{"802.11/ACK", LinkIEEE80211, cat([]byte{0xd4, 0}, make([]byte, 30)), nonIP(reasonWifiNotData)},
		{"802.11/QoS null", LinkIEEE80211, cat(wifiData(0xc8, 0x01, []byte{0, 0})), nonIP(reasonWifiNoData)},
		{"802.11/protected", LinkIEEE80211, cat(wifiData(0x08, 0x41, nil), make([]byte, 60)), nonIP(reasonWifiProtected)},
		{"802.11/A-MSDU", LinkIEEE80211, cat(wifiData(qosData, 0x01, []byte{0x80, 0}), make([]byte, 60)), nonIP(reasonWifiAMSDU)},
		{"802.11/LLC without SNAP", LinkIEEE80211, cat(wifiData(0x08, 0x01, nil), []byte{0x42, 0x42, 0x03, 0, 0, 0, 0, 0}), nonIP(reasonLLC)},
		{"802.11/ARP", LinkIEEE80211, cat(wifiData(0x08, 0x01, nil), snap(0x0806), make([]byte, 28)), nonIP(reasonNotIP)},
		{"802.11/short", LinkIEEE80211, make([]byte, 23), short},
		{"802.11/SNAP cut", LinkIEEE80211, cat(wifiData(0x08, 0x01, nil), []byte{0xaa, 0xaa}), short},
		{"radiotap/v4", LinkRadiotap, cat(radiotapHdr(0), wifiData(0x08, 0x01, nil), snap(etherIPv4), v4), okV4},
		{"radiotap/FCS flag", LinkRadiotap, cat(radiotapHdr(0x10), wifiData(0x08, 0x02, nil), snap(etherIPv6), v6, fcs), okV6},
		// QoS header of 26 bytes, padded to 28 (data pad flag 0x20).
		{"radiotap/data pad", LinkRadiotap, cat(radiotapHdr(0x20), wifiData(qosData, 0x01, []byte{0, 0}), []byte{0, 0}, snap(etherIPv4), v4), okV4},
		{"radiotap/version 1", LinkRadiotap, cat([]byte{1, 0, 8, 0, 0, 0, 0, 0}, wifiData(0x08, 0x01, nil), snap(etherIPv4), v4), rec{Kind: KindMalformed, Reason: reasonRadiotapBad}},
		{"radiotap/length beyond frame", LinkRadiotap, []byte{0, 0, 200, 0, 0, 0, 0, 0}, rec{Kind: KindMalformed, Reason: reasonRadiotapBad}},
		{"radiotap/endless presence words", LinkRadiotap, []byte{0, 0, 12, 0, 0, 0, 0, 0x80, 0, 0, 0, 0x80}, rec{Kind: KindMalformed, Reason: reasonRadiotapBad}},
		{"radiotap/flags beyond header", LinkRadiotap, []byte{0, 0, 16, 0, 3, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}, rec{Kind: KindMalformed, Reason: reasonRadiotapBad}},
		{"radiotap/short", LinkRadiotap, []byte{0, 0, 8}, short},
		{"NFLOG/v4 little-endian", LinkNFLOG, nflogRec(2, binary.LittleEndian, v4), okV4},
		{"NFLOG/v6 big-endian", LinkNFLOG, nflogRec(10, binary.BigEndian, v6), okV6},
		{"NFLOG/no payload", LinkNFLOG, nflogRec(2, binary.LittleEndian, nil)[:16], nonIP(reasonNFLOGNoPacket)},
		{"NFLOG/bad TLV", LinkNFLOG, []byte{2, 0, 0, 1, 0xff, 0xff, 9, 0, 0x45}, rec{Kind: KindMalformed, Reason: reasonNFLOGBad}},
		{"NFLOG/unknown family", LinkNFLOG, nflogRec(7, binary.LittleEndian, v4), nonIP(reasonAFUnknown)},
		{"NFLOG/short", LinkNFLOG, []byte{2, 0}, short},
		{"IPOIB/v4", LinkIPoIB, cat(make([]byte, 40), be16(etherIPv4), []byte{0, 0}, v4), okV4},
		{"IPOIB/short", LinkIPoIB, make([]byte, 43), short},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			p.Decode(tt.link, tt.data, len(tt.data))
			got := summarize(&p)
			want := tt.want
			want.Link, want.Len, want.Orig = tt.link, len(tt.data), len(tt.data)
			if got != want {
				t.Errorf("Decode(%v, % x)\n got %+v\nwant %+v", tt.link, tt.data[:min(len(tt.data), 80)], got, want)
			}
			if !tt.link.Supported() {
				t.Errorf("%v: Supported() = false", tt.link)
			}
		})
	}
}

// TestLinkTypeNames: every link type is named with its number and its
// registry name in the reason of a record that is not read, and in the
// error of a pcap file of that type.
func TestLinkTypeNames(t *testing.T) {
	for _, c := range []struct {
		link LinkType
		name string
	}{
		{LinkEthernet, "ETHERNET"}, {LinkPPP, "PPP"}, {LinkPPPHDLC, "PPP_HDLC"}, {LinkCHDLC, "C_HDLC"},
		{LinkIEEE80211, "IEEE802_11"}, {LinkRadiotap, "IEEE802_11_RADIOTAP"}, {LinkSLL2, "LINUX_SLL2"},
		{LinkNull, "NULL"}, {LinkLoop, "LOOP"}, {189, "USB_LINUX"}, {LinkNFLOG, "NFLOG"}, {119, "IEEE802_11_PRISM"},
		{3000, ""},
	} {
		if got := LinkType(c.link).Name(); got != c.name {
			t.Errorf("LinkType(%d).Name() = %q, want %q", c.link, got, c.name)
		}
	}
	for _, c := range []struct {
		link LinkType
		want string
	}{
		{107, "unsupported link type 107 (FRELAY)"},
		{119, "unsupported link type 119 (IEEE802_11_PRISM)"},
		{4000, "unsupported link type 4000"},
	} {
		var p Packet
		p.Decode(c.link, []byte{1, 2, 3}, 3)
		if p.Kind != KindNonIP || p.Reason != c.want {
			t.Errorf("link %d: %v %q, want NonIP %q", c.link, p.Kind, p.Reason, c.want)
		}
		// A pcap file of the type opens; its records carry the reason
		// (so that a caller can count and name them).
		f := newPcap(binary.LittleEndian, false, uint32(c.link), 0)
		f.add(t0, []byte{1, 2, 3}, 0)
		r, err := NewReader(bytes.NewReader(f.bytes()))
		if err != nil {
			t.Fatalf("pcap of link %d: %v", c.link, err)
		}
		if q, err := r.Next(); err != nil || q.Kind != KindNonIP || q.Reason != c.want {
			t.Errorf("pcap of link %d: record %+v, %v; want NonIP %q", c.link, q, err, c.want)
		}
	}
	// Naming costs no allocation per record, named or not.
	var p Packet
	frame := []byte{1, 2, 3}
	for _, l := range []LinkType{107, 4000} {
		if n := testing.AllocsPerRun(100, func() { p.Decode(l, frame, 3) }); n != 0 {
			t.Errorf("link %d: %v allocations per record", l, n)
		}
	}
}

// TestDecap: with Decap, the TCP packet inside each tunnel is decoded
// (its addresses, not the tunnel endpoints'); without, the record is
// tunnelled traffic and not TCP.
func TestDecap(t *testing.T) {
	seg := tcp(1031, 23, 10)
	v4 := ipv4(protoTCP, seg, v4opts{})
	v6 := ipv6(protoTCP, nil, seg, 0)
	okV4 := rec{Kind: KindTCP, Family: 4, Src: "192.168.1.5", Dst: "192.168.1.35", Proto: 6, PayLen: 30, TCPLen: 30, SPort: 1031, DPort: 23}
	okV6 := rec{Kind: KindTCP, Family: 6, Src: "2001:db8::1", Dst: "2001:db8::2", Proto: 6, PayLen: 30, TCPLen: 30, SPort: 1031, DPort: 23}
	inner := eth(etherIPv4, nil, v4)
	vxlan := cat([]byte{0x08, 0, 0, 0, 0, 0, 42, 0}, inner)
	geneve := func(proto uint16, opts int, payload []byte) []byte {
		return cat([]byte{byte(opts)}, []byte{0}, be16(proto), []byte{0, 0, 7, 0}, make([]byte, 4*opts), payload)
	}
	label := func(l uint32, bottom bool) []byte {
		v := l<<12 | 64
		if bottom {
			v |= 1 << 8
		}
		return binary.BigEndian.AppendUint32(nil, v)
	}
	gre := func(flags, proto uint16, extra int, payload []byte) []byte {
		return cat(be16(flags), be16(proto), make([]byte, extra), payload)
	}
	pppoe := func(payload []byte) []byte {
		return cat([]byte{0x11, 0, 0, 1}, be16(uint16(len(payload))), payload)
	}
	tunShort := rec{Kind: KindMalformed, Reason: reasonTunnelShort}

	tests := []struct {
		name, tunnel string
		link         LinkType
		data         []byte
		want         rec
		off          Kind // Kind without Decap
	}{
		{"VXLAN", "VXLAN", LinkEthernet, eth(etherIPv4, nil, outer4(protoUDP, udp(4789, vxlan))), okV4, KindNonTCP},
		{"VXLAN over IPv6", "VXLAN", LinkEthernet, eth(etherIPv6, nil, outer6(protoUDP, udp(4789, vxlan))), okV4, KindNonTCP},
		{"VXLAN Linux port 8472", "VXLAN", LinkRaw, outer4(protoUDP, udp(8472, vxlan)), okV4, KindNonTCP},
		{"VXLAN inner VLAN", "VXLAN", LinkRaw, outer4(protoUDP, udp(4789, cat(vxlan[:8], eth(etherIPv6, []uint16{etherVLAN}, v6)))), okV6, KindNonTCP},
		{"VXLAN-GPE IPv6", "VXLAN-GPE", LinkRaw, outer4(protoUDP, udp(4790, cat([]byte{0x0c, 0, 0, 2, 0, 0, 1, 0}, v6))), okV6, KindNonTCP},
		{"Geneve Ethernet", "Geneve", LinkRaw, outer4(protoUDP, udp(6081, geneve(etherTEB, 0, inner))), okV4, KindNonTCP},
		{"Geneve options, IPv6", "Geneve", LinkRaw, outer4(protoUDP, udp(6081, geneve(etherIPv6, 2, v6))), okV6, KindNonTCP},
		{"MPLS in UDP", "MPLS-in-UDP", LinkRaw, outer4(protoUDP, udp(6635, cat(label(16, true), v4))), okV4, KindNonTCP},
		{"GRE IPv4", "GRE", LinkRaw, outer4(protoGRE, gre(0, etherIPv4, 0, v4)), okV4, KindNonTCP},
		{"GRE key+seq+csum, Ethernet", "GRE", LinkRaw, outer4(protoGRE, gre(0xb000, etherTEB, 12, inner)), okV4, KindNonTCP},
		{"GRE over IPv6, IPv6", "GRE", LinkRaw, outer6(protoGRE, gre(0x2000, etherIPv6, 4, v6)), okV6, KindNonTCP},
		{"GRE MPLS", "MPLS", LinkRaw, outer4(protoGRE, gre(0, etherMPLS, 0, cat(label(100, false), label(200, true), v6))), okV6, KindNonTCP},
		{"PPTP enhanced GRE", "GRE", LinkRaw, outer4(protoGRE, gre(0x3081, etherPPP, 12, cat([]byte{0xff, 0x03}, be16(pppIPv4), v4))), okV4, KindNonTCP},
		{"GRE WCCP redirect", "GRE", LinkRaw, outer4(protoGRE, gre(0, etherWCCP, 4, v4)), okV4, KindNonTCP},
		{"GRE WCCP cut", "GRE", LinkRaw, outer4(protoGRE, gre(0, etherWCCP, 0, []byte{0, 0})), tunShort, KindNonTCP},
		{"IP-in-IP", "IP-in-IP", LinkRaw, outer4(protoIPIP, v4), okV4, KindNonTCP},
		{"IPv6 in IPv4 (6in4)", "IP-in-IP", LinkRaw, outer4(protoIPv6, v6), okV6, KindNonTCP},
		{"IPv6 in IPv6", "IP-in-IP", LinkRaw, outer6(protoIPv6, v6), okV6, KindNonTCP},
		{"IPv4 in IPv6", "IP-in-IP", LinkRaw, outer6(protoIPIP, v4), okV4, KindNonTCP},
		{"MPLS stack", "MPLS", LinkEthernet, eth(etherMPLS, nil, cat(label(1, false), label(2, false), label(3, true), v4)), okV4, KindNonIP},
		{"MPLS pseudowire Ethernet", "MPLS", LinkEthernet, eth(etherMPLS, nil, cat(label(1, true), []byte{0, 0, 0, 0}, inner)), okV4, KindNonIP},
		{"MPLS over PPP", "MPLS", LinkPPP, cat(be16(pppMPLS), label(5, true), v6), okV6, KindNonIP},
		{"PPPoE session", "PPPoE", LinkEthernet, eth(etherPPPoESession, nil, pppoe(cat(be16(pppIPv4), v4))), okV4, KindNonIP},
		{"PPPoE in VLAN", "PPPoE", LinkEthernet, eth(etherPPPoESession, []uint16{etherVLAN}, pppoe(cat(be16(pppIPv6), v6))), okV6, KindNonIP},
		{"VXLAN in GRE", "VXLAN", LinkRaw, outer4(protoGRE, gre(0, etherIPv4, 0, outer4(protoUDP, udp(4789, vxlan)))), okV4, KindNonTCP},

		{"VXLAN cut", "VXLAN", LinkRaw, outer4(protoUDP, udp(4789, vxlan[:20])), tunShort, KindNonTCP},
		{"Geneve options cut", "Geneve", LinkRaw, outer4(protoUDP, udp(6081, geneve(etherIPv4, 10, nil)[:20])), tunShort, KindNonTCP},
		{"GRE cut", "GRE", LinkRaw, outer4(protoGRE, []byte{0x20, 0}), tunShort, KindNonTCP},
		{"GRE key cut", "GRE", LinkRaw, outer4(protoGRE, gre(0x2000, etherIPv4, 2, nil)), tunShort, KindNonTCP},
		{"GRE routing", "GRE", LinkRaw, outer4(protoGRE, gre(0x4000, etherIPv4, 4, v4)), rec{Kind: KindNonIP, Reason: reasonTunnelOther}, KindNonTCP},
		{"GRE ERSPAN", "GRE", LinkRaw, outer4(protoGRE, gre(0x1000, 0x88be, 12, inner)), rec{Kind: KindNonIP, Reason: reasonTunnelOther}, KindNonTCP},
		{"MPLS no bottom", "MPLS", LinkEthernet, eth(etherMPLS, nil, bytes.Repeat(label(1, false), 20)), rec{Kind: KindMalformed, Reason: reasonMPLSDeep}, KindNonIP},
		{"MPLS cut", "MPLS", LinkEthernet, eth(etherMPLS, nil, label(1, false)[:3]), tunShort, KindNonIP},
		{"MPLS empty payload", "MPLS", LinkEthernet, eth(etherMPLS, nil, label(1, true)), tunShort, KindNonIP},
		{"MPLS unknown payload", "MPLS", LinkEthernet, eth(etherMPLS, nil, cat(label(1, true), []byte{0x55, 0, 0, 0})), rec{Kind: KindNonIP, Reason: reasonTunnelOther}, KindNonIP},
		{"PPPoE LCP", "PPPoE", LinkEthernet, eth(etherPPPoESession, nil, pppoe(cat(be16(0xc021), make([]byte, 10)))), rec{Kind: KindNonIP, Reason: reasonPPPNotIP}, KindNonIP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			p.Decap = true
			p.Decode(tt.link, tt.data, len(tt.data))
			got := summarize(&p)
			want := tt.want
			want.Link, want.Len, want.Orig = tt.link, len(tt.data), len(tt.data)
			if want.Kind != KindTCP {
				// Outer addresses stay as far as read; compare the rest.
				got.Family, got.Src, got.Dst, got.Proto, got.PayLen, got.TCPLen, got.SPort, got.DPort = 0, "", "", 0, 0, 0, 0, 0
			}
			if got != want || p.Tunnel != tt.tunnel {
				t.Errorf("Decode(%v, % x)\n got %+v tunnel %q\nwant %+v tunnel %q", tt.link, tt.data[:min(len(tt.data), 96)], got, p.Tunnel, want, tt.tunnel)
			}
			if want.Kind == KindTCP && p.IPLen != len(p.IP) {
				t.Errorf("IPLen %d, inner IP packet of %d bytes", p.IPLen, len(p.IP))
			}
			p.Decap = false
			p.Decode(tt.link, tt.data, len(tt.data))
			if p.Kind != tt.off || p.Reason != reasonTunnelOff || p.Tunnel != "" {
				t.Errorf("without Decap: %v %q tunnel %q, want %v %q", p.Kind, p.Reason, p.Tunnel, tt.off, reasonTunnelOff)
			}
		})
	}
}

// TestDecapSnapAndDepth: a tunnel cut by the snap length leaves the inner
// packet's length to its IP header, as for an untunnelled one; a UDP
// length that disagrees with the IP length is malformed; nesting is
// bounded; a UDP packet to another port is plain UDP.
func TestDecapSnapAndDepth(t *testing.T) {
	v4 := ipv4(protoTCP, tcp(1031, 23, 100), v4opts{})
	pkt := outer4(protoUDP, udp(4789, cat([]byte{0x08, 0, 0, 0, 0, 0, 42, 0}, eth(etherIPv4, nil, v4))))
	var p Packet
	p.Decap = true
	p.Decode(LinkRaw, pkt[:len(pkt)-60], len(pkt))
	if p.Kind != KindTCP || p.IPPayloadLen != 120 || len(p.TCP) != 60 || !p.Truncated() || p.IPLen != 140 {
		t.Errorf("cut VXLAN: %+v", summarize(&p))
	}
	bad := bytes.Clone(pkt)
	binary.BigEndian.PutUint16(bad[20+4:], 4000) // UDP length beyond the IP payload
	p.Decode(LinkRaw, bad, len(bad))
	if p.Kind != KindMalformed || p.Reason != reasonUDPLen {
		t.Errorf("bad UDP length: %v %q", p.Kind, p.Reason)
	}
	// BIG TCP through VXLAN: IPv4 total lengths 0 and UDP length 0.
	bigInner := eth(etherIPv4, nil, ipv4(protoTCP, tcp(1, 2, 0x10000), v4opts{}))
	bigInner[14+2], bigInner[14+3] = 0, 0
	big := outer4(protoUDP, udp(4789, cat([]byte{0x08, 0, 0, 0, 0, 0, 42, 0}, bigInner)))
	big[2], big[3], big[20+4], big[20+5] = 0, 0, 0, 0
	p.Decode(LinkRaw, big, len(big))
	if p.Kind != KindTCP || p.IPPayloadLen != 0x10000+20 || p.Tunnel != "VXLAN" {
		t.Errorf("BIG TCP in VXLAN: %+v %q", summarize(&p), p.Tunnel)
	}
	deep := v4
	for range maxTunnels + 1 {
		deep = outer4(protoIPIP, deep)
	}
	p.Decode(LinkRaw, deep, len(deep))
	if p.Kind != KindMalformed || p.Reason != reasonTunnelDeep {
		t.Errorf("%d nested tunnels: %v %q", maxTunnels+1, p.Kind, p.Reason)
	}
	p.Decode(LinkRaw, deep[20:], len(deep)-20)
	if p.Kind != KindTCP {
		t.Errorf("%d nested tunnels: %v %q", maxTunnels, p.Kind, p.Reason)
	}
	dns := outer4(protoUDP, udp(53, make([]byte, 30)))
	p.Decode(LinkRaw, dns, len(dns))
	if p.Kind != KindNonTCP || p.Reason != reasonNotTCP || p.Tunnel != "" {
		t.Errorf("DNS: %v %q %q", p.Kind, p.Reason, p.Tunnel)
	}
	// A fragment of a tunnel packet stays a fragment: conntrack on the
	// outer host reassembles before anything decapsulates it.
	frag := ipv4(protoUDP, udp(4789, make([]byte, 40)), v4opts{frag: 0x2000})
	p.Decode(LinkRaw, frag, len(frag))
	if p.Kind != KindFragment {
		t.Errorf("fragment: %v %q", p.Kind, p.Reason)
	}
}

// TestReaderSetDecap: the Reader decodes tunnels once asked to.
func TestReaderSetDecap(t *testing.T) {
	v4 := ipv4(protoTCP, tcp(1031, 23, 0), v4opts{})
	pkt := outer4(protoGRE, cat(be16(0), be16(etherIPv4), v4))
	f := newPcap(binary.LittleEndian, false, uint32(LinkRaw), 0)
	for range 2 {
		f.add(t0, pkt, 0)
	}
	r, err := NewReader(bytes.NewReader(f.bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for i := range 2 {
		r.SetDecap(i == 1)
		p, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, fmt.Sprintf("%v/%s/%v", p.Kind, p.Tunnel, p.Src))
	}
	if want := "[NonTCP//10.0.0.1 TCP/GRE/192.168.1.5]"; fmt.Sprint(kinds) != want {
		t.Errorf("got %v, want %s", kinds, want)
	}
}
