package fsm

import (
	"encoding/binary"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/internal/conformance/tracegen"
)

func tcpHeader(flags Flags, opts ...byte) []byte {
	for len(opts)%4 != 0 {
		opts = append(opts, 0)
	}
	h := make([]byte, 20+len(opts))
	binary.BigEndian.PutUint32(h[4:], 1000)
	binary.BigEndian.PutUint32(h[8:], 2000)
	h[12] = byte((20+len(opts))/4) << 4
	h[13] = byte(flags)
	binary.BigEndian.PutUint16(h[14:], 512)
	copy(h[20:], opts)
	return h
}

func TestParseSegmentOptions(t *testing.T) {
	// MSS, SACK-permitted, timestamps, NOP, window scale 15 (capped at 14).
	h := tcpHeader(syn, 2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 15)
	s := ParseSegment(h, len(h)+7)
	if s.Malformed != 0 || s.Seq != 1000 || s.Ack != 2000 || s.Win != 512 || s.Len != 7 || !s.SackPerm || !s.HasWScale || s.WScale != 14 || !s.HasOptions {
		t.Fatalf("parsed %+v", s)
	}
	if s.End() != 1000+7+1 {
		t.Fatalf("End = %d", s.End())
	}
}

func TestParseSegmentSack(t *testing.T) {
	block := func(l, r uint32) []byte {
		b := make([]byte, 8)
		binary.BigEndian.PutUint32(b, l)
		binary.BigEndian.PutUint32(b[4:], r)
		return b
	}
	opts := []byte{1, 1, 5, 18}
	opts = append(opts, block(3000, 3500)...)
	opts = append(opts, block(4000, 4500)...)
	// A second SACK option is not read (tcp_sack stops at the first).
	opts = append(opts, 5, 10)
	opts = append(opts, block(9000, 9900)...)
	s := ParseSegment(tcpHeader(ack, opts...), 20+len(opts)+2)
	if s.NumSack != 2 || s.SackEdges[0] != 3500 || s.SackEdges[1] != 4500 {
		t.Fatalf("sack edges %v (n=%d)", s.SackEdges, s.NumSack)
	}
	// The aligned timestamp alone is skipped by tcp_sack's fast path and
	// sets no option but HasOptions.
	s = ParseSegment(tcpHeader(ack, 1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8), 32)
	if !s.HasOptions || s.NumSack != 0 || s.HasWScale || s.SackPerm {
		t.Fatalf("timestamp-only %+v", s)
	}
	// A SACK option of a bad length is skipped; a length below 2 stops
	// the parse, so a later window scale is not seen.
	s = ParseSegment(tcpHeader(syn, 5, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6, 1, 3, 3, 7), 36)
	if s.NumSack != 0 || s.HasWScale {
		t.Fatalf("bad option %+v", s)
	}
	s = ParseSegment(tcpHeader(syn, 3, 3, 9, 30, 0, 3, 3, 2), 28)
	if !s.HasWScale || s.WScale != 9 {
		t.Fatalf("option with size 0 must stop after the first option: %+v", s)
	}
}

func TestParseSegmentTruncated(t *testing.T) {
	h := tcpHeader(ack, 2, 4, 5, 0xb4)
	for _, tc := range []struct {
		name  string
		b     []byte
		l4len int
	}{
		{"short header", h[:19], 40},
		{"data offset below 5", func() []byte { c := append([]byte(nil), h...); c[12] = 4 << 4; return c }(), 40},
		{"ip length shorter than header", h, 21},
	} {
		if s := ParseSegment(tc.b, tc.l4len); s.Malformed != ReasonTruncated {
			t.Errorf("%s: Malformed = %v", tc.name, s.Malformed)
		}
	}
	if s := ParseSegment(h[:22], 24); s.Malformed != ReasonNotCaptured {
		t.Errorf("header cut by the snap length: Malformed = %v", s.Malformed)
	}
	var c Conn
	s := ParseSegment(h[:10], 40)
	if v := NewMachine(Linux).Step(&c, &s, Original, 0); v.CT != CTInvalid || v.Reason != ReasonTruncated || c.Live() {
		t.Fatalf("truncated packet verdict %+v", v)
	}
}

func FuzzParseSegment(f *testing.F) {
	f.Add(tcpHeader(syn, 2, 4, 5, 0xb4, 4, 2, 1, 3, 3, 7), 40)
	f.Add(tcpHeader(ack, 1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2), 60)
	f.Fuzz(func(t *testing.T, b []byte, l4len int) {
		s := ParseSegment(b, l4len)
		if s.Malformed == 0 && (int(s.HdrLen) > len(b) || s.HdrLen < 20 || s.NumSack > 4 || s.WScale > 14) {
			t.Fatalf("inconsistent segment %+v from %d bytes", s, len(b))
		}
		checkParseFastPath(t, b, l4len)
	})
}

// TestParseFastPathIsTheGeneralPath proves ParseSegmentInto's shortcuts
// for the aligned timestamp alone and for Linux's SYN options equal to
// parseOptions, the general option parser, on the headers of every recorded kernel trace, on generated
// traces and on two million random headers whose options are built from
// the kinds and lengths that matter (EOL, NOP, MSS, window scale, SACK,
// timestamps, unknown kinds, short and overlong lengths), a third of them
// starting with the timestamp's NOP NOP 8 10 and many of the rest laid
// out as Linux's SYN options, some with one byte changed.
func TestParseFastPathIsTheGeneralPath(t *testing.T) {
	var taken [3]int
	for i, r := range tracegen.Recordings {
		cfg := r.Config
		cfg.Seed = 7000 + uint64(i)
		for _, pkts := range [][]tracegen.Packet{
			readTrace(t, filepath.Join("..", "tcpcttest", "testdata", r.Name+".pcap.gz")),
			tracegen.Generate(cfg),
		} {
			var cp capture.Packet
			for _, p := range pkts {
				cp.Decode(capture.LinkRaw, p.Data, len(p.Data))
				if cp.Kind == capture.KindTCP {
					taken[checkParseFastPath(t, cp.TCP, cp.IPPayloadLen)]++
				}
			}
		}
	}
	rnd := rand.New(rand.NewPCG(18, 7))
	kinds := []byte{optEOL, optNOP, 2, optWScale, optSackPerm, optSack, optTstamp, 30, 255}
	b := make([]byte, 64)
	for range 2_000_000 {
		for j := range b {
			b[j] = byte(rnd.Uint32())
		}
		hdr := 20 + 4*rnd.IntN(11)
		b[12] = byte(hdr/4) << 4
		for j := 20; j < hdr; j++ {
			switch rnd.IntN(4) {
			case 0:
				b[j] = kinds[rnd.IntN(len(kinds))]
			case 1:
				b[j] = byte(rnd.IntN(20))
			}
		}
		switch {
		case hdr >= 32 && rnd.IntN(3) == 0:
			copy(b[20:], []byte{optNOP, optNOP, optTstamp, 10})
		case hdr >= 40 && rnd.IntN(2) == 0:
			// Linux's SYN options, or one byte of them changed.
			copy(b[20:], []byte{2, 4, b[22], b[23], optSackPerm, 2, optTstamp, 10})
			copy(b[36:], []byte{optNOP, optWScale, 3})
			if rnd.IntN(2) == 0 {
				b[20+rnd.IntN(20)] = kinds[rnd.IntN(len(kinds))]
			}
		}
		captured := hdr + rnd.IntN(len(b)-hdr+1)
		if rnd.IntN(10) == 0 {
			captured = rnd.IntN(len(b) + 1)
		}
		taken[checkParseFastPath(t, b[:captured], captured+rnd.IntN(1500))]++
	}
	t.Logf("%d headers took the timestamp shortcut, %d the SYN one", taken[1], taken[2])
	if taken[1] < 20_000 || taken[2] < 20_000 {
		t.Errorf("only %d headers took the timestamp shortcut and %d the SYN one: the differential says little", taken[1], taken[2])
	}
}

// checkParseFastPath parses tcp and, when the header has options, parses
// them again with parseOptions alone; the two segments must be equal. It
// returns 1 when the header is one the timestamp shortcut applies to,
// 2 when the SYN shortcut does.
func checkParseFastPath(t testing.TB, tcp []byte, l4len int) int {
	t.Helper()
	var s Segment
	ParseSegmentInto(&s, tcp, l4len)
	if s.Malformed != ReasonNone || s.HdrLen <= 20 {
		return 0
	}
	g := s
	g.HasWScale, g.WScale, g.SackPerm, g.NumSack, g.SackEdges = false, 0, false, 0, [4]uint32{}
	parseOptions(&g, tcp[20:s.HdrLen])
	if g != s {
		t.Fatalf("options % x: ParseSegmentInto gives %+v, parseOptions %+v", tcp[20:s.HdrLen], s, g)
	}
	if s.HdrLen == 32 && binary.BigEndian.Uint32(tcp[20:]) == alignedTimestamp {
		return 1
	}
	if s.HdrLen == 40 && binary.BigEndian.Uint32(tcp[20:])>>16 == linuxSynMSS &&
		binary.BigEndian.Uint32(tcp[24:]) == linuxSynSackTS && binary.BigEndian.Uint32(tcp[36:])>>8 == linuxSynWScale {
		return 2
	}
	return 0
}
