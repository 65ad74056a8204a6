package conformance

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/internal/conformance/compare"
	"github.com/fdac824a/tcpct/internal/conformance/kernel"
	"github.com/fdac824a/tcpct/packet"
)

// icmpStep is one packet of an ICMP probe and the verdict tcpct must
// give it (which the kernel must share).
type icmpStep struct {
	at     time.Duration
	b      []byte
	ct     string // NEW, ESTABLISHED, RELATED, INVALID
	dir    string // for RELATED
	reason string // tcpct's reason text, "" to skip
	what   string
}

// icmpProbe is a hand-written trace of ICMP errors about one connection
// (client c, server s, a router r on the path, an unrelated host x):
// each rule of nf_conntrack_icmpv4_error / nf_conntrack_icmpv6_error
// and nf_conntrack_inet_error (Linux 6.18) once.
func icmpProbe(t *testing.T, v6 bool) []icmpStep {
	t.Helper()
	c := netip.MustParseAddrPort("127.0.0.1:40000")
	s := netip.MustParseAddrPort("127.0.0.2:80")
	r := netip.MustParseAddr("127.0.0.9")
	x := netip.MustParseAddr("127.0.0.7")
	unreach, tooBig, exceeded, param := uint8(3), uint8(3), uint8(11), uint8(12)
	if v6 {
		c = netip.MustParseAddrPort("[fd7c:7c7c::1]:40000")
		s = netip.MustParseAddrPort("[fd7c:7c7c::2]:80")
		r = netip.MustParseAddr("fd7c:7c7c::9")
		x = netip.MustParseAddr("fd7c:7c7c::7")
		unreach, tooBig, exceeded, param = 1, 2, 3, 4
	}
	seg := func(sg packet.Segment) []byte {
		b, err := sg.Build()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	syn := seg(packet.Segment{Src: c, Dst: s, Seq: 1000, Flags: packet.SYN, Window: 64240})
	synack := seg(packet.Segment{Src: s, Dst: c, Seq: 5000, Ack: 1001, Flags: packet.SYN | packet.ACK, Window: 65160})
	other := seg(packet.Segment{Src: c, Dst: netip.AddrPortFrom(s.Addr(), 81), Seq: 1000, Flags: packet.SYN, Window: 64240})
	icmp := func(src, dst netip.Addr, typ, code uint8, quote []byte) []byte {
		b, err := packet.ICMPError{Src: src, Dst: dst, Type: typ, Code: code, Quote: quote}.Build()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ipLen := 20
	if v6 {
		ipLen = 40
	}
	steps := []icmpStep{
		{at: 0, b: syn, ct: "NEW", what: "SYN"},
		{at: 100 * time.Millisecond, b: icmp(s.Addr(), c.Addr(), unreach, 3, syn), ct: "RELATED", dir: "reply", what: "port unreachable from the server, whole SYN quoted"},
		{at: 200 * time.Millisecond, b: icmp(r, c.Addr(), unreach, 1, syn[:ipLen+8]), ct: "RELATED", dir: "reply", what: "host unreachable from a router, IP header + 8 bytes"},
		{at: 300 * time.Millisecond, b: icmp(r, c.Addr(), exceeded, 0, syn[:ipLen+4]), ct: "RELATED", dir: "reply", what: "time exceeded, only the ports quoted"},
		{at: 400 * time.Millisecond, b: icmp(r, c.Addr(), param, 0, syn[:ipLen+3]), ct: "INVALID", reason: "icmp error: the quoted header holds no tuple", what: "ports cut"},
		{at: 500 * time.Millisecond, b: icmp(r, c.Addr(), unreach, 1, syn[:ipLen-1]), ct: "INVALID", reason: "icmp error: the quoted header holds no tuple", what: "quoted IP header cut"},
		{at: 600 * time.Millisecond, b: icmp(r, x, unreach, 1, syn), ct: "INVALID", reason: "outer daddr != inner", what: "error sent to another host than the quoted source"},
		{at: 700 * time.Millisecond, b: icmp(r, c.Addr(), unreach, 1, other), ct: "INVALID", reason: "icmp error: no connection matches the quoted header", what: "unknown connection"},
		{at: 800 * time.Millisecond, b: icmp(r, x, unreach, 1, other), ct: "INVALID", reason: "icmp error: no connection matches the quoted header", what: "unknown connection, wrong destination too: the lookup fails first"},
		{at: 900 * time.Millisecond, b: synack, ct: "ESTABLISHED", what: "SYN/ACK"},
		{at: 1000 * time.Millisecond, b: icmp(r, s.Addr(), tooBig, 0, synack), ct: "RELATED", dir: "original", what: "error about the server's segment travels in the original direction"},
		{at: 1100 * time.Millisecond, b: icmp(c.Addr(), s.Addr(), unreach, 4, synack[:ipLen+8]), ct: "RELATED", dir: "original", what: "from the client itself"},
	}
	// Corrupted quoted headers: the kernel reads only the addresses, the
	// protocol, the fragment offset, the header length and the ports.
	q := bytes.Clone(synack)
	if v6 {
		q[0] = 0x45 // version nibble wrong, payload length wrong: unread
		q[4], q[5] = 0xff, 0xff
	} else {
		q[0] = 0x65 // version 6 in an IPv4 quote: unread
		q[2], q[3] = 0, 1
		q[10], q[11] = 0xde, 0xad // header checksum: unread
	}
	q[len(q)-1] ^= 0xff // TCP checksum wrong: unread
	steps = append(steps, icmpStep{at: 1200 * time.Millisecond, b: icmp(r, s.Addr(), unreach, 1, q), ct: "RELATED", dir: "original", what: "corrupted version, lengths, checksums in the quote"})
	if !v6 {
		f := bytes.Clone(synack)
		f[6], f[7] = 0x00, 0x10 // fragment offset 16: a later fragment has no ports
		steps = append(steps, icmpStep{at: 1300 * time.Millisecond, b: icmp(r, s.Addr(), unreach, 1, f), ct: "INVALID", reason: "icmp error: the quoted header holds no tuple", what: "quoted non-first fragment"})
		m := bytes.Clone(synack)
		m[6] = 0x20 // MF only: the first fragment has the ports
		steps = append(steps, icmpStep{at: 1300 * time.Millisecond, b: icmp(r, s.Addr(), unreach, 1, m), ct: "RELATED", dir: "original", what: "quoted first fragment (MF)"})
		h := append(bytes.Clone(synack[:20]), 1, 1, 1, 0) // a 4-byte IP option (NOPs, EOL)
		h = append(h, synack[20:]...)
		h[0] = 0x46
		steps = append(steps, icmpStep{at: 1300 * time.Millisecond, b: icmp(r, s.Addr(), unreach, 1, h), ct: "RELATED", dir: "original", what: "quoted header with options: the ports after them"})
		for _, typ := range []uint8{4, 5} {
			steps = append(steps, icmpStep{at: 1400 * time.Millisecond, b: icmp(r, s.Addr(), typ, 0, synack), ct: "RELATED", dir: "original", what: fmt.Sprintf("type %d is an error", typ)})
		}
		steps = append(steps, icmpStep{at: 1400 * time.Millisecond, b: icmp(r, s.Addr(), 19, 0, synack), ct: "INVALID", reason: "invalid icmp type", what: "type above 18"})
		short := icmp(r, s.Addr(), unreach, 1, nil)[:24]
		short[3] = 24 // IP total length
		short[10], short[11] = 0, 0
		steps = append(steps, icmpStep{at: 1400 * time.Millisecond, b: fixIPv4(short), ct: "INVALID", reason: "short packet", what: "4 bytes of ICMP"})
	} else {
		for _, typ := range []uint8{0, 100, 127} {
			steps = append(steps, icmpStep{at: 1400 * time.Millisecond, b: icmp(r, s.Addr(), typ, 0, synack), ct: "RELATED", dir: "original", what: fmt.Sprintf("ICMPv6 type %d (below 128) is an error", typ)})
		}
		short := icmp(r, s.Addr(), unreach, 1, nil)[:44]
		short[5] = 4 // payload length
		steps = append(steps, icmpStep{at: 1400 * time.Millisecond, b: short, ct: "INVALID", reason: "short packet", what: "4 bytes of ICMPv6"})
	}
	// The errors refreshed nothing: the entry (SYN_RECV, icmpSysctls'
	// 3 s from the SYN/ACK at 0.9 s) expires at 3.9 s; an error then
	// quotes nothing.
	steps = append(steps,
		icmpStep{at: 3300 * time.Millisecond, b: icmp(r, s.Addr(), unreach, 1, synack), ct: "RELATED", dir: "original", what: "just before the SYN/ACK's timeout"},
		icmpStep{at: 4500 * time.Millisecond, b: icmp(r, s.Addr(), unreach, 1, synack), ct: "INVALID", reason: "icmp error: no connection matches the quoted header", what: "after it: expired"},
	)
	return steps
}

// icmpSysctls shorten SYN_RECV's timeout so that the probe sees its
// entry expire in seconds.
var icmpSysctls = []string{"tcp_timeout_syn_recv=3"}

// fixIPv4 recomputes an IPv4 header's checksum.
func fixIPv4(b []byte) []byte {
	b[10], b[11] = 0, 0
	c := packet.Checksum(b[:20], 0)
	b[10], b[11] = byte(c>>8), byte(c)
	return b
}

// TestICMPProbe runs the probe through tcpct and checks each verdict.
func TestICMPProbe(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("v6=%v", v6), func(t *testing.T) {
			tr := newTracker(t, icmpSysctls)
			start := time.Unix(1e9, 0)
			for i, st := range icmpProbe(t, v6) {
				v, err := tr.Track(st.b, start.Add(st.at))
				if err != nil {
					t.Fatalf("step %d (%s): %v", i, st.what, err)
				}
				dir := ""
				if v.CT == tcpct.CTRelated {
					dir = v.Dir.String()
				}
				if v.CT.String() != st.ct || dir != st.dir || (st.reason != "" && v.ReasonText() != st.reason) {
					t.Errorf("step %d (%s): %v, want %s %s %q", i, st.what, v.String(), st.ct, st.dir, st.reason)
				}
			}
		})
	}
}

// TestKernelICMPProbe runs the probe through the kernel and tcpct and
// compares them packet by packet on every field.
func TestKernelICMPProbe(t *testing.T) {
	if err := kernel.Available(); err != nil {
		t.Skipf("kernel oracle unavailable: %v", err)
	}
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("v6=%v", v6), func(t *testing.T) {
			steps := icmpProbe(t, v6)
			start := time.Now()
			var in []kernel.Packet
			for _, st := range steps {
				in = append(in, kernel.Packet{TS: start.Add(st.at), Data: st.b})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			recs, err := kernel.Run(ctx, in, kernel.Options{Sysctls: sysctlMap(icmpSysctls)})
			if err != nil {
				t.Fatal(err)
			}
			for i := range recs {
				t.Logf("%d %-60s kernel %s", i, steps[i].what, recs[i].AppendJSON(nil))
			}
			kern := kernelLines(t, recs)
			ours := icmpLines(t, newTracker(t, icmpSysctls), in)
			raw := make([][]byte, len(in))
			for i := range in {
				raw[i] = in[i].Data
			}
			report(t, "icmp probe", kern, ours, compare.FlowKeys(raw))
		})
	}
}

// icmpLines tracks raw packets with Track (the path ICMP takes) and
// returns the verdicts in the runner's jsonl form.
func icmpLines(t *testing.T, tr *tcpct.Tracker, in []kernel.Packet) []compare.Line {
	t.Helper()
	var out []compare.Line
	for i, p := range in {
		v, err := tr.Track(p.Data, p.TS)
		if err != nil {
			continue
		}
		out = append(out, compare.VerdictLine(i, &v))
	}
	return out
}
