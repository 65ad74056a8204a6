// Package fuzz holds the native go test -fuzz targets of tcpct's
// invariants (see docs/invariants.md). Plain go test runs the committed
// seed corpora in testdata/fuzz; fuzz one target at a time with e.g.
//
//	go test -run '^$' -fuzz '^FuzzTrace$' -fuzztime 3m ./fuzz
package fuzz

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/internal/invariant"
	"github.com/fdac824a/tcpct/spec"
	"github.com/fdac824a/tcpct/table"
)

const second = int64(1e9)

// config is the tracker configuration a fuzz input's configuration byte
// selects, with a table of max entries.
func config(profile string, cfg byte, max int) tcpct.Config {
	b := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	knobs := []string{"tcp_loose=" + b(cfg&8 == 0), fmt.Sprintf("max=%d", max)}
	if profile == "linux" {
		knobs = append(knobs, "tcp_be_liberal="+b(cfg&4 != 0), "tcp_ignore_invalid_rst="+b(cfg&16 != 0),
			fmt.Sprintf("tcp_max_retrans=%d", (cfg>>5)%4), "acct="+b(cfg&0x80 != 0))
	}
	return tcpct.Config{Profile: profile, Knobs: knobs, Seed: 1}
}

// FuzzSegment: arbitrary TCP header bytes never make ParseSegment panic,
// and the segment tracked by the shipped tracker keeps every invariant on
// no entry and on an established entry (from either side), in both
// profiles.
func FuzzSegment(f *testing.F) {
	f.Add([]byte("\x9c\x40\x00\x50\x00\x00\x03\xe8\x00\x00\x00\x00\x80\x02\xfa\xf0\x00\x00\x00\x00\x02\x04\x05\xb4\x04\x02\x08\x0a\x00\x00\x00\x01\x00\x00\x00\x00\x01\x03\x03\x07"), uint16(40))
	f.Add([]byte("\x00\x50\x9c\x40\x00\x00\x07\xd1\x00\x00\x03\xe9\x50\x14\x00\x00\x00\x00\x00\x00"), uint16(20))
	f.Fuzz(func(t *testing.T, hdr []byte, l4len uint16) {
		seg := fsm.ParseSegment(hdr, int(l4len))
		if seg.Malformed == fsm.ReasonNone && (int(seg.HdrLen) < 20 || int(seg.HdrLen) > len(hdr) || int(seg.HdrLen)+int(seg.Len) != int(l4len)) {
			t.Fatalf("parsed header length %d, payload %d from %d captured bytes and l4len %d", seg.HdrLen, seg.Len, len(hdr), l4len)
		}
		if seg.NumSack > 4 {
			t.Fatalf("%d SACK edges", seg.NumSack)
		}
		for _, p := range []string{"linux", "tutorial"} {
			h, err := invariant.NewHarness(config(p, 0, 8))
			if err != nil {
				t.Fatal(err)
			}
			// Connection 0 has no entry; 1 and 2 are established, and the
			// segment comes from the original side of 1 and the reply side
			// of 2.
			now := 100 * second
			for c := 1; c <= 2; c++ {
				conv := invariant.NewConv(1000, 2000)
				for _, s := range establish {
					if _, _, err := h.Packet(connKey(c, s.d), conv.Segment(s.d, s.k, invariant.SeqExact, 10, 0), now); err != nil {
						t.Fatalf("%s establishing: %v", p, err)
					}
				}
			}
			for c, d := range []fsm.Dir{fsm.Original, fsm.Original, fsm.Reply} {
				if _, v, err := h.Packet(connKey(c, d), seg, now+second); err != nil {
					t.Fatalf("%s conn %d %v: %v\n\tverdict %v", p, c, d, err, &v)
				}
			}
		}
	})
}

// establish is a handshake and some data.
var establish = []struct {
	d fsm.Dir
	k invariant.Kind
}{{fsm.Original, invariant.KSyn}, {fsm.Reply, invariant.KSynAck}, {fsm.Original, invariant.KAck}, {fsm.Reply, invariant.KData}, {fsm.Original, invariant.KAck}}

// connKey is the tuple of connection c in direction d.
func connKey(c int, d fsm.Dir) table.Key {
	k := table.MakeKey4([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 1, byte(c)}, uint16(40000+c), 443)
	if d == fsm.Reply {
		return k.Reverse()
	}
	return k
}

var waits = []int64{0, 0, 0, 0, 1, 1, 2, 5, 9, 11, 31, 61, 121, 301, 432001, 3}

// Decode turns fuzzer bytes into a trace on three connections: a 5-byte
// header (configuration byte, then the initial sequence numbers' seed),
// then 5 bytes per packet. Every input decodes.
func Decode(data []byte) (cfg byte, max int, tr *invariant.Trace) {
	var h [5]byte
	copy(h[:], data)
	if len(data) > 5 {
		data = data[5:]
	} else {
		data = nil
	}
	cfg = h[0]
	max = []int{2, 3, 64, 64}[cfg%4]
	seed := binary.LittleEndian.Uint32(h[1:])
	tr = &invariant.Trace{}
	conv := make([]*invariant.Conv, 3)
	for i := range conv {
		tr.Keys = append(tr.Keys, connKey(i, fsm.Original))
		conv[i] = invariant.NewConv(seed*uint32(2*i+1), ^seed*uint32(i+3))
	}
	now := 1000 * second
	for ; len(data) >= 5; data = data[5:] {
		b0, b1 := data[0], data[1]
		n := uint32(binary.LittleEndian.Uint16(data[2:]))
		c := int(b0 % 3)
		dir := fsm.Dir(b0 >> 2 & 1)
		kind := invariant.Kind(b0 >> 3 % byte(invariant.NumKinds))
		mode := invariant.SeqExact
		if b1&0x80 != 0 {
			mode = invariant.SeqMode(b1 % byte(invariant.NumSeqModes))
		}
		now += waits[b1>>3&15] * second
		if b1&7 == 7 { // port reuse: new initial sequence numbers
			conv[c] = invariant.NewConv(n*0x10001, n*0x3fff)
		}
		seg := conv[c].Segment(dir, kind, mode, n, spec.Flags(data[4]))
		tr.Packets = append(tr.Packets, invariant.Packet{Conn: c, Dir: dir, Seg: seg, Now: now})
	}
	return cfg, max, tr
}

// FuzzTrace: a multi-packet trace on three connections through the
// shipped tracker keeps every invariant, in both profiles, and gives the
// same verdicts when its connections are spread over goroutines.
func FuzzTrace(f *testing.F) {
	f.Add([]byte("\x02\x01\x02\x03\x04" + "\x00\x00\x00\x00\x00" + "\x0c\x00\x00\x00\x00" + "\x10\x00\x00\x00\x00" + "\x24\x00\x10\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cb, max, tr := Decode(data)
		for _, p := range []string{"linux", "tutorial"} {
			cfg := config(p, cb, max)
			a, err := invariant.Run(cfg, tr)
			if err != nil {
				t.Fatalf("%s %v: %v", p, cfg.Knobs, err)
			}
			if max == 64 {
				c, err := invariant.RunConcurrent(cfg, tr, 3)
				if err != nil {
					t.Fatal(err)
				}
				if err := invariant.SameVerdicts(a, c); err != nil {
					t.Fatalf("%s concurrent: %v", p, err)
				}
			}
		}
	})
}
