package tcpct

import (
	"net/netip"
	"testing"
	"time"

	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/packet"
	"github.com/fdac824a/tcpct/table"
)

func mustICMPTest(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestICMPRelatedLeavesEntryAlone: an ICMP error quoting a connection's
// segment is RELATED in the direction opposite to the quoted segment's,
// names the entry, and changes neither its state nor its deadline (the
// kernel's nf_conntrack_inet_error only attaches the entry to the
// packet); an error that misses the entry's destination is INVALID.
func TestICMPRelatedLeavesEntryAlone(t *testing.T) {
	for _, fam := range []struct {
		c, s, r string
		unreach uint8
	}{{"10.0.0.1:40000", "10.0.0.2:443", "192.0.2.1", 3}, {"[2001:db8::1]:40000", "[2001:db8::2]:443", "2001:db8:ff::1", 1}} {
		c, s, r := netip.MustParseAddrPort(fam.c), netip.MustParseAddrPort(fam.s), netip.MustParseAddr(fam.r)
		tr, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Unix(1000, 0)
		syn := mustICMPTest(packet.Segment{Src: c, Dst: s, Seq: 1, Flags: packet.SYN, Window: 1000}.Build())
		if v, err := tr.Track(syn, t0); err != nil || v.CT != CTNew {
			t.Fatalf("SYN: %v %v", v.String(), err)
		}
		before, _, _ := tr.Lookup(c, s, t0)
		errPkt := mustICMPTest(packet.ICMPError{Src: r, Dst: c.Addr(), Type: fam.unreach, Code: 1, Quote: syn}.Build())
		v, err := tr.Track(errPkt, t0.Add(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if v.CT != CTRelated || v.Dir != Reply || !v.Entry || v.StateName() != "SYN_SENT" || v.Src() != c || v.Dst() != s {
			t.Errorf("%v: error to the client: %s (key %v→%v), want RELATED reply on SYN_SENT c→s", c, v.String(), v.Src(), v.Dst())
		}
		if got := v.SecondsLeft(); got != 90 {
			t.Errorf("%v: RELATED 30 s after the SYN shows %d s left, want 90 (not refreshed)", c, got)
		}
		after, _, _ := tr.Lookup(c, s, t0.Add(30*time.Second))
		if after.Conn != before.Conn {
			t.Errorf("%v: the error changed the entry:\n%+v\n%+v", c, before.Conn, after.Conn)
		}
		wantText := "related: icmp destination unreachable"
		if c.Addr().Is6() {
			wantText = "related: icmpv6 destination unreachable"
		}
		if v.ICMP.Outcome != ICMPRelated || v.ReasonText() != wantText {
			t.Errorf("%v: outcome %v, reason %q", c, v.ICMP.Outcome, v.ReasonText())
		}
		// Sent to the server instead: the quoted source is not the
		// error's destination.
		wrong := mustICMPTest(packet.ICMPError{Src: r, Dst: s.Addr(), Type: fam.unreach, Code: 1, Quote: syn}.Build())
		if v, _ := tr.Track(wrong, t0.Add(31*time.Second)); v.CT != CTInvalid || v.ICMP.Outcome != ICMPOuterDaddr || !v.Entry {
			t.Errorf("%v: error to the server about the client's SYN: %s", c, v.String())
		}
		// After the SYN's 120 s the entry is gone and so is the relation.
		if v, _ := tr.Track(errPkt, t0.Add(121*time.Second)); v.CT != CTInvalid || v.ICMP.Outcome != ICMPNoEntry || v.Entry {
			t.Errorf("%v: error after the entry expired: %s", c, v.String())
		}
		st := tr.Stats()
		if st.ICMP != 3 || st.ICMPErrors != 2 || st.Packets != 1 || st.Invalid != 0 {
			t.Errorf("%v: stats %+v: want 3 ICMP, 2 errors, 1 TCP packet, 0 invalid", c, st)
		}
	}
}

// TestICMPChecksumKnob: a wrong ICMP checksum is INVALID only with the
// checksum knob on (nf_conntrack_checksum in PRE_ROUTING).
func TestICMPChecksumKnob(t *testing.T) {
	c, s := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:443")
	syn := mustICMPTest(packet.Segment{Src: c, Dst: s, Seq: 1, Flags: packet.SYN, Window: 1000}.Build())
	bad := mustICMPTest(packet.ICMPError{Src: s.Addr(), Dst: c.Addr(), Type: 3, Code: 3, Quote: syn, BadChecksum: true}.Build())
	for knob, want := range map[string]CT{"checksum=0": CTRelated, "checksum=1": CTInvalid} {
		tr, err := New(Config{Knobs: []string{knob}})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Unix(1000, 0)
		tr.Track(syn, now)
		v, err := tr.Track(bad, now)
		if err != nil || v.CT != want {
			t.Errorf("%s: %s %v, want %v", knob, v.String(), err, want)
		}
		if want == CTInvalid && v.ReasonText() != "bad hw icmp checksum" {
			t.Errorf("%s: reason %q", knob, v.ReasonText())
		}
	}
}

// TestICMPBatchIsTrack: PacketOf and TrackBatch give an ICMP record the
// verdict Track gives it; informational ICMP and errors quoting UDP are
// not the TCP tracker's (ErrNotTCP, no Packet).
func TestICMPBatchIsTrack(t *testing.T) {
	c, s := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:443")
	syn := mustICMPTest(packet.Segment{Src: c, Dst: s, Seq: 1, Flags: packet.SYN, Window: 1000}.Build())
	synack := mustICMPTest(packet.Segment{Src: s, Dst: c, Seq: 9, Ack: 2, Flags: packet.SYN | packet.ACK, Window: 1000}.Build())
	raws := [][]byte{
		syn,
		mustICMPTest(packet.ICMPError{Src: s.Addr(), Dst: c.Addr(), Type: 3, Code: 3, Quote: syn[:28]}.Build()),
		synack,
		mustICMPTest(packet.ICMPError{Src: c.Addr(), Dst: s.Addr(), Type: 11, Quote: synack}.Build()),
		mustICMPTest(packet.ICMPError{Src: c.Addr(), Dst: s.Addr(), Type: 3, Quote: synack[:22]}.Build()),
	}
	echo := mustICMPTest(packet.ICMPError{Src: c.Addr(), Dst: s.Addr(), Type: 8, Quote: make([]byte, 8)}.Build())
	udp := append([]byte(nil), syn[:28]...)
	udp[9] = 17
	quotesUDP := mustICMPTest(packet.ICMPError{Src: s.Addr(), Dst: c.Addr(), Type: 3, Code: 3, Quote: udp}.Build())
	one, _ := New(Config{Seed: 1})
	batch, _ := New(Config{Seed: 2})
	now := time.Unix(5000, 0)
	var pkts []Packet
	var want []Verdict
	for i, b := range raws {
		v, err := one.Track(b, now.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, v)
		var p capture.Packet
		p.Decode(capture.LinkRaw, b, len(b))
		p.Time = now.Add(time.Duration(i) * time.Second).UnixNano()
		pkts = append(pkts, PacketOf(&p))
	}
	out := make([]Verdict, len(pkts))
	batch.TrackBatch(pkts, out)
	for i := range out {
		out[i].Ref, want[i].Ref = table.Ref{}, table.Ref{}
		if out[i] != want[i] {
			t.Errorf("packet %d: batch %s, Track %s", i, out[i].String(), want[i].String())
		}
	}
	if a, b := one.Stats(), batch.Stats(); a.Packets != b.Packets || a.ICMP != b.ICMP || a.ICMPErrors != b.ICMPErrors || a.Packets != 2 {
		t.Errorf("counts: Track %d packets, %d ICMP, %d errors; TrackBatch %d, %d, %d; want 2 TCP packets",
			a.Packets, a.ICMP, a.ICMPErrors, b.Packets, b.ICMP, b.ICMPErrors)
	}
	if want[1].CT != CTRelated || want[3].CT != CTRelated || want[3].Dir != Original || want[4].CT != CTInvalid {
		t.Errorf("verdicts: %s / %s / %s", want[1].String(), want[3].String(), want[4].String())
	}
	for _, b := range [][]byte{echo, quotesUDP} {
		if _, err := one.Track(b, now); err != ErrNotTCP {
			t.Errorf("%x: err %v, want ErrNotTCP", b[:24], err)
		}
		var p capture.Packet
		p.Decode(capture.LinkRaw, b, len(b))
		if IsICMP(&p) {
			t.Errorf("%x: IsICMP", b[:24])
		}
	}
}

// FuzzICMP: whatever an ICMP packet holds, tracking it never panics,
// never changes the entry it may quote (the kernel only reads it), is
// RELATED or INVALID, and gets the same verdict from Track and from
// TrackBatch with PacketOf.
func FuzzICMP(f *testing.F) {
	c, s := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:443")
	c6, s6 := netip.MustParseAddrPort("[2001:db8::1]:40000"), netip.MustParseAddrPort("[2001:db8::2]:443")
	syn := mustICMPTest(packet.Segment{Src: c, Dst: s, Seq: 1, Flags: packet.SYN, Window: 1000}.Build())
	syn6 := mustICMPTest(packet.Segment{Src: c6, Dst: s6, Seq: 1, Flags: packet.SYN, Window: 1000}.Build())
	f.Add(mustICMPTest(packet.ICMPError{Src: s.Addr(), Dst: c.Addr(), Type: 3, Code: 3, Quote: syn}.Build()))
	f.Add(mustICMPTest(packet.ICMPError{Src: s.Addr(), Dst: c.Addr(), Type: 11, Quote: syn[:28]}.Build()))
	f.Add(mustICMPTest(packet.ICMPError{Src: s6.Addr(), Dst: c6.Addr(), Type: 2, Quote: syn6}.Build()))
	f.Add(mustICMPTest(packet.ICMPError{Src: s6.Addr(), Dst: c6.Addr(), Type: 1, Quote: syn6[:44]}.Build()))
	f.Fuzz(func(t *testing.T, b []byte) {
		now := time.Unix(1000, 0)
		one, _ := New(Config{Seed: 1, Knobs: []string{"max=16", "checksum=1"}})
		batch, _ := New(Config{Seed: 2, Knobs: []string{"max=16", "checksum=1"}})
		for _, tr := range []*Tracker{one, batch} {
			tr.Track(syn, now)
			tr.Track(syn6, now)
		}
		before := one.Entries(now)
		v, err := one.Track(b, now.Add(time.Second))
		var p capture.Packet
		p.Decode(capture.LinkRaw, b, len(b))
		if !IsICMP(&p) {
			return
		}
		if err != nil {
			t.Fatalf("IsICMP but Track: %v", err)
		}
		if v.ICMP.Family == 0 || (v.CT != CTRelated && v.CT != CTInvalid) || (v.CT == CTRelated) != (v.ICMP.Outcome == ICMPRelated) {
			t.Fatalf("verdict %s, outcome %v", v.String(), v.ICMP.Outcome)
		}
		after := one.Entries(now.Add(time.Second))
		if len(after) != len(before) {
			t.Fatalf("entries %d -> %d", len(before), len(after))
		}
		for i := range after {
			if after[i].Conn != before[i].Conn {
				t.Fatalf("entry %v changed", after[i].Key)
			}
		}
		p.Time = now.Add(time.Second).UnixNano()
		pk := PacketOf(&p)
		out := make([]Verdict, 1)
		batch.TrackBatch([]Packet{pk}, out)
		out[0].Ref, v.Ref = table.Ref{}, table.Ref{}
		if out[0] != v {
			t.Fatalf("batch %s, Track %s", out[0].String(), v.String())
		}
	})
}
