package fuzz

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/internal/invariant"
)

// FuzzPacket: raw IPv4/IPv6 + TCP bytes through tcpct.Tracker.Track, on an
// empty table and on a table holding an established connection of the
// packet's own tuple (in either direction): Track never panics, returns
// either an error (and changes nothing) or a verdict, and every step
// invariant holds on the entry as Lookup shows it before and after.
// mode bit 0 picks the profile, bit 1 the established connection's
// direction, bits 2-3 how far it got (none, SYN, handshake, data).
func FuzzPacket(f *testing.F) {
	// The committed corpus (testdata/fuzz/FuzzPacket, written by
	// TestSeedCorpus -update) holds packets of the recorded kernel traces.
	f.Add([]byte("\x45\x00\x00\x28\x00\x01\x00\x00\x40\x06\x00\x00\x0a\x00\x00\x01\x0a\x00\x00\x02\x9c\x40\x00\x50\x00\x00\x03\xe8\x00\x00\x00\x00\x50\x02\xfa\xf0\x00\x00\x00\x00"), uint8(0))
	f.Fuzz(func(t *testing.T, pkt []byte, mode uint8) {
		profile := []string{"linux", "tutorial"}[mode&1]
		// A small table: one connection is all an input can make, and the
		// default max (262,144 entries, ~40 MB zeroed) per input held
		// the target at ~300 execs/s.
		tr, err := tcpct.New(tcpct.Config{Profile: profile, Seed: 1, Knobs: []string{"max=16"}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, err := invariant.NewContext(fsm.NewMachine(tr.Profile()))
		if err != nil {
			t.Fatal(err)
		}
		var p capture.Packet
		p.Decode(capture.LinkRaw, pkt, len(pkt))
		now := time.Unix(1000, 0)
		var src, dst netip.AddrPort
		if p.Kind == capture.KindTCP {
			src, dst = netip.AddrPortFrom(p.Src, p.SrcPort), netip.AddrPortFrom(p.Dst, p.DstPort)
			if mode&2 != 0 {
				src, dst = dst, src
			}
			conv := invariant.NewConv(1000, 2000)
			script := []struct {
				d fsm.Dir
				k invariant.Kind
			}{{fsm.Original, invariant.KSyn}, {fsm.Reply, invariant.KSynAck}, {fsm.Original, invariant.KAck}, {fsm.Reply, invariant.KData}}
			for _, s := range script[:min(int(mode>>2&3)*2, len(script))] {
				seg := conv.Segment(s.d, s.k, invariant.SeqExact, 100, 0)
				a, b := src, dst
				if s.d == fsm.Reply {
					a, b = dst, src
				}
				tr.TrackSegment(a, b, &seg, now)
			}
			now = now.Add(time.Second)
			src, dst = netip.AddrPortFrom(p.Src, p.SrcPort), netip.AddrPortFrom(p.Dst, p.DstPort)
		}
		var before fsm.Conn
		dir := fsm.Original
		if p.Kind == capture.KindTCP {
			if e, d, ok := tr.Lookup(src, dst, now); ok {
				before, dir = e.Conn, d
			}
		}
		n := tr.Len()
		v, err := tr.Track(pkt, now)
		if err != nil {
			if p.Kind == capture.KindTCP || tr.Len() != n {
				t.Fatalf("error %v for a TCP packet, or the table changed (%d -> %d)", err, n, tr.Len())
			}
			for _, e := range []error{tcpct.ErrNotTCP, tcpct.ErrFragment, tcpct.ErrBadIP, tcpct.ErrNotIP} {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("unexpected error %v", err)
		}
		if p.Kind != capture.KindTCP && v.ICMP.Family != 0 {
			// An ICMP error (FuzzICMP checks these in depth): RELATED or
			// INVALID, the table untouched.
			if (v.CT != fsm.CTRelated && v.CT != fsm.CTInvalid) || tr.Len() != n {
				t.Fatalf("ICMP error: %v %q, table %d -> %d", v.CT, v.Reason, n, tr.Len())
			}
			return
		}
		if p.Kind != capture.KindTCP {
			if v.CT != fsm.CTInvalid || v.Reason != fsm.ReasonTruncated || tr.Len() != n {
				t.Fatalf("broken TCP header: %v %q, table %d -> %d", v.CT, v.Reason, n, tr.Len())
			}
			return
		}
		var after fsm.Conn
		if v.Verdict.Action == fsm.Recreate || v.Verdict.Action == fsm.Create {
			// The new entry's original tuple is the packet's.
			if e, _, ok := tr.Lookup(src, dst, now); ok {
				after = e.Conn
			}
		} else if e, _, ok := tr.Lookup(src, dst, now); ok {
			after = e.Conn
		}
		if v.Dropped {
			t.Fatalf("a table of %d entries dropped a packet", tr.Max())
		}
		st := invariant.Step{Before: before, After: after, Dir: dir, Seg: fsm.ParseSegment(p.TCP, p.IPPayloadLen), Now: now.UnixNano(), V: v.Verdict}
		if err := ctx.CheckStep(&st); err != nil {
			t.Fatalf("%s mode %#x: %v\n\tverdict %+v", profile, mode, err, v.Verdict)
		}
		if v.Entry != after.Live() || (after.Live() && (v.State != after.State || v.Deadline().UnixNano() != after.Deadline)) {
			t.Fatalf("verdict says entry=%v %v, the table holds %+v", v.Entry, v.State, after)
		}
	})
}
