package packet

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// refChecksum is an independent RFC 1071 implementation: it folds the carry
// after every addition instead of once at the end, and builds the
// pseudo-header as bytes rather than as a partial sum.
func refChecksum(chunks ...[]byte) uint16 {
	var buf []byte
	for _, c := range chunks {
		buf = append(buf, c...)
	}
	if len(buf)%2 == 1 {
		buf = append(buf, 0)
	}
	var s uint16
	for i := 0; i < len(buf); i += 2 {
		w := binary.BigEndian.Uint16(buf[i:])
		t := uint32(s) + uint32(w)
		s = uint16(t) + uint16(t>>16)
	}
	return ^s
}

func TestChecksumKnownVector(t *testing.T) {
	// The IPv4 header used as the worked example in Wikipedia's "Internet
	// checksum" article (and many textbooks): its checksum is 0xb861.
	h, _ := hex.DecodeString("450000730000400040110000c0a80001c0a800c7")
	if got := Checksum(h, 0); got != 0xb861 {
		t.Fatalf("Checksum = %#04x, want 0xb861", got)
	}
	if got := refChecksum(h); got != 0xb861 {
		t.Fatalf("refChecksum = %#04x, want 0xb861", got)
	}
	// RFC 1071 §3 numerical example: the 16-bit one's complement sum of
	// 0001 f203 f4f5 f6f7 is ddf2, so the checksum is ^ddf2 = 220d.
	p, _ := hex.DecodeString("0001f203f4f5f6f7")
	if got := Checksum(p, 0); got != 0x220d {
		t.Fatalf("RFC 1071 example: got %#04x, want 0x220d", got)
	}
}

// decoded is what an independent reader of the bytes sees.
type decoded struct {
	v6                 bool
	src, dst           netip.AddrPort
	seq, ack           uint32
	flags              Flags
	win                uint16
	doff, payload      int
	ipid               uint16
	flow               uint32
	opts               []byte
	ipSumOK, tcpSumOK  bool
	totalLenFieldMatch bool
}

func decode(t *testing.T, b []byte) decoded {
	t.Helper()
	var d decoded
	var seg, pseudo []byte
	switch b[0] >> 4 {
	case 4:
		ihl := int(b[0]&15) * 4
		d.ipid = binary.BigEndian.Uint16(b[4:])
		d.totalLenFieldMatch = int(binary.BigEndian.Uint16(b[2:])) == len(b)
		d.ipSumOK = refChecksum(b[:ihl]) == 0
		if b[9] != 6 {
			t.Fatalf("protocol %d", b[9])
		}
		seg = b[ihl:]
		src, _ := netip.AddrFromSlice(b[12:16])
		dst, _ := netip.AddrFromSlice(b[16:20])
		d.src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(seg[0:]))
		d.dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(seg[2:]))
		pseudo = append(append([]byte{}, b[12:20]...), 0, 6, byte(len(seg)>>8), byte(len(seg)))
	case 6:
		d.v6 = true
		d.ipSumOK = true
		d.flow = binary.BigEndian.Uint32(b) & 0xfffff
		d.totalLenFieldMatch = int(binary.BigEndian.Uint16(b[4:]))+40 == len(b)
		if b[6] != 6 {
			t.Fatalf("next header %d", b[6])
		}
		seg = b[40:]
		src, _ := netip.AddrFromSlice(b[8:24])
		dst, _ := netip.AddrFromSlice(b[24:40])
		d.src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(seg[0:]))
		d.dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(seg[2:]))
		l := uint32(len(seg))
		pseudo = append(append([]byte{}, b[8:40]...), byte(l>>24), byte(l>>16), byte(l>>8), byte(l), 0, 0, 0, 6)
	default:
		t.Fatalf("version %d", b[0]>>4)
	}
	d.seq = binary.BigEndian.Uint32(seg[4:])
	d.ack = binary.BigEndian.Uint32(seg[8:])
	d.doff = int(seg[12]>>4) * 4
	d.flags = Flags(seg[13])
	d.win = binary.BigEndian.Uint16(seg[14:])
	d.opts = seg[20:d.doff]
	d.payload = len(seg) - d.doff
	d.tcpSumOK = refChecksum(pseudo, seg) == 0
	return d
}

func equalDecoded(a, b decoded) bool {
	a.opts, b.opts = nil, nil
	type plain struct {
		v6                            bool
		src, dst                      netip.AddrPort
		seq, ack                      uint32
		flags                         Flags
		win                           uint16
		doff, payload                 int
		ipid                          uint16
		flow                          uint32
		ipSumOK, tcpSumOK, totalLenOK bool
	}
	f := func(d decoded) plain {
		return plain{d.v6, d.src, d.dst, d.seq, d.ack, d.flags, d.win, d.doff, d.payload, d.ipid, d.flow, d.ipSumOK, d.tcpSumOK, d.totalLenFieldMatch}
	}
	return f(a) == f(b)
}

func randSegment(r *rand.Rand) Segment {
	var s Segment
	if r.IntN(2) == 0 {
		s.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, byte(r.IntN(256)), byte(r.IntN(256))}), uint16(r.IntN(65536)))
		s.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 2, byte(r.IntN(256)), byte(r.IntN(256))}), uint16(r.IntN(65536)))
		s.IPID = uint16(r.Uint32())
	} else {
		var a, b [16]byte
		for i := range a {
			a[i], b[i] = byte(r.Uint32()), byte(r.Uint32())
		}
		s.Src = netip.AddrPortFrom(netip.AddrFrom16(a), uint16(r.IntN(65536)))
		s.Dst = netip.AddrPortFrom(netip.AddrFrom16(b), uint16(r.IntN(65536)))
		s.FlowLabel = r.Uint32() & 0xfffff
	}
	s.Seq, s.Ack = r.Uint32(), r.Uint32()
	s.Flags = Flags(r.IntN(256))
	s.Window = uint16(r.Uint32())
	if r.IntN(2) == 0 {
		s.Options.MSS = uint16(r.IntN(65535) + 1)
	}
	s.Options.SACKPermitted = r.IntN(2) == 0
	s.Options.HasWScale = r.IntN(2) == 0
	s.Options.WScale = uint8(r.IntN(15))
	if r.IntN(2) == 0 {
		s.Options.Timestamps = true
		s.Options.TSVal, s.Options.TSEcr = r.Uint32(), r.Uint32()
	}
	room := (40 - s.Options.Len() - 2) / 8
	if room > 0 && r.IntN(2) == 0 {
		n := 1 + r.IntN(room)
		for range n {
			l := r.Uint32()
			s.Options.SACK = append(s.Options.SACK, SACKBlock{l, l + uint32(r.IntN(10000))})
		}
	}
	if s.Options.Len() > 40 {
		s.Options.SACK = nil
	}
	s.PayloadLen = r.IntN(1500)
	if r.IntN(4) == 0 {
		s.PayloadLen++ // odd lengths exercise the checksum's trailing byte
	}
	return s
}

func TestAppendRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		s := randSegment(r)
		b, err := s.Append([]byte{0xee}) // a prefix must be preserved
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if b[0] != 0xee || len(b)-1 != s.Len() {
			t.Fatalf("%d: prefix or length wrong: len %d, Len() %d", i, len(b)-1, s.Len())
		}
		d := decode(t, b[1:])
		want := decoded{
			v6: s.Src.Addr().Is6(), src: s.Src, dst: s.Dst, seq: s.Seq, ack: s.Ack, flags: s.Flags,
			win: s.Window, doff: 20 + s.Options.Len(), payload: s.PayloadLen, ipid: s.IPID, flow: s.FlowLabel,
			ipSumOK: true, tcpSumOK: true, totalLenFieldMatch: true,
		}
		if want.v6 {
			want.ipid = 0
		} else {
			want.flow = 0
		}
		d.opts = nil
		if !equalDecoded(d, want) {
			t.Fatalf("%d: decoded %+v\nwant %+v", i, d, want)
		}
	}
}

// parseOpts is an independent TCP option walker (RFC 9293 §3.2).
func parseOpts(t *testing.T, p []byte) (o Options) {
	for i := 0; i < len(p); {
		switch p[i] {
		case 0:
			return
		case 1:
			i++
			continue
		}
		k, l := p[i], int(p[i+1])
		if l < 2 || i+l > len(p) {
			t.Fatalf("bad option length %d at %d in % x", l, i, p)
		}
		v := p[i+2 : i+l]
		switch k {
		case 2:
			o.MSS = binary.BigEndian.Uint16(v)
		case 3:
			o.HasWScale, o.WScale = true, v[0]
		case 4:
			o.SACKPermitted = true
		case 5:
			for j := 0; j < len(v); j += 8 {
				o.SACK = append(o.SACK, SACKBlock{binary.BigEndian.Uint32(v[j:]), binary.BigEndian.Uint32(v[j+4:])})
			}
		case 8:
			o.Timestamps, o.TSVal, o.TSEcr = true, binary.BigEndian.Uint32(v), binary.BigEndian.Uint32(v[4:])
		default:
			t.Fatalf("unexpected option kind %d", k)
		}
		i += l
	}
	return
}

func TestOptionsRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		s := randSegment(r)
		b, err := s.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		d := decode(t, b)
		if len(d.opts)%4 != 0 {
			t.Fatalf("option length %d not a multiple of 4", len(d.opts))
		}
		got := parseOpts(t, d.opts)
		w := s.Options
		if !w.HasWScale {
			w.WScale = 0
		}
		if !w.Timestamps {
			w.TSVal, w.TSEcr = 0, 0
		}
		if got.MSS != w.MSS || got.HasWScale != w.HasWScale || got.WScale != w.WScale ||
			got.SACKPermitted != w.SACKPermitted || got.Timestamps != w.Timestamps ||
			got.TSVal != w.TSVal || got.TSEcr != w.TSEcr || len(got.SACK) != len(w.SACK) {
			t.Fatalf("%d: options %+v, want %+v", i, got, w)
		}
		for j := range got.SACK {
			if got.SACK[j] != w.SACK[j] {
				t.Fatalf("%d: SACK block %d = %v, want %v", i, j, got.SACK[j], w.SACK[j])
			}
		}
	}
}

func TestLinuxSYNLayout(t *testing.T) {
	// A Linux SYN's options are MSS, SACK_PERM, TS, NOP, WS: 20 bytes.
	s := Segment{
		Src: netip.MustParseAddrPort("127.1.0.1:40000"), Dst: netip.MustParseAddrPort("127.2.0.1:80"),
		Flags: SYN, Seq: 1, Window: 64240,
		Options: Options{MSS: 1460, SACKPermitted: true, Timestamps: true, TSVal: 7, HasWScale: true, WScale: 7},
	}
	b, err := s.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := hex.DecodeString("020405b4" + "0402" + "080a0000000700000000" + "030307" + "01")
	if got := b[40:]; string(got) != string(want) {
		t.Fatalf("options % x\nwant    % x", got, want)
	}
}

func TestErrors(t *testing.T) {
	mixed := Segment{Src: netip.MustParseAddrPort("127.0.0.1:1"), Dst: netip.MustParseAddrPort("[::1]:2")}
	if _, err := mixed.Append(nil); err != ErrFamily {
		t.Errorf("mixed families: %v", err)
	}
	var zero Segment
	if _, err := zero.Append(nil); err != ErrFamily {
		t.Errorf("zero segment: %v", err)
	}
	big := Segment{Src: netip.MustParseAddrPort("127.0.0.1:1"), Dst: netip.MustParseAddrPort("127.0.0.2:2"),
		Options: Options{Timestamps: true, SACK: make([]SACKBlock, 4)}}
	if _, err := big.Append(nil); err != ErrOptions {
		t.Errorf("oversized options: %v", err)
	}
	huge := Segment{Src: netip.MustParseAddrPort("127.0.0.1:1"), Dst: netip.MustParseAddrPort("127.0.0.2:2"), PayloadLen: 70000}
	if _, err := huge.Append(nil); err != ErrTooLong {
		t.Errorf("oversized payload: %v", err)
	}
}

func TestAppendDoesNotAllocate(t *testing.T) {
	s := Segment{
		Src: netip.MustParseAddrPort("[fd7c::1]:1"), Dst: netip.MustParseAddrPort("[fd7c::2]:2"),
		Flags: ACK, PayloadLen: 100,
		Options: Options{Timestamps: true, SACK: []SACKBlock{{1, 2}}},
	}
	buf := make([]byte, 0, 2048)
	if n := testing.AllocsPerRun(100, func() { _, _ = s.Append(buf[:0]) }); n != 0 {
		t.Fatalf("Append allocates %v times per call", n)
	}
}

func BenchmarkAppend(b *testing.B) {
	s := Segment{
		Src: netip.MustParseAddrPort("127.1.0.1:40000"), Dst: netip.MustParseAddrPort("127.2.0.1:80"),
		Flags: ACK | PSH, PayloadLen: 1400, Options: Options{Timestamps: true},
	}
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = s.Append(buf[:0])
	}
}
