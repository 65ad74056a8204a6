package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/fuzz/FuzzReader/seed-* from the builders")

// fuzzSeeds are small well-formed captures of every format and link type;
// the fuzzer mutates them into everything else.
func fuzzSeeds(t testing.TB) map[string][]byte {
	v4 := ipv4(protoTCP, tcp(1, 2, 3), v4opts{opts: []byte{1, 1, 1, 0}})
	v6 := ipv6(protoTCP, []ext{{protoHopOpts, optsHdr(0)}, {protoFragment, fragHdr(0, false)}}, tcp(3, 4, 1), 0)
	frag := ipv4(protoTCP, tcp(1, 2, 3), v4opts{frag: 0x2000})
	seeds := map[string][]byte{}
	for _, o := range []struct {
		name  string
		order binary.AppendByteOrder
		nano  bool
	}{{"le-us", binary.LittleEndian, false}, {"be-ns", binary.BigEndian, true}} {
		f := newPcap(o.order, o.nano, uint32(LinkEthernet), 128)
		f.add(t0, eth(etherIPv4, []uint16{etherQinQ, etherVLAN}, v4), 0)
		f.add(t0, eth(etherIPv6, nil, v6), 0)
		f.add(t0, eth(etherIPv4, nil, frag), 0)
		full := eth(etherIPv4, nil, v4)
		f.add(t0, full[:58], len(full)) // cut by the snap length
		seeds["pcap-"+o.name] = f.bytes()
	}
	for link, frame := range map[LinkType][]byte{
		LinkRaw: v6, LinkIPv4: v4, LinkIPv6: v6, LinkLinuxSLL: sll(1, etherIPv4, v4),
		LinkSLL2: sll2(1, etherIPv6, v6), LinkNull: null(24, binary.LittleEndian, v6), LinkLoop: null(2, binary.BigEndian, v4),
	} {
		f := newPcap(binary.LittleEndian, true, uint32(link), 0)
		seeds["pcap-"+link.String()] = f.add(t0, frame, 0).bytes()
	}
	// The link types of link.go, and tunnels (read with Decap when the
	// file's length is odd: FuzzReader).
	wifi := cat([]byte{0x88, 0x01}, make([]byte, 24), snap(etherIPv4), v4)
	vxlan := outer4(protoUDP, udp(4789, cat([]byte{0x08, 0, 0, 0, 0, 0, 42, 0}, eth(etherIPv4, nil, v4))))
	for link, frame := range map[LinkType][]byte{
		LinkPPP: cat([]byte{0xff, 0x03, 0, 0x21}, v4), LinkPPPHDLC: cat([]byte{0x0f, 0}, be16(etherIPv6), v6),
		LinkPPPoE: cat([]byte{0x11, 0, 0, 1, 0, 0}, be16(pppIPv6), v6), LinkCHDLC: cat([]byte{0x0f, 0}, be16(etherIPv4), v4),
		LinkIEEE80211: wifi, LinkRadiotap: cat(radiotapHdr(0x10), wifi), LinkPPPWithDir: cat([]byte{0, 0x57}, v6),
		LinkCHDLCWithDir: cat([]byte{1, 0x8f, 0}, be16(etherIPv4), v4),
		LinkNFLOG:        nflogRec(2, binary.LittleEndian, v4),
		LinkIPoIB:        cat(make([]byte, 40), be16(etherIPv6), []byte{0, 0}, v6),
	} {
		f := newPcap(binary.LittleEndian, true, uint32(link), 0)
		seeds["pcap-"+link.String()] = f.add(t0, frame, 0).bytes()
	}
	tun := newPcap(binary.BigEndian, false, uint32(LinkEthernet), 0)
	tun.add(t0, eth(etherIPv4, nil, vxlan), 0)
	tun.add(t0, eth(etherIPv6, nil, outer6(protoUDP, udp(6081, cat([]byte{1, 0, 0x65, 0x58, 0, 0, 7, 0, 0, 0, 0, 0}, eth(etherIPv6, nil, v6))))), 0)
	tun.add(t0, eth(etherIPv4, nil, outer4(protoGRE, cat([]byte{0x30, 0, 0x88, 0x47}, make([]byte, 8), []byte{0, 1, 0x01, 64}, v6))), 0)
	tun.add(t0, eth(etherIPv4, nil, outer4(protoIPIP, v4)), 0)
	tun.add(t0, eth(etherMPLS, nil, cat([]byte{0, 1, 0, 64, 0, 2, 1, 64}, v4)), 0)
	tun.add(t0, eth(etherPPPoESession, []uint16{etherVLAN}, cat([]byte{0x11, 0, 0, 1, 0, 0}, be16(pppIPv4), v4)), 0)
	tun.add(t0, eth(etherIPv4, nil, outer4(protoGRE, cat([]byte{0x30, 0x81, 0x88, 0x0b}, make([]byte, 12), []byte{0xff, 0x03, 0, 0x21}, v4))), 0)
	tun.add(t0, eth(etherIPv4, nil, vxlan), len(vxlan)+14+40) // cut by the snap length
	if len(tun.bytes())%2 == 0 {
		// Odd length, so that FuzzReader reads it with Decap: one more
		// record of odd length.
		pad := eth(etherIPv4, nil, outer4(protoIPIP, v4))
		if len(pad)%2 == 0 {
			pad = append(pad, 0) // link padding
		}
		tun.add(t0, pad, 0)
	}
	seeds["pcap-tunnels"] = tun.bytes()
	n := newNg(binary.BigEndian)
	n.idb(LinkEthernet, 0, -1, 0)
	n.idb(LinkSLL2, 96, 0x80|20, 3600)
	n.epb(0, 5, eth(etherIPv4, nil, v4), 0)
	n.block(5, make([]byte, 8))
	n.epb(1, 6, sll2(1, etherIPv6, v6), 0)
	n.spb(eth(etherIPv4, nil, v4), 0)
	n.shb(binary.LittleEndian)
	n.idb(LinkRaw, 0, 9, 0)
	n.opb(0, 7, v4)
	seeds["pcapng"] = n.bytes()
	seeds["pcapng-gz"] = gz(t, n.bytes())
	seeds["pcap-gz"] = gz(t, seeds["pcap-le-us"])
	return seeds
}

// fuzzLinks are the link types FuzzReader decodes every input as.
var fuzzLinks = []LinkType{LinkNull, LinkEthernet, LinkRaw, LinkLoop, LinkLinuxSLL, LinkIPv4, LinkIPv6, LinkSLL2,
	LinkPPP, LinkPPPHDLC, LinkPPPoE, LinkCHDLC, LinkIEEE80211, LinkRadiotap, LinkPPPWithDir, LinkCHDLCWithDir, LinkNFLOG, LinkIPoIB}

// FuzzReader feeds arbitrary bytes to NewReader and Next: the result must
// be packets and then io.EOF or a *FormatError, never a panic, and every
// packet must be self-consistent. It also decodes the input as a frame of
// every link type.
func FuzzReader(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p Packet
		for _, link := range fuzzLinks {
			for _, decap := range []bool{false, true} {
				p.Decap = decap
				p.Decode(link, data, len(data)+len(data)%7)
				checkPacket(t, &p)
			}
		}

		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("NewReader: %v (%T), want *FormatError", err, err)
			}
			return
		}
		defer r.Close()
		r.SetDecap(len(data)%2 == 1)
		last := int64(-1)
		for i := 0; ; i++ {
			p, err := r.Next()
			if err != nil {
				var fe *FormatError
				if err != io.EOF && !errors.As(err, &fe) {
					t.Fatalf("record %d: %v (%T), want io.EOF or *FormatError", i, err, err)
				}
				if fe != nil && (fe.Record >= 0 && fe.Record != i) {
					t.Fatalf("error names record %d after %d records: %v", fe.Record, i, err)
				}
				if _, err2 := r.Next(); err2 != err {
					t.Fatalf("error not sticky: %v then %v", err, err2)
				}
				return
			}
			if p.Index != i || p.Offset <= last || p.Offset >= int64(len(data))<<10+1 {
				t.Fatalf("record %d: Index %d Offset %d after %d", i, p.Index, p.Offset, last)
			}
			if len(p.Data) > MaxRecord {
				t.Fatalf("record %d: %d bytes", i, len(p.Data))
			}
			last = p.Offset
			checkPacket(t, p)
		}
	})
}

// checkPacket asserts the invariants the tracker relies on.
func checkPacket(t *testing.T, p *Packet) {
	t.Helper()
	if p.OrigLen < len(p.Data) {
		t.Fatalf("OrigLen %d < len(Data) %d", p.OrigLen, len(p.Data))
	}
	switch p.Kind {
	case KindTCP:
		if p.Reason != "" || p.Proto != protoTCP || len(p.TCP) < 20 || p.IPPayloadLen < 20 || (p.Family != 4 && p.Family != 6) ||
			binary.BigEndian.Uint16(p.TCP) != p.SrcPort || binary.BigEndian.Uint16(p.TCP[2:]) != p.DstPort {
			t.Fatalf("bad TCP packet: %+v", summarize(p))
		}
		if p.Family == 4 && (!p.Src.Is4() || !p.Dst.Is4()) || p.Family == 6 && (!p.Src.Is6() || !p.Dst.Is6()) {
			t.Fatalf("addresses do not match family: %+v", summarize(p))
		}
		if len(p.TCP) > p.IPPayloadLen {
			t.Fatalf("TCP %d bytes beyond IP payload %d", len(p.TCP), p.IPPayloadLen)
		}
		// TCP must be a window of Data, not a copy.
		if i := indexIn(p.Data, p.TCP); i < 0 || i+len(p.TCP) > len(p.Data) {
			t.Fatalf("TCP (%d bytes at %d) is not inside Data (%d bytes)", len(p.TCP), i, len(p.Data))
		}
	case KindMalformed:
		if p.Reason == "" {
			t.Fatalf("%v packet without a reason", p.Kind)
		}
		if p.TrackedInvalid() && p.Reason == reasonV6ExtOver {
			if p.TCP != nil || p.HasPorts() || p.Family != 6 {
				t.Fatalf("extension headers past the payload: %+v", summarize(p))
			}
		} else if p.TrackedInvalid() {
			// The cut header as captured, inside IP, ports when 4 bytes.
			if len(p.TCP) >= 20 && p.IPPayloadLen >= 20 || len(p.TCP) > p.IPPayloadLen || p.Proto != protoTCP || p.Family == 0 {
				t.Fatalf("short TCP header: %+v", summarize(p))
			}
			if len(p.TCP) > 0 {
				if j := indexIn(p.IP, p.TCP); j < 0 || j+len(p.TCP) > len(p.IP) {
					t.Fatalf("short TCP (%d bytes at %d) is not inside IP (%d bytes)", len(p.TCP), j, len(p.IP))
				}
			}
			if p.HasPorts() != (len(p.TCP) >= 4) || len(p.TCP) >= 4 && (binary.BigEndian.Uint16(p.TCP) != p.SrcPort || binary.BigEndian.Uint16(p.TCP[2:]) != p.DstPort) ||
				len(p.TCP) < 4 && (p.SrcPort != 0 || p.DstPort != 0) {
				t.Fatalf("short TCP ports: %+v", summarize(p))
			}
		} else if p.TCP != nil || p.SrcPort != 0 || p.DstPort != 0 || p.HasPorts() {
			t.Fatalf("%v packet with reason %q, %d TCP bytes", p.Kind, p.Reason, len(p.TCP))
		}
	case KindNonTCP, KindNonIP, KindFragment:
		if p.Reason == "" || p.TCP != nil || p.SrcPort != 0 || p.DstPort != 0 || p.TrackedInvalid() || p.HasPorts() {
			t.Fatalf("%v packet with reason %q, %d TCP bytes", p.Kind, p.Reason, len(p.TCP))
		}
	default:
		t.Fatalf("unknown Kind %d", p.Kind)
	}
	// IP is a window of Data holding TCP; an IP header was decoded only
	// where the link layer said IP follows.
	if p.Family != 0 && len(p.IP) == 0 || p.Kind == KindNonIP && p.IP != nil {
		t.Fatalf("%v packet, family %d, with %d IP bytes", p.Kind, p.Family, len(p.IP))
	}
	if len(p.IP) > 0 {
		i := indexIn(p.Data, p.IP)
		if i < 0 || i+len(p.IP) > len(p.Data) {
			t.Fatalf("IP (%d bytes at %d) is not inside Data (%d bytes)", len(p.IP), i, len(p.Data))
		}
		if p.Kind == KindTCP {
			if j := indexIn(p.IP, p.TCP); j < 0 || j+len(p.TCP) > len(p.IP) {
				t.Fatalf("TCP (%d bytes at %d) is not inside IP (%d bytes)", len(p.TCP), j, len(p.IP))
			}
		}
	}
	if p.IPPayloadLen < 0 || p.IPPayloadLen > p.OrigLen {
		t.Fatalf("IPPayloadLen %d with OrigLen %d", p.IPPayloadLen, p.OrigLen)
	}
}

// indexIn returns where sub starts inside b, or -1 if it does not alias b.
func indexIn(b, sub []byte) int {
	for i := range b {
		if &b[i] == &sub[0] {
			return i
		}
	}
	return -1
}

// TestFuzzSeeds keeps the committed corpus in step with the builders
// (go test -run TestFuzzSeeds -update-seeds) and checks that every seed
// decodes cleanly, so the fuzzer starts from valid files.
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzReader")
	for name, data := range fuzzSeeds(t) {
		path := filepath.Join(dir, "seed-"+name)
		if *updateSeeds {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r.SetDecap(len(data)%2 == 1) // as FuzzReader reads it
		got, err := readAll(t, r)
		if err != io.EOF || len(got) == 0 {
			t.Fatalf("%s: %d records, %v", name, len(got), err)
		}
		for _, g := range got {
			if g.Kind != KindTCP && g.Kind != KindFragment {
				t.Errorf("%s: record %d: %+v", name, g.Index, g)
			}
		}
	}
}
