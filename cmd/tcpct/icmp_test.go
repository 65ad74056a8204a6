package main

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/fdac824a/tcpct/packet"
)

// icmpCapture is a raw-IP pcap: a SYN and SYN/ACK, a port unreachable
// about the SYN (RELATED reply), a packet too big about the SYN/ACK over
// IPv6 of another connection (RELATED original), an error about no
// connection, a short ICMP header, an echo request (not the TCP
// tracker's: skipped), and an RST of no connection.
func icmpCapture(t *testing.T) []byte { return icmpCaptureWith(t, true) }

// icmpCaptureWith is icmpCapture; without errors, each error is an echo
// request instead (a record the tracker skips), so that the two captures
// differ in the errors alone.
func icmpCaptureWith(t *testing.T, errors bool) []byte {
	t.Helper()
	b := func(x []byte, err error) []byte {
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	c, s := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:80")
	c6, s6 := netip.MustParseAddrPort("[2001:db8::1]:40000"), netip.MustParseAddrPort("[2001:db8::2]:443")
	syn := b(packet.Segment{Src: c, Dst: s, Seq: 100, Flags: packet.SYN, Window: 64240}.Build())
	synack := b(packet.Segment{Src: s, Dst: c, Seq: 900, Ack: 101, Flags: packet.SYN | packet.ACK, Window: 64240}.Build())
	syn6 := b(packet.Segment{Src: c6, Dst: s6, Seq: 100, Flags: packet.SYN, Window: 64240}.Build())
	synack6 := b(packet.Segment{Src: s6, Dst: c6, Seq: 900, Ack: 101, Flags: packet.SYN | packet.ACK, Window: 64240}.Build())
	stray := b(packet.Segment{Src: c, Dst: netip.MustParseAddrPort("10.0.0.2:81"), Seq: 1, Flags: packet.SYN}.Build())
	short := b(packet.ICMPError{Src: s.Addr(), Dst: c.Addr(), Type: 3, Code: 3}.Build())[:24]
	short[3] = 24
	short[10], short[11] = 0, 0
	sum := packet.Checksum(short[:20], 0)
	short[10], short[11] = byte(sum>>8), byte(sum)
	// The echo requests are skipped; a last RST without an entry
	// (INVALID, nothing created) sets the clock of the dumps.
	echo := b(packet.ICMPError{Src: c.Addr(), Dst: s.Addr(), Type: 8, Quote: make([]byte, 8)}.Build())
	rst := b(packet.Segment{Src: c, Dst: netip.MustParseAddrPort("10.0.0.9:9"), Seq: 1, Flags: packet.RST}.Build())
	if !errors {
		echo6 := b(packet.ICMPError{Src: c6.Addr(), Dst: s6.Addr(), Type: 128, Quote: make([]byte, 8)}.Build())
		return pcapOf(101, syn, synack, echo, syn6, synack6, echo6, echo, echo, echo, rst)
	}
	return pcapOf(101,
		syn, synack,
		b(packet.ICMPError{Src: s.Addr(), Dst: c.Addr(), Type: 3, Code: 3, Quote: syn[:28]}.Build()),
		syn6, synack6,
		b(packet.ICMPError{Src: c6.Addr(), Dst: s6.Addr(), Type: 2, Rest: 1280, Quote: synack6}.Build()),
		b(packet.ICMPError{Src: s.Addr(), Dst: c.Addr(), Type: 3, Code: 1, Quote: stray}.Build()),
		short, echo, rst,
	)
}

// TestReplayICMP: ICMP errors appear in jsonl with their type and code,
// RELATED with the quoted entry's direction and state or INVALID with a
// reason; in the summary by outcome; in explain on the quoted
// connection. The same with -j 2 (an error goes to its connection's
// shard).
func TestReplayICMP(t *testing.T) {
	data := icmpCapture(t)
	code, out, errs := runCmd(t, data, "replay", "-format", "jsonl", "-fields", "i,icmp,ct,dir,state,reason", "-")
	if code != 0 {
		t.Fatalf("status %d: %s", code, errs)
	}
	want := `{"i":0,"ct":"NEW","dir":"original","state":"SYN_SENT"}
{"i":1,"ct":"ESTABLISHED","dir":"reply","state":"SYN_RECV"}
{"i":2,"icmp_type":3,"icmp_code":3,"ct":"RELATED","dir":"reply","state":"SYN_RECV","reason":"related: icmp destination unreachable"}
{"i":3,"ct":"NEW","dir":"original","state":"SYN_SENT"}
{"i":4,"ct":"ESTABLISHED","dir":"reply","state":"SYN_RECV"}
{"i":5,"icmp_type":2,"icmp_code":0,"ct":"RELATED","dir":"original","state":"SYN_RECV","reason":"related: icmpv6 packet too big"}
{"i":6,"icmp_type":3,"icmp_code":1,"ct":"INVALID","reason":"icmp error: no connection matches the quoted header"}
{"i":7,"icmp_type":3,"icmp_code":3,"ct":"INVALID","reason":"short packet"}
{"i":9,"ct":"INVALID","reason":"invalid new"}
`
	if out != want {
		t.Errorf("jsonl:\n%s\nwant:\n%s", out, want)
	}
	for _, j := range []string{"1", "2"} {
		_, par, _ := runCmd(t, data, "replay", "-j", j, "-format", "jsonl", "-")
		_, one, _ := runCmd(t, data, "replay", "-j", "1", "-format", "jsonl", "-")
		if par != one {
			t.Errorf("-j %s differs from -j 1:\n%s\n%s", j, par, one)
		}
	}
	_, sum, _ := runCmd(t, data, "replay", "-format", "summary", "-")
	for _, s := range []string{"5 TCP packets", "4 ICMP errors", "         2  RELATED\n", "         1  INVALID: short packet\n"} {
		if !strings.Contains(sum, s) {
			t.Errorf("summary lacks %q:\n%s", s, sum)
		}
	}
	_, ex, _ := runCmd(t, data, "explain", "-packet", "2", "-")
	if !strings.Contains(ex, "#2 ") || !strings.Contains(ex, "RELATED, direction reply") || !strings.Contains(ex, "timeout not refreshed") {
		t.Errorf("explain -packet 2:\n%s", ex)
	}
	_, ex6, _ := runCmd(t, data, "explain", "-packet", "3", "-")
	if !strings.Contains(ex6, "#5 ") || !strings.Contains(ex6, "ICMPv6 type 2") {
		t.Errorf("explain -packet 3 does not show the error about the connection:\n%s", ex6)
	}
}

// TestICMPMakesNoEvents: the errors change no entry, so the event stream
// and the final table are those of the capture without them.
func TestICMPMakesNoEvents(t *testing.T) {
	for _, format := range []string{"events", "conntrack", "proc"} {
		_, with, _ := runCmd(t, icmpCaptureWith(t, true), "replay", "-format", format, "-")
		_, without, _ := runCmd(t, icmpCaptureWith(t, false), "replay", "-format", format, "-")
		if with != without || with == "" {
			t.Errorf("%s with the errors:\n%s\nwithout:\n%s", format, with, without)
		}
	}
}
