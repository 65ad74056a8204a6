package conformance

import (
	"fmt"
	"net/netip"
	"regexp"
	"testing"
	"time"

	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/packet"
)

// TestKernelChecksum: segments with a wrong TCP checksum arriving through
// a veth pair (PRE_ROUTING, where tcp_error checks checksums) are INVALID
// with nf_conntrack_checksum=1 and leave the entry alone, and are tracked
// as if right with 0; tcpct's checksum knob must agree, packet by packet,
// on the verdict (counted INVALID or not) and the entry's state after.
func TestKernelChecksum(t *testing.T) {
	for _, on := range []string{"1", "0"} {
		for _, fam := range []struct{ c, s netip.Addr }{{labSrc4, labDst4}, {labSrc6, labDst6}} {
			t.Run(fmt.Sprintf("checksum=%s/%v", on, fam.c), func(t *testing.T) {
				checksumTrace(t, on, fam.c, fam.s)
			})
		}
	}
}

func checksumTrace(t *testing.T, knob string, ca, sa netip.Addr) {
	l := newVethLab(t, map[string]string{"checksum": knob})
	tr := newTracker(t, []string{"checksum=" + knob})
	c, s := netip.AddrPortFrom(ca, 40100), netip.AddrPortFrom(sa, 80)
	const ci, si = 1000, 5000
	steps := []struct {
		seg packet.Segment
		bad bool
	}{
		{packet.Segment{Src: c, Dst: s, Seq: ci, Flags: packet.SYN, Window: 64240}, true},
		{packet.Segment{Src: c, Dst: s, Seq: ci, Flags: packet.SYN, Window: 64240}, false},
		{packet.Segment{Src: s, Dst: c, Seq: si, Ack: ci + 1, Flags: packet.SYN | packet.ACK, Window: 65160}, true},
		{packet.Segment{Src: s, Dst: c, Seq: si, Ack: ci + 1, Flags: packet.SYN | packet.ACK, Window: 65160}, false},
		{packet.Segment{Src: c, Dst: s, Seq: ci + 1, Ack: si + 1, Flags: packet.ACK, Window: 502, PayloadLen: 11}, true},
		{packet.Segment{Src: c, Dst: s, Seq: ci + 1, Ack: si + 1, Flags: packet.ACK, Window: 502}, false},
		{packet.Segment{Src: c, Dst: s, Seq: ci + 1, Ack: si + 1, Flags: packet.FIN | packet.ACK, Window: 502}, true},
	}
	state := regexp.MustCompile(`tcp +6 +\d+ +([A-Z_0-9]+) `)
	start := time.Now()
	for i, st := range steps {
		b, err := st.seg.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.bad {
			b[len(b)-1] ^= 0x40 // the last byte of the segment
		}
		before := l.invalid()
		l.send(l.frame(b))
		kInvalid := l.invalid() - before
		kState := ""
		if m := state.FindStringSubmatch(l.entries()); m != nil {
			kState = m[1]
		}
		v, err := tr.Track(b, start.Add(time.Duration(i)*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		ours := 0
		if v.CT == fsm.CTInvalid {
			ours = 1
		}
		t.Logf("packet %d (%v, bad checksum %v): kernel invalid +%d, entry %q; tcpct %v %q, entry %q", i, st.seg.Flags, st.bad, kInvalid, kState, v.CT, v.ReasonText(), v.StateName())
		if uint64(ours) != kInvalid || kState != v.StateName() {
			t.Errorf("packet %d: kernel invalid +%d, entry %q; tcpct %v, entry %q", i, kInvalid, kState, v.CT, v.StateName())
		}
		if knob == "1" && st.bad && v.Reason != fsm.ReasonBadChecksum {
			t.Errorf("packet %d: reason %q, want bad checksum", i, v.ReasonText())
		}
	}
}

// TestKernelICMPChecksum: an ICMP error with a wrong checksum arriving
// through a veth pair (PRE_ROUTING) is INVALID with
// nf_conntrack_checksum=1 — nf_conntrack_icmpv4_error's "bad hw icmp
// checksum", nf_conntrack_icmpv6_error's "ICMPv6 checksum failed",
// counted in the "icmp_error" column — and RELATED with 0; tcpct's checksum
// knob must agree, as on an error with a right checksum and one about no
// connection.
func TestKernelICMPChecksum(t *testing.T) {
	for _, on := range []string{"1", "0"} {
		for _, fam := range []struct {
			c, s    netip.Addr
			unreach uint8
		}{{labSrc4, labDst4, 3}, {labSrc6, labDst6, 1}} {
			t.Run(fmt.Sprintf("checksum=%s/%v", on, fam.c), func(t *testing.T) {
				l := newVethLab(t, map[string]string{"checksum": on})
				tr := newTracker(t, []string{"checksum=" + on})
				c, s := netip.AddrPortFrom(fam.c, 40200), netip.AddrPortFrom(fam.s, 80)
				syn, err := packet.Segment{Src: c, Dst: s, Seq: 1000, Flags: packet.SYN, Window: 64240}.Build()
				if err != nil {
					t.Fatal(err)
				}
				other := netip.AddrPortFrom(fam.s, 81)
				stray, err := packet.Segment{Src: c, Dst: other, Seq: 1000, Flags: packet.SYN, Window: 64240}.Build()
				if err != nil {
					t.Fatal(err)
				}
				steps := []struct {
					quote []byte
					bad   bool
				}{{syn, true}, {syn, false}, {stray, false}, {syn[:len(syn)-12], true}}
				start := time.Now()
				l.send(l.frame(syn))
				if _, err := tr.Track(syn, start); err != nil {
					t.Fatal(err)
				}
				for i, st := range steps {
					b, err := packet.ICMPError{Src: fam.s, Dst: fam.c, Type: fam.unreach, Code: 3, Quote: st.quote, BadChecksum: st.bad}.Build()
					if err != nil {
						t.Fatal(err)
					}
					before := l.stat("icmp_error")
					l.send(l.frame(b))
					kErr := l.stat("icmp_error") - before
					v, err := tr.Track(b, start.Add(time.Duration(i+1)*time.Millisecond))
					if err != nil {
						t.Fatal(err)
					}
					ours := uint64(0)
					if v.CT == fsm.CTInvalid {
						ours = 1
					}
					t.Logf("error %d (bad checksum %v): kernel icmp_error +%d; tcpct %s", i, st.bad, kErr, v.String())
					if ours != kErr {
						t.Errorf("error %d: kernel icmp_error +%d; tcpct %s", i, kErr, v.String())
					}
				}
			})
		}
	}
}
