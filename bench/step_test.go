package bench

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/internal/conformance/tracegen"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcpconntrack"
)

// The step benchmarks put one packet through tcpct's fsm.Machine.StepInto
// (profile linux, default sysctls: full window tracking, tcp_be_liberal=0)
// and through gVisor's tcpconntrack.TCB, on the same TCP header bytes.
// Both sides start from bytes: tcpct parses them with fsm.ParseSegmentInto
// (flags, seq/ack/window and every option) and steps, gVisor's TCB reads
// the header in place through header.TCP accessors (and re-parses the
// options of SYNs). Neither side has a table lookup: the caller holds the
// connection state and the direction, as it would after a lookup. One
// benchmark op is one packet, so ns/op is ns/packet.
//
// impl=tcpct-preparsed is tcpct's Step alone on segments parsed once
// beforehand: the cost for callers that already hold parsed headers.
// gVisor has no such entry point.

// seg is one packet of a benchmark: the TCP header bytes (the payload is
// never read by either tracker), the payload length and the direction.
type seg struct {
	hdr   []byte
	l4len int // header + payload, as the IP header gives it
	dlen  int // payload length
	reply bool
}

// hdr builds a TCP header. opts are appended as given (padded to 4 bytes).
func hdr(sport, dport uint16, seq, ack uint32, flags uint8, win uint16, opts ...byte) []byte {
	for len(opts)%4 != 0 {
		opts = append(opts, 1) // NOP
	}
	b := make([]byte, 20+len(opts))
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], seq)
	binary.BigEndian.PutUint32(b[8:], ack)
	b[12] = byte(len(b)/4) << 4
	b[13] = flags
	binary.BigEndian.PutUint16(b[14:], win)
	copy(b[20:], opts)
	return b
}

const (
	fFIN = 0x01
	fSYN = 0x02
	fRST = 0x04
	fPSH = 0x08
	fACK = 0x10
)

// Linux's SYN options: MSS 65495, SACK permitted, timestamps, NOP, window
// scale 7 (40-byte header). (Until 2026-12-06 the timestamp values were
// written two bytes too far, over the NOP and the window scale's kind:
// the handshake negotiated no scaling, and gVisor's TCB, with an
// unscaled 502-byte window, ignored all but the first 46 data segments of
// Established as out of window. TestBenchInputs now checks both.)
func synOpts(tsval, tsecr uint32) []byte {
	o := []byte{2, 4, 0xff, 0xd7, 4, 2, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 3, 7}
	binary.BigEndian.PutUint32(o[8:], tsval)
	binary.BigEndian.PutUint32(o[12:], tsecr)
	return o
}

// tsOpts is the NOP NOP timestamps block of an established Linux segment
// (32-byte header).
func tsOpts(tsval, tsecr uint32) []byte {
	o := []byte{1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(o[4:], tsval)
	binary.BigEndian.PutUint32(o[8:], tsecr)
	return o
}

const (
	cport, sport = 40000, 80
	ciss, siss   = 1000, 5000
	mss          = 1448
)

// handshake is a Linux-like three-way handshake with window scaling.
func handshake() []seg {
	return []seg{
		{hdr: hdr(cport, sport, ciss, 0, fSYN, 64240, synOpts(1, 0)...)},
		{hdr: hdr(sport, cport, siss, ciss+1, fSYN|fACK, 65160, synOpts(2, 1)...), reply: true},
		{hdr: hdr(cport, sport, ciss+1, siss+1, fACK, 502, tsOpts(3, 2)...)},
	}
}

// bulk is n pairs of an established bulk transfer after handshake():
// the client sends full-sized data segments, the server acknowledges each.
func bulk(n int) []seg {
	var s []seg
	seq := uint32(ciss + 1)
	for i := range n {
		ts := uint32(10 + i)
		s = append(s, seg{hdr: hdr(cport, sport, seq, siss+1, fACK|fPSH, 502, tsOpts(ts, ts)...), dlen: mss})
		seq += mss
		s = append(s, seg{hdr: hdr(sport, cport, siss+1, seq, fACK, 509, tsOpts(ts, ts)...), reply: true})
	}
	for i := range s {
		s[i].l4len = len(s[i].hdr) + s[i].dlen
	}
	return s
}

func withLen(s []seg) []seg {
	for i := range s {
		s[i].l4len = len(s[i].hdr) + s[i].dlen
	}
	return s
}

func dirOf(s *seg) fsm.Dir {
	if s.reply {
		return fsm.Reply
	}
	return fsm.Original
}

const now0 = int64(1_700_000_000) * 1e9

// tcpctEstablished returns the machine, the connection right after the
// handshake and the bulk segments.
func tcpctEstablished(tb testing.TB, m *fsm.Machine) fsm.Conn {
	var c fsm.Conn
	for _, s := range withLen(handshake()) {
		fs := fsm.ParseSegment(s.hdr, s.l4len)
		v := m.Step(&c, &fs, dirOf(&s), now0)
		if v.CT == fsm.CTInvalid {
			tb.Fatalf("handshake packet INVALID: %v", v.Reason)
		}
	}
	if c.State != 3 { // ESTABLISHED
		tb.Fatalf("after handshake: state %s", m.Profile().StateName(c.State))
	}
	return c
}

func gvisorEstablished(tb testing.TB) tcpconntrack.TCB {
	var t tcpconntrack.TCB
	h := withLen(handshake())
	t.Init(header.TCP(h[0].hdr), h[0].dlen)
	t.UpdateStateReply(header.TCP(h[1].hdr), h[1].dlen)
	if r := t.UpdateStateOriginal(header.TCP(h[2].hdr), h[2].dlen); r != tcpconntrack.ResultAlive {
		tb.Fatalf("gVisor after handshake: %v", r)
	}
	return t
}

const ringPairs = 1024

// TestBenchInputs checks that the benchmarks measure what they say: the
// handshake negotiates window scaling and ends ESTABLISHED, every bulk
// segment takes the established path in both trackers (tcpct: accepted,
// ESTABLISHED, not ignored; gVisor: ResultAlive and the data taken into
// the window), and the mixed trace is tracked.
func TestBenchInputs(t *testing.T) {
	m := fsm.NewMachine(fsm.Linux)
	c := tcpctEstablished(t, m)
	if c.Seen[fsm.Original].Scale != 7 || c.Seen[fsm.Reply].Scale != 7 {
		t.Fatalf("the handshake negotiated no window scaling: %+v", c.Seen)
	}
	g := gvisorEstablished(t)
	for i, s := range bulk(ringPairs) {
		fs := fsm.ParseSegment(s.hdr, s.l4len)
		v := m.Step(&c, &fs, dirOf(&s), now0)
		if v.CT != fsm.CTEstablished || v.Ignored || v.New != 3 {
			t.Fatalf("tcpct bulk %d: %+v", i, v)
		}
		var r tcpconntrack.Result
		if s.reply {
			r = g.UpdateStateReply(header.TCP(s.hdr), s.dlen)
		} else {
			r = g.UpdateStateOriginal(header.TCP(s.hdr), s.dlen)
			// The TCB took the segment in (an out-of-window one is
			// ignored, also with ResultAlive): its next sequence number
			// is the segment's end.
			if end := header.TCP(s.hdr).SequenceNumber() + uint32(s.dlen); uint32(g.OriginalSendSequenceNumber()) != end {
				t.Fatalf("gVisor bulk %d: next sequence number %d, want %d (segment ignored)", i, g.OriginalSendSequenceNumber(), end)
			}
		}
		if r != tcpconntrack.ResultAlive {
			t.Fatalf("gVisor bulk %d: %v", i, r)
		}
	}
	mx := loadMixed(t)
	if len(mx.segs) < 10000 || mx.flows < 100 {
		t.Fatalf("mixed trace: %d packets, %d flows", len(mx.segs), mx.flows)
	}
}

func BenchmarkEstablished(b *testing.B) {
	segs := bulk(ringPairs)
	b.Run("impl=tcpct", func(b *testing.B) {
		m := fsm.NewMachine(fsm.Linux)
		start := tcpctEstablished(b, m)
		c := start
		var fs fsm.Segment
		var v fsm.Verdict
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s := &segs[i]
			fsm.ParseSegmentInto(&fs, s.hdr, s.l4len)
			m.StepInto(&v, &c, &fs, dirOf(s), now0)
			if i++; i == len(segs) {
				i, c = 0, start
			}
		}
	})
	b.Run("impl=tcpct-preparsed", func(b *testing.B) {
		m := fsm.NewMachine(fsm.Linux)
		start := tcpctEstablished(b, m)
		c := start
		fss := make([]fsm.Segment, len(segs))
		for i := range segs {
			fss[i] = fsm.ParseSegment(segs[i].hdr, segs[i].l4len)
		}
		var v fsm.Verdict
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			m.StepInto(&v, &c, &fss[i], dirOf(&segs[i]), now0)
			if i++; i == len(segs) {
				i, c = 0, start
			}
		}
	})
	b.Run("impl=gvisor", func(b *testing.B) {
		start := gvisorEstablished(b)
		t := start
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s := &segs[i]
			if s.reply {
				t.UpdateStateReply(header.TCP(s.hdr), s.dlen)
			} else {
				t.UpdateStateOriginal(header.TCP(s.hdr), s.dlen)
			}
			if i++; i == len(segs) {
				i, t = 0, start
			}
		}
	})
}

func BenchmarkHandshake(b *testing.B) {
	segs := withLen(handshake())
	b.Run("impl=tcpct", func(b *testing.B) {
		m := fsm.NewMachine(fsm.Linux)
		var c fsm.Conn
		var fs fsm.Segment
		var v fsm.Verdict
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s := &segs[i]
			fsm.ParseSegmentInto(&fs, s.hdr, s.l4len)
			m.StepInto(&v, &c, &fs, dirOf(s), now0)
			if i++; i == len(segs) {
				i, c = 0, fsm.Conn{}
			}
		}
	})
	b.Run("impl=gvisor", func(b *testing.B) {
		var t tcpconntrack.TCB
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s := &segs[i]
			switch {
			case i == 0:
				t = tcpconntrack.TCB{}
				t.Init(header.TCP(s.hdr), s.dlen)
			case s.reply:
				t.UpdateStateReply(header.TCP(s.hdr), s.dlen)
			default:
				t.UpdateStateOriginal(header.TCP(s.hdr), s.dlen)
			}
			if i++; i == len(segs) {
				i = 0
			}
		}
	})
}

// mixed is a internal/conformance/tracegen trace (20,000 packets, seed 1: handshakes,
// data, SACK, retransmissions, out-of-window segments, closes in every
// order, RSTs, reuse, pickup, …) with each packet's flow resolved
// beforehand, so that neither benchmark side pays for a table.
type mixed struct {
	segs  []mseg
	flows int
}

type mseg struct {
	seg
	flow  int
	fromA bool // sent by the endpoint that sent the flow's first packet
	ts    int64
}

func loadMixed(tb testing.TB) *mixed {
	pkts := tracegen.Generate(tracegen.Config{Seed: 1, Packets: 20000})
	type ep = [2]netip.AddrPort
	ids := map[ep]int{}
	mx := &mixed{}
	var cp capture.Packet
	for _, p := range pkts {
		cp.Decode(capture.LinkRaw, p.Data, len(p.Data))
		if cp.Kind != capture.KindTCP || len(cp.TCP) < 20 {
			continue
		}
		a, z := netip.AddrPortFrom(cp.Src, cp.SrcPort), netip.AddrPortFrom(cp.Dst, cp.DstPort)
		s := mseg{ts: p.TS.UnixNano()}
		if id, ok := ids[ep{a, z}]; ok {
			s.flow, s.fromA = id, true
		} else if id, ok := ids[ep{z, a}]; ok {
			s.flow = id
		} else {
			s.flow, s.fromA = mx.flows, true
			ids[ep{a, z}] = mx.flows
			mx.flows++
		}
		h := int(cp.TCP[12]>>4) * 4
		if h < 20 || h > len(cp.TCP) {
			continue
		}
		s.hdr = append([]byte(nil), cp.TCP[:h]...)
		s.l4len = cp.IPPayloadLen
		s.dlen = cp.IPPayloadLen - h
		mx.segs = append(mx.segs, s)
	}
	if len(mx.segs) == 0 {
		tb.Fatal("empty mixed trace")
	}
	return mx
}

func BenchmarkMixed(b *testing.B) {
	mx := loadMixed(b)
	b.Run("impl=tcpct", func(b *testing.B) {
		m := fsm.NewMachine(fsm.Linux)
		conns := make([]fsm.Conn, mx.flows)
		origA := make([]bool, mx.flows)
		var fs fsm.Segment
		var v fsm.Verdict
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s := &mx.segs[i]
			c := &conns[s.flow]
			dir := fsm.Original
			if !c.Live() {
				origA[s.flow] = s.fromA
			} else if s.fromA != origA[s.flow] {
				dir = fsm.Reply
			}
			fsm.ParseSegmentInto(&fs, s.hdr, s.l4len)
			if m.StepInto(&v, c, &fs, dir, s.ts); v.Action == fsm.Recreate {
				origA[s.flow] = s.fromA
			}
			if i++; i == len(mx.segs) {
				i = 0
				clear(conns)
			}
		}
	})
	b.Run("impl=gvisor", func(b *testing.B) {
		tcbs := make([]tcpconntrack.TCB, mx.flows)
		live := make([]bool, mx.flows)
		origA := make([]bool, mx.flows)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s := &mx.segs[i]
			t := &tcbs[s.flow]
			switch {
			case !live[s.flow]:
				live[s.flow], origA[s.flow] = true, s.fromA
				t.Init(header.TCP(s.hdr), s.dlen)
			case s.fromA == origA[s.flow]:
				t.UpdateStateOriginal(header.TCP(s.hdr), s.dlen)
			default:
				t.UpdateStateReply(header.TCP(s.hdr), s.dlen)
			}
			if i++; i == len(mx.segs) {
				i = 0
				clear(tcbs)
				clear(live)
			}
		}
	})
}
