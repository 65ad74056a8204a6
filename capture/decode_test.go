package capture

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecode(t *testing.T) {
	seg := tcp(1031, 23, 10)
	v4 := ipv4(protoTCP, seg, v4opts{})
	v6 := ipv6(protoTCP, nil, seg, 0)
	const (
		s4, d4 = "192.168.1.5", "192.168.1.35"
		s6, d6 = "2001:db8::1", "2001:db8::2"
	)
	okV4 := rec{Kind: KindTCP, Family: 4, Src: s4, Dst: d4, Proto: 6, PayLen: 30, TCPLen: 30, SPort: 1031, DPort: 23}
	okV6 := rec{Kind: KindTCP, Family: 6, Src: s6, Dst: d6, Proto: 6, PayLen: 30, TCPLen: 30, SPort: 1031, DPort: 23}
	set := func(b []byte, i int, v byte) []byte { b[i] = v; return b }
	// Super-packets over 64 KiB: the builders' 16-bit length fields wrap
	// to 0, which is exactly what Linux BIG TCP writes.
	big4 := ipv4(protoTCP, tcp(1, 2, 0x10000-40), v4opts{})
	big6 := ipv6(protoTCP, nil, tcp(1, 2, 0x10000-20), 0)
	// RFC 2675: payload length 0, hop-by-hop Jumbo Payload option (0xC2).
	jumbo6 := ipv6(protoTCP, []ext{{protoHopOpts, binary.BigEndian.AppendUint32([]byte{0, 0xc2, 4}, 8+0x10000)}}, tcp(1, 2, 0x10000-20), 0)
	jumbo6[4], jumbo6[5] = 0, 0
	with := func(r rec, f func(*rec)) rec { f(&r); return r }
	malformed := func(reason string) rec { return rec{Kind: KindMalformed, Reason: reason} }

	tests := []struct {
		name string
		link LinkType
		data []byte
		orig int // 0: len(data)
		want rec
	}{
		// Link layers.
		{"ethernet/v4", LinkEthernet, eth(etherIPv4, nil, v4), 0, okV4},
		{"ethernet/v6", LinkEthernet, eth(etherIPv6, nil, v6), 0, okV6},
		{"ethernet/802.1Q", LinkEthernet, eth(etherIPv4, []uint16{etherVLAN}, v4), 0, okV4},
		{"ethernet/802.1ad", LinkEthernet, eth(etherIPv6, []uint16{etherQinQ}, v6), 0, okV6},
		{"ethernet/QinQ", LinkEthernet, eth(etherIPv4, []uint16{etherQinQ, etherVLAN}, v4), 0, okV4},
		{"ethernet/0x9100+0x8100", LinkEthernet, eth(etherIPv4, []uint16{etherQinQ1, etherVLAN}, v4), 0, okV4},
		{"ethernet/9 tags", LinkEthernet, eth(etherIPv4, []uint16{etherVLAN, etherVLAN, etherVLAN, etherVLAN, etherVLAN, etherVLAN, etherVLAN, etherVLAN, etherVLAN}, v4), 0, malformed(reasonVLANTooDeep)},
		{"ethernet/tag cut", LinkEthernet, eth(etherIPv4, []uint16{etherVLAN}, nil)[:16], 0, malformed(reasonLinkShort)},
		{"ethernet/padding", LinkEthernet, append(eth(etherIPv4, nil, ipv4(protoTCP, tcp(1, 2, 0), v4opts{})), 0, 0, 0, 0, 0, 0), 0,
			rec{Kind: KindTCP, Family: 4, Src: s4, Dst: d4, Proto: 6, PayLen: 20, TCPLen: 20, SPort: 1, DPort: 2}},
		{"ethernet/ARP", LinkEthernet, eth(0x0806, nil, make([]byte, 28)), 0, rec{Kind: KindNonIP, Reason: reasonNotIP}},
		{"ethernet/802.3 LLC", LinkEthernet, eth(46, nil, make([]byte, 46)), 0, rec{Kind: KindNonIP, Reason: reasonNotIP}},
		{"ethernet/short", LinkEthernet, make([]byte, 13), 0, malformed(reasonLinkShort)},
		{"ethernet/v6 in v4 type", LinkEthernet, eth(etherIPv4, nil, v6), 0, malformed(reasonVersion)},
		{"raw/v4", LinkRaw, v4, 0, okV4},
		{"raw/v6", LinkRaw, v6, 0, okV6},
		{"raw/empty", LinkRaw, nil, 0, malformed(reasonLinkShort)},
		{"raw/version 5", LinkRaw, append([]byte{0x50}, v4[1:]...), 0, rec{Kind: KindNonIP, Reason: reasonNotIP}},
		{"ipv4 link", LinkIPv4, v4, 0, okV4},
		{"ipv4 link/v6 packet", LinkIPv4, v6, 0, malformed(reasonVersion)},
		{"ipv6 link", LinkIPv6, v6, 0, okV6},
		{"ipv6 link/v4 packet", LinkIPv6, v4, 0, malformed(reasonVersion)},
		{"sll/v4", LinkLinuxSLL, sll(1, etherIPv4, v4), 0, okV4},
		{"sll/v6", LinkLinuxSLL, sll(1, etherIPv6, v6), 0, okV6},
		{"sll/vlan", LinkLinuxSLL, sll(1, etherVLAN, append([]byte{0, 7, 0x08, 0x00}, v4...)), 0, okV4},
		{"sll/netlink", LinkLinuxSLL, sll(arphrdNetlink, etherIPv4, v4), 0, rec{Kind: KindNonIP, Reason: reasonNetlinkSLL}},
		{"sll/short", LinkLinuxSLL, make([]byte, 15), 0, malformed(reasonLinkShort)},
		{"sll2/v4", LinkSLL2, sll2(1, etherIPv4, v4), 0, okV4},
		{"sll2/v6", LinkSLL2, sll2(1, etherIPv6, v6), 0, okV6},
		{"sll2/netlink", LinkSLL2, sll2(arphrdNetlink, etherIPv6, v6), 0, rec{Kind: KindNonIP, Reason: reasonNetlinkSLL}},
		{"sll2/short", LinkSLL2, make([]byte, 19), 0, malformed(reasonLinkShort)},
		{"null/le v4", LinkNull, null(2, binary.LittleEndian, v4), 0, okV4},
		{"null/be v4", LinkNull, null(2, binary.BigEndian, v4), 0, okV4},
		{"null/le v6 BSD", LinkNull, null(24, binary.LittleEndian, v6), 0, okV6},
		{"null/be v6 FreeBSD", LinkNull, null(28, binary.BigEndian, v6), 0, okV6},
		{"null/le v6 Darwin", LinkNull, null(30, binary.LittleEndian, v6), 0, okV6},
		{"null/unknown AF", LinkNull, null(7, binary.LittleEndian, v4), 0, rec{Kind: KindNonIP, Reason: reasonAFUnknown}},
		{"null/short", LinkNull, []byte{2, 0, 0}, 0, malformed(reasonLinkShort)},
		{"loop/v4", LinkLoop, null(2, binary.BigEndian, v4), 0, okV4},
		{"loop/v6", LinkLoop, null(24, binary.BigEndian, v6), 0, okV6},
		{"loop/host order is wrong", LinkLoop, null(2, binary.LittleEndian, v4), 0, rec{Kind: KindNonIP, Reason: reasonAFUnknown}},
		{"unsupported link", LinkType(147), v4, 0, rec{Kind: KindNonIP, Reason: "unsupported link type 147 (USER0)"}},
		{"unnamed link", LinkType(3000), v4, 0, rec{Kind: KindNonIP, Reason: "unsupported link type 3000"}},

		// IPv4.
		{"v4/options", LinkRaw, ipv4(protoTCP, seg, v4opts{opts: []byte{1, 1, 1, 0, 7, 3, 4, 0}}), 0, okV4},
		{"v4/udp", LinkRaw, ipv4(17, make([]byte, 8), v4opts{}), 0,
			rec{Kind: KindNonTCP, Reason: reasonNotTCP, Family: 4, Src: s4, Dst: d4, Proto: 17, PayLen: 8}},
		{"v4/MF first fragment", LinkRaw, ipv4(protoTCP, seg, v4opts{frag: 0x2000}), 0,
			rec{Kind: KindFragment, Reason: reasonV4Frag, Family: 4, Src: s4, Dst: d4, Proto: 6, PayLen: 30}},
		{"v4/last fragment", LinkRaw, ipv4(protoTCP, seg, v4opts{frag: 0x0010}), 0,
			rec{Kind: KindFragment, Reason: reasonV4Frag, Family: 4, Src: s4, Dst: d4, Proto: 6, PayLen: 30}},
		{"v4/DF is not a fragment", LinkRaw, ipv4(protoTCP, seg, v4opts{frag: 0x4000}), 0, okV4},
		{"v4/short", LinkRaw, v4[:19], 0, malformed(reasonV4Short)},
		{"v4/IHL 4", LinkRaw, ipv4(protoTCP, seg, v4opts{ihl: 4}), 0, malformed(reasonV4IHL)},
		{"v4/options cut", LinkRaw, ipv4(protoTCP, nil, v4opts{opts: []byte{1, 1, 1, 0}, ihl: 15}), 0,
			rec{Kind: KindMalformed, Reason: reasonV4Opts, Family: 4, Src: s4, Dst: d4, Proto: 6}},
		{"v4/total below header", LinkRaw, ipv4(protoTCP, seg, v4opts{totAdj: -40}), 0,
			rec{Kind: KindMalformed, Reason: reasonV4TotLen, Family: 4, Src: s4, Dst: d4, Proto: 6}},
		{"v4/total beyond wire", LinkRaw, ipv4(protoTCP, seg, v4opts{totAdj: 1}), 0,
			rec{Kind: KindMalformed, Reason: reasonV4Over, Family: 4, Src: s4, Dst: d4, Proto: 6}},
		{"v4/snap cut payload", LinkRaw, v4[:45], 50, with(okV4, func(r *rec) { r.TCPLen = 25 })},
		{"v4/snap cut TCP header", LinkRaw, v4[:30], 50,
			rec{Kind: KindMalformed, Reason: reasonTCPSnap, Family: 4, Src: s4, Dst: d4, Proto: 6, PayLen: 30, TCPLen: 10, SPort: 1031, DPort: 23}},
		{"v4/snap cut before the ports", LinkRaw, v4[:23], 50,
			rec{Kind: KindMalformed, Reason: reasonTCPSnap, Family: 4, Src: s4, Dst: d4, Proto: 6, PayLen: 30, TCPLen: 3}},
		{"v4/BIG TCP total length 0", LinkRaw, big4, 0,
			rec{Kind: KindTCP, Family: 4, Src: s4, Dst: d4, Proto: 6, PayLen: len(big4) - 20, TCPLen: len(big4) - 20, SPort: 1, DPort: 2}},
		{"v4/BIG TCP cut by snap", LinkRaw, big4[:1000], len(big4),
			rec{Kind: KindTCP, Family: 4, Src: s4, Dst: d4, Proto: 6, PayLen: len(big4) - 20, TCPLen: 980, SPort: 1, DPort: 2}},
		{"v4/total length 0 under 64K: TSO send", LinkRaw, ipv4(protoTCP, seg, v4opts{totAdj: -50}), 0, okV4},
		{"v4/TCP shorter than 20", LinkRaw, ipv4(protoTCP, make([]byte, 19), v4opts{}), 0,
			rec{Kind: KindMalformed, Reason: reasonTCPShort, Family: 4, Src: s4, Dst: d4, Proto: 6, PayLen: 19, TCPLen: 19}},
		{"v4/TCP of 12 bytes keeps its ports", LinkRaw, ipv4(protoTCP, seg[:12], v4opts{}), 0,
			rec{Kind: KindMalformed, Reason: reasonTCPShort, Family: 4, Src: s4, Dst: d4, Proto: 6, PayLen: 12, TCPLen: 12, SPort: 1031, DPort: 23}},
		{"v4/TCP of 3 bytes has no ports", LinkRaw, ipv4(protoTCP, seg[:3], v4opts{}), 0,
			rec{Kind: KindMalformed, Reason: reasonTCPShort, Family: 4, Src: s4, Dst: d4, Proto: 6, PayLen: 3, TCPLen: 3}},

		// IPv6 and its extension headers.
		{"v6/hop-by-hop", LinkRaw, ipv6(protoTCP, []ext{{protoHopOpts, optsHdr(0)}}, seg, 0), 0, okV6},
		{"v6/hbh+routing+dst+AH", LinkRaw, ipv6(protoTCP, []ext{{protoHopOpts, optsHdr(1)}, {protoRouting, optsHdr(2)}, {protoDstOpts, optsHdr(0)}, {protoAH, ahHdr()}}, seg, 0), 0, okV6},
		{"v6/atomic fragment", LinkRaw, ipv6(protoTCP, []ext{{protoFragment, fragHdr(0, false)}}, seg, 0), 0, okV6},
		{"v6/first fragment", LinkRaw, ipv6(protoTCP, []ext{{protoFragment, fragHdr(0, true)}}, seg, 0), 0,
			rec{Kind: KindFragment, Reason: reasonV6Frag, Family: 6, Src: s6, Dst: d6, Proto: 6, PayLen: 30}},
		{"v6/later fragment", LinkRaw, ipv6(protoTCP, []ext{{protoDstOpts, optsHdr(0)}, {protoFragment, fragHdr(185, false)}}, seg, 0), 0,
			rec{Kind: KindFragment, Reason: reasonV6Frag, Family: 6, Src: s6, Dst: d6, Proto: 6, PayLen: 30}},
		{"v6/ESP", LinkRaw, ipv6(protoESP, []ext{{protoHopOpts, optsHdr(0)}}, make([]byte, 24), 0), 0,
			rec{Kind: KindNonTCP, Reason: reasonESP, Family: 6, Src: s6, Dst: d6, Proto: protoESP, PayLen: 24}},
		{"v6/payload length 0", LinkRaw, ipv6(protoNoNext, nil, nil, 0)[:40], 48,
			rec{Kind: KindMalformed, Reason: reasonV6Jumbo, Family: 6, Src: s6, Dst: d6, Proto: protoNoNext}},
		{"v6/BIG TCP payload length 0", LinkRaw, big6, 0,
			rec{Kind: KindTCP, Family: 6, Src: s6, Dst: d6, Proto: 6, PayLen: len(big6) - 40, TCPLen: len(big6) - 40, SPort: 1, DPort: 2}},
		{"v6/jumbo option", LinkRaw, jumbo6, 0,
			rec{Kind: KindTCP, Family: 6, Src: s6, Dst: d6, Proto: 6, PayLen: len(jumbo6) - 48, TCPLen: len(jumbo6) - 48, SPort: 1, DPort: 2}},
		{"v6/no next header after dst", LinkRaw, ipv6(protoNoNext, []ext{{protoDstOpts, optsHdr(0)}}, nil, 0), 0,
			rec{Kind: KindNonTCP, Reason: reasonNoNext, Family: 6, Src: s6, Dst: d6, Proto: protoNoNext, PayLen: 0}},
		{"v6/icmpv6", LinkRaw, ipv6(58, nil, make([]byte, 8), 0), 0,
			rec{Kind: KindNonTCP, Reason: reasonNotTCP, Family: 6, Src: s6, Dst: d6, Proto: 58, PayLen: 8}},
		{"v6/short", LinkRaw, v6[:39], 0, malformed(reasonV6Short)},
		{"v6/payload beyond wire", LinkRaw, ipv6(protoTCP, nil, seg, 1), 0,
			rec{Kind: KindMalformed, Reason: reasonV6Over, Family: 6, Src: s6, Dst: d6, Proto: 6}},
		{"v6/ext beyond payload", LinkRaw, set(ipv6(protoTCP, []ext{{protoDstOpts, optsHdr(0)}}, nil, 0), 41, 8), 0,
			rec{Kind: KindMalformed, Reason: reasonV6ExtOver, Family: 6, Src: s6, Dst: d6, Proto: protoDstOpts}},
		{"v6/ext cut by snap", LinkRaw, ipv6(protoTCP, []ext{{protoHopOpts, optsHdr(0)}}, seg, 0)[:41], 78,
			rec{Kind: KindMalformed, Reason: reasonV6ExtSnap, Family: 6, Src: s6, Dst: d6, Proto: protoHopOpts}},
		{"v6/ext past snap, then TCP", LinkRaw, ipv6(protoTCP, []ext{{protoHopOpts, optsHdr(3)}}, seg, 0)[:48], 102,
			rec{Kind: KindMalformed, Reason: reasonTCPSnap, Family: 6, Src: s6, Dst: d6, Proto: 6, PayLen: 30}},
		{"v6/snap cut payload", LinkRaw, ipv6(protoTCP, []ext{{protoHopOpts, optsHdr(0)}}, seg, 0)[:70], 78,
			with(okV6, func(r *rec) { r.TCPLen = 22 })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := tt.orig
			if orig == 0 {
				orig = len(tt.data)
			}
			var p Packet
			p.Decode(tt.link, tt.data, orig)
			got := summarize(&p)
			want := tt.want
			want.Link, want.Len, want.Orig = tt.link, len(tt.data), orig
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Decode(%v, % x) (-want +got):\n%s", tt.link, tt.data[:min(len(tt.data), 80)], diff)
			}
			if p.Kind == KindTCP && p.Truncated() != (p.IPPayloadLen > len(p.TCP)) {
				t.Errorf("Truncated() = %v with payload %d and %d captured", p.Truncated(), p.IPPayloadLen, len(p.TCP))
			}
		})
	}
}

// TestDecodeIPLen checks Packet.IPLen, the length nf_conntrack_acct
// counts: the whole IP packet as its header gives it, IPv4 options and
// IPv6 extension headers included, link padding and FCS not, and bytes a
// short snap length cut off still counted.
func TestDecodeIPLen(t *testing.T) {
	seg := tcp(1031, 23, 10) // 30 bytes
	v4 := ipv4(protoTCP, seg, v4opts{})
	v4opt := ipv4(protoTCP, seg, v4opts{opts: []byte{0x94, 4, 0, 0}}) // Router Alert
	v6 := ipv6(protoTCP, nil, seg, 0)
	v6ext := ipv6(protoTCP, []ext{{protoHopOpts, optsHdr(0)}, {protoDstOpts, optsHdr(1)}}, seg, 0)
	big4 := ipv4(protoTCP, tcp(1, 2, 0x10000-40), v4opts{})
	for _, c := range []struct {
		name string
		link LinkType
		data []byte
		orig int // 0: len(data)
		want int
	}{
		{"v4", LinkRaw, v4, 0, 50},
		{"v4 options", LinkRaw, v4opt, 0, 54},
		{"v4 ethernet padding", LinkEthernet, append(eth(etherIPv4, nil, v4), 0, 0, 0, 0), 0, 50},
		{"v4 cut by snap", LinkRaw, v4[:40], 50, 50},
		{"v4 BIG TCP", LinkRaw, big4, 0, len(big4)},
		{"v6", LinkRaw, v6, 0, 70},
		{"v6 hop-by-hop and destination options", LinkRaw, v6ext, 0, 70 + 8 + 16},
	} {
		orig := c.orig
		if orig == 0 {
			orig = len(c.data)
		}
		var p Packet
		p.Decode(c.link, c.data, orig)
		if p.Kind != KindTCP && p.Kind != KindMalformed || p.IPLen != c.want {
			t.Errorf("%s: %v, IPLen %d, want %d", c.name, p.Kind, p.IPLen, c.want)
		}
		p.Decode(LinkEthernet, eth(0x0806, nil, make([]byte, 28)), 42)
		if p.IPLen != 0 {
			t.Errorf("%s: IPLen %d left over for an ARP frame", c.name, p.IPLen)
		}
	}
}

// TestDecodeIP checks Packet.IP: the packet from its IP header on, with
// link padding cut once the IP length is known, and nil when the link
// layer carries no IP.
func TestDecodeIP(t *testing.T) {
	v4 := ipv4(protoTCP, tcp(1031, 23, 10), v4opts{})
	v6 := ipv6(protoTCP, []ext{{protoHopOpts, optsHdr(0)}}, tcp(1031, 23, 10), 0)
	frag := ipv4(protoTCP, tcp(1, 2, 0), v4opts{frag: 0x2000})
	udp := ipv4(17, make([]byte, 8), v4opts{})
	pad := []byte{0, 0, 0, 0, 0, 0}
	tests := []struct {
		name string
		link LinkType
		data []byte
		orig int // 0: len(data)
		want []byte
	}{
		{"raw/v4", LinkRaw, v4, 0, v4},
		{"raw/v6", LinkRaw, v6, 0, v6},
		{"ipv6 link", LinkIPv6, v6, 0, v6},
		{"ethernet/v4", LinkEthernet, eth(etherIPv4, nil, v4), 0, v4},
		{"ethernet/QinQ v6", LinkEthernet, eth(etherIPv6, []uint16{etherQinQ, etherVLAN}, v6), 0, v6},
		{"ethernet/padding cut", LinkEthernet, append(eth(etherIPv4, nil, v4), pad...), 0, v4},
		{"ethernet/v6 padding cut", LinkEthernet, append(eth(etherIPv6, nil, v6), pad...), 0, v6},
		{"ethernet/fragment", LinkEthernet, append(eth(etherIPv4, nil, frag), pad...), 0, frag},
		{"ethernet/udp", LinkEthernet, eth(etherIPv4, nil, udp), 0, udp},
		{"sll", LinkLinuxSLL, sll(1, etherIPv4, v4), 0, v4},
		{"sll2", LinkSLL2, sll2(1, etherIPv6, v6), 0, v6},
		{"null", LinkNull, null(24, binary.LittleEndian, v6), 0, v6},
		{"snap cut", LinkRaw, v4[:45], 50, v4[:45]},
		// Malformed IP: the bytes the link layer called IP, as captured.
		{"v4 short", LinkEthernet, eth(etherIPv4, nil, v4[:19]), 0, v4[:19]},
		{"v6 in v4 type", LinkEthernet, append(eth(etherIPv4, nil, v6), pad...), 0, append(v6, pad...)},
		{"v4 beyond wire", LinkRaw, ipv4(protoTCP, tcp(1, 2, 0), v4opts{totAdj: 1}), 0, ipv4(protoTCP, tcp(1, 2, 0), v4opts{totAdj: 1})},
		// No IP.
		{"ARP", LinkEthernet, eth(0x0806, nil, make([]byte, 28)), 0, nil},
		{"raw/version 5", LinkRaw, append([]byte{0x50}, v4[1:]...), 0, nil},
		{"ethernet/short", LinkEthernet, make([]byte, 13), 0, nil},
		{"sll/netlink", LinkLinuxSLL, sll(arphrdNetlink, etherIPv4, v4), 0, nil},
		{"null/unknown AF", LinkNull, null(7, binary.LittleEndian, v4), 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := tt.orig
			if orig == 0 {
				orig = len(tt.data)
			}
			var p Packet
			p.Decode(tt.link, tt.data, orig)
			if !bytes.Equal(p.IP, tt.want) || (p.IP == nil) != (tt.want == nil) {
				t.Fatalf("IP = % x\nwant % x", p.IP, tt.want)
			}
			if p.IP != nil && indexIn(tt.data, p.IP) < 0 {
				t.Errorf("IP is a copy, not a window of Data")
			}
		})
	}
}

// TestDecodeReuse checks that decoding resets every field a previous
// packet set: the Reader reuses one Packet.
func TestDecodeReuse(t *testing.T) {
	var p Packet
	p.Decode(LinkRaw, ipv4(protoTCP, tcp(1, 2, 0), v4opts{}), 40)
	if p.Kind != KindTCP {
		t.Fatalf("first packet: %v %q", p.Kind, p.Reason)
	}
	p.Decode(LinkEthernet, eth(0x0806, nil, make([]byte, 28)), 42)
	got := summarize(&p)
	want := rec{Kind: KindNonIP, Reason: reasonNotIP, Link: LinkEthernet, Len: 42, Orig: 42}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after reuse (-want +got):\n%s", diff)
	}
	if p.IP != nil {
		t.Errorf("after reuse IP = % x, want nil", p.IP)
	}
}

func TestDecodeAllocs(t *testing.T) {
	frames := [][]byte{
		eth(etherIPv4, []uint16{etherVLAN}, ipv4(protoTCP, tcp(1, 2, 10), v4opts{})),
		eth(etherIPv6, nil, ipv6(protoTCP, []ext{{protoHopOpts, optsHdr(0)}}, tcp(1, 2, 10), 0)),
		eth(0x0806, nil, make([]byte, 28)),
	}
	var p Packet
	for _, f := range frames {
		if n := testing.AllocsPerRun(100, func() { p.Decode(LinkEthernet, f, len(f)) }); n != 0 {
			t.Errorf("Decode allocates %v times per frame (% x)", n, f)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindTCP: "TCP", KindNonTCP: "NonTCP", KindNonIP: "NonIP", KindFragment: "Fragment", KindMalformed: "Malformed", 9: "Kind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
}

func TestTcpdumpFlags(t *testing.T) {
	for f, want := range map[uint8]string{0x02: "S", 0x12: "S.", 0x11: "F.", 0x04: "R", 0: "none", 0x18: "P.", 0xc2: "SEW"} {
		if got := TcpdumpFlags(f); got != want {
			t.Errorf("%08b: %q, want %q", f, got, want)
		}
	}
}

// TestDecodeShortcutIsLink: Decode's shortcut for IPv4 over Ethernet and
// raw IP decodes every frame as the general path (link) does, on
// well-formed frames and on thousands of mutations of them (bytes
// flipped, frames cut, capture lengths short of the wire's), including
// the frames the shortcut must leave to link (IPv6, VLAN tags, another
// version nibble, a short Ethernet header).
func TestDecodeShortcutIsLink(t *testing.T) {
	v4 := ipv4(protoTCP, tcp(1, 2, 30), v4opts{})
	base := []struct {
		link  LinkType
		frame []byte
	}{
		{LinkEthernet, eth(etherIPv4, nil, v4)},
		{LinkEthernet, eth(etherIPv4, nil, ipv4(protoTCP, tcp(1, 2, 3), v4opts{opts: []byte{1, 1, 1, 0}}))},
		{LinkEthernet, eth(etherIPv4, []uint16{etherVLAN}, v4)},
		{LinkEthernet, eth(etherIPv6, nil, ipv6(protoTCP, nil, tcp(1, 2, 5), 0))},
		{LinkEthernet, eth(etherIPv4, nil, ipv4(17, make([]byte, 12), v4opts{}))},
		{LinkRaw, v4},
		{LinkRaw, ipv6(protoTCP, nil, tcp(1, 2, 5), 0)},
		{LinkRaw, ipv4(protoTCP, tcp(1, 2, 0), v4opts{frag: 0x2000})},
	}
	rng := rand.New(rand.NewPCG(18, 4))
	n := 0
	for _, c := range base {
		for i := range 3000 {
			f := append([]byte(nil), c.frame...)
			orig := len(f)
			if i > 0 {
				for range 1 + rng.IntN(3) {
					j := rng.IntN(min(len(f), 60))
					f[j] ^= byte(1 << rng.IntN(8))
				}
				if rng.IntN(3) == 0 {
					f = f[:rng.IntN(len(f)+1)]
				}
				if rng.IntN(4) == 0 {
					orig = len(f) + rng.IntN(100)
				}
			}
			var got, want Packet
			got.Decode(c.link, f, orig)
			want.link(c.link, f, want.reset(c.link, f, orig))
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("link %v, frame % x (wire %d):\nDecode %+v\nlink   %+v", c.link, f, orig, got, want)
			}
			n++
		}
	}
	t.Logf("%d frames", n)
}
