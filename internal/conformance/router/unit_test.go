package router

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/fdac824a/tcpct"
)

// v4 is a minimal IPv4/TCP packet with the given TTL and TCP flags.
func v4(ttl uint8, sport, dport uint16, seq uint32, flags byte) []byte {
	p := make([]byte, 40)
	p[0], p[8], p[9] = 0x45, ttl, 6
	binary.BigEndian.PutUint16(p[2:], 40)
	copy(p[12:], []byte{198, 18, 1, 2})
	copy(p[16:], []byte{198, 18, 2, 2})
	binary.BigEndian.PutUint16(p[10:], uint16(ttl)*7) // stands for a header checksum
	binary.BigEndian.PutUint16(p[20:], sport)
	binary.BigEndian.PutUint16(p[22:], dport)
	binary.BigEndian.PutUint32(p[24:], seq)
	p[32], p[33] = 5<<4, flags
	binary.BigEndian.PutUint16(p[34:], 1000)
	return p
}

// v6 is a minimal IPv6/TCP packet with the given hop limit.
func v6(hop uint8, sport, dport uint16) []byte {
	p := make([]byte, 60)
	p[0], p[6], p[7] = 0x60, 6, hop
	binary.BigEndian.PutUint16(p[4:], 20)
	p[8], p[23] = 0xfd, 2
	p[24], p[39] = 0xfd, 2
	binary.BigEndian.PutUint16(p[40:], sport)
	binary.BigEndian.PutUint16(p[42:], dport)
	p[52], p[53] = 5<<4, 0x02
	return p
}

// TestStamps checks the verdict codes: distinct, never what an
// unstamped packet carries (the endpoints' 64, minus one at the router),
// each written by a rule of both families' chains, and decoded back.
func TestStamps(t *testing.T) {
	rs := routerRuleset()
	seen := map[uint8]bool{}
	for _, s := range stamps {
		if seen[s.code] || s.code == 63 || s.code == 64 || s.code == stampOther {
			t.Errorf("code %d is not a usable stamp", s.code)
		}
		seen[s.code] = true
		for _, field := range []string{"ip ttl", "ip6 hoplimit"} {
			rule := s.match + " " + field + " set " + itoa(int(s.code)) + " accept"
			if !strings.Contains(rs, rule) {
				t.Errorf("the ruleset lacks %q:\n%s", rule, rs)
			}
		}
		v, err := decodeStamp(s.code)
		if err != nil || v.CT != s.ct || v.Dir != s.dir {
			t.Errorf("decodeStamp(%d) = %v, %v; want %s %s", s.code, v, err, s.ct, s.dir)
		}
	}
	for _, c := range []uint8{63, 64, stampOther} {
		if _, err := decodeStamp(c); err == nil {
			t.Errorf("decodeStamp(%d) read a verdict", c)
		}
	}
}

func itoa(i int) string {
	return string(rune('0'+i/100)) + string(rune('0'+i/10%10)) + string(rune('0'+i%10))
}

// TestMatch pairs incoming frames with their stamped copies: by bytes
// with the TTL, the IPv4 checksum or the hop limit masked, duplicates in
// order, a packet never sent on as unforwarded, an outgoing packet
// never received as an orphan, and non-TCP frames ignored.
func TestMatch(t *testing.T) {
	syn, ack := v4(64, 1000, 80, 1, 0x02), v4(64, 1000, 80, 2, 0x10)
	synOut, ackOut := v4(241, 1000, 80, 1, 0x02), v4(243, 1000, 80, 2, 0x10)
	dupOut := v4(247, 1000, 80, 2, 0x10)
	s6, s6Out := v6(64, 5, 6), v6(242, 5, 6)
	lost := v4(64, 1000, 80, 99, 0x10)
	orphan := v4(244, 7, 8, 1, 0x10)
	icmp := []byte{0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1}
	icmp = append(icmp, make([]byte, 18)...)
	frames := []Frame{
		{Data: syn}, {Data: synOut, Out: true},
		{Data: ack}, {Data: ack}, {Data: ackOut, Out: true}, {Data: dupOut, Out: true},
		{Data: s6}, {Data: lost}, {Data: s6Out, Out: true},
		{Data: orphan, Out: true}, {Data: icmp}, {Data: icmp, Out: true},
	}
	pairs, orphans := Match(frames)
	if orphans != 1 {
		t.Errorf("%d orphans, want 1", orphans)
	}
	want := []struct {
		fwd bool
		v   string
	}{{true, "NEW original"}, {true, "ESTABLISHED original"}, {true, "INVALID"}, {true, "NEW reply"}, {false, ""}}
	if len(pairs) != len(want) {
		t.Fatalf("%d pairs, want %d", len(pairs), len(want))
	}
	for i, w := range want {
		p := pairs[i]
		if p.Forwarded != w.fwd || (w.fwd && (p.Err != nil || p.Verdict.String() != w.v)) {
			t.Errorf("pair %d: forwarded %v, verdict %v (%v); want %v, %s", i, p.Forwarded, p.Verdict, p.Err, w.fwd, w.v)
		}
	}
	if !bytes.Equal(pairs[1].In.Data, ack) {
		t.Error("a pair holds the outgoing copy instead of the packet received")
	}
}

// TestCheckDisagrees plants wrong kernel verdicts: Check must count the
// pairs that agree, name the ones that do not, and leave unforwarded
// packets out of the comparison.
func TestCheckDisagrees(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	syn := v4(64, 1000, 80, 1, 0x02)
	synack := v4(64, 80, 1000, 500, 0x12)
	copy(synack[12:], []byte{198, 18, 2, 2})
	copy(synack[16:], []byte{198, 18, 1, 2})
	binary.BigEndian.PutUint32(synack[28:], 2)
	pairs := []Pair{
		{In: Frame{TS: t0, Data: syn}, Forwarded: true, Verdict: Verdict{"NEW", "original"}},
		{In: Frame{TS: t0.Add(time.Millisecond), Data: synack}, Forwarded: true, Verdict: Verdict{"NEW", "reply"}}, // wrong
		{In: Frame{TS: t0.Add(2 * time.Millisecond), Data: syn}},
	}
	var front bytes.Buffer
	if err := WriteFront(&front, pairs); err != nil {
		t.Fatal(err)
	}
	rep, err := Check(front.Bytes(), pairs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Compared != 2 || rep.Agree != 1 || rep.Unforwarded != 1 || len(rep.Disagreement) != 1 || rep.OK() || rep.Options.SYNs != 3 || rep.Options.WScale != 0 {
		t.Fatalf("report %+v", rep)
	}
	d := rep.Disagreement[0]
	if d.Index != 1 || d.Tcpct.String() != "ESTABLISHED reply" || d.Kernel.String() != "NEW reply" {
		t.Errorf("disagreement %+v", d)
	}
	var b strings.Builder
	rep.WriteText(&b, 10)
	if !strings.Contains(b.String(), "#1 198.18.2.2:80 > 198.18.1.2:1000") {
		t.Errorf("report text:\n%s", b.String())
	}
}

// TestCompareTable: an entry in both dumps agrees whatever its seconds
// left; one only in the kernel's, or one tcpct still holds after the
// dump, is reported; one that expired while the dump ran is in neither.
func TestCompareTable(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	tr, err := tcpct.New(tcpct.Config{Knobs: []string{"tcp_timeout_syn_sent=5"}})
	if err != nil {
		t.Fatal(err)
	}
	for i, port := range []uint16{1000, 1001} {
		if _, err := tr.Track(v4(64, port, 80, 1, 0x02), t0.Add(time.Duration(i)*3*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	var line [2]string
	tr.Range(t0.Add(3*time.Second), func(e *tcpct.Entry) bool {
		line[e.Key.SrcPort()-1000] = string(e.AppendConntrack(nil, t0.Add(3*time.Second)))
		return true
	})
	// Dumped between 4.5 s and 5.5 s: the first entry (expiring at 5 s)
	// may or may not be there; the second (8 s) must be.
	before, after := t0.Add(4500*time.Millisecond), t0.Add(5500*time.Millisecond)
	for _, c := range []struct {
		kernel      string
		onlyK, only int
	}{
		{line[0] + line[1], 0, 0},
		{line[1], 0, 0},
		{strings.Replace(line[1], "tcp      6 5 ", "tcp      6 1 ", 1), 0, 0},
		{line[0], 0, 1},
		{line[0] + line[1] + strings.Replace(line[1], "sport=1001", "sport=1002", 1), 1, 0},
	} {
		n, onlyK, onlyT := CompareTable(c.kernel, tr, before, after)
		if len(onlyK) != c.onlyK || len(onlyT) != c.only || n != strings.Count(c.kernel, "\n") {
			t.Errorf("kernel dump\n%s: %d entries, only kernel %q, only tcpct %q", c.kernel, n, onlyK, onlyT)
		}
	}
}

// TestCorrupt flips exactly one bit, never in the IP header.
func TestCorrupt(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, p := range [][]byte{v4(64, 1, 2, 3, 0x10), v6(64, 1, 2)} {
		hdr := 20
		if p[0]>>4 == 6 {
			hdr = 40
		}
		for range 200 {
			q := corrupt(p, rng)
			bits := 0
			for i := range p {
				d := p[i] ^ q[i]
				for ; d != 0; d &= d - 1 {
					bits++
				}
				if d := p[i] ^ q[i]; d != 0 && i < hdr {
					t.Fatalf("byte %d of the IP header changed", i)
				}
			}
			if bits != 1 {
				t.Fatalf("%d bits flipped", bits)
			}
		}
	}
}

// TestSimultaneousSYN: only SYNs without ACK from the simultaneous-open
// ports are held.
func TestSimultaneousSYN(t *testing.T) {
	for _, c := range []struct {
		p    []byte
		want bool
	}{
		{v4(64, simultaneousPorts+5, 80, 1, 0x02), true},
		{v4(64, simultaneousPorts+1500, 80, 1, 0x02), true},
		{v4(64, simultaneousPorts+5, 80, 1, 0x12), false},
		{v4(64, simultaneousPorts-1, 80, 1, 0x02), false},
		{v4(64, simultaneousPorts+2000, 80, 1, 0x02), false},
		{v6(64, simultaneousPorts+7, 80), true},
		{v6(64, 80, simultaneousPorts+7), false},
	} {
		if got := simultaneousSYN(c.p); got != c.want {
			t.Errorf("simultaneousSYN(sport %d, flags %#x) = %v", binary.BigEndian.Uint16(c.p[len(c.p)-20:]), c.p[len(c.p)-7], got)
		}
	}
}

// TestCountOptions reads a Linux SYN's options: MSS, SACK permitted,
// timestamps, NOP, window scale.
func TestCountOptions(t *testing.T) {
	opts := []byte{2, 4, 0x01, 0xf4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}
	tcp := append(make([]byte, 20), opts...)
	tcp[12] = byte(len(tcp)/4) << 4
	var r Report
	r.countOptions(tcp)
	if o := r.Options; o.SYNs != 1 || o.SmallMSS != 1 || o.SackPerm != 1 || o.Timestamps != 1 || o.WScale != 1 {
		t.Errorf("%+v", o)
	}
	tcp[22], tcp[23] = 0x05, 0xb4 // MSS 1460
	tcp[24] = 1                   // NOP instead of SACK permitted
	tcp[25] = 1
	r = Report{}
	r.countOptions(tcp)
	if o := r.Options; o.SmallMSS != 0 || o.SackPerm != 0 || o.Timestamps != 1 || o.WScale != 1 {
		t.Errorf("%+v", o)
	}
}
