package main

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/fdac824a/tcpct/packet"
)

// oddCapture is a raw-IP capture of the packets the parallel reader does
// not hand to a worker as a rec but builds itself (rec.slow): TCP headers
// cut before and after the ports, next to the ones it hands over, with
// options, IPv6 and a wrong checksum.
func oddCapture(t *testing.T) []byte {
	cli, srv := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:80")
	cli6, srv6 := netip.MustParseAddrPort("[2001:db8::1]:40001"), netip.MustParseAddrPort("[2001:db8::2]:443")
	opts := packet.Options{MSS: 1460, SACKPermitted: true, HasWScale: true, WScale: 7, Timestamps: true, TSVal: 1}
	var segs []packet.Segment
	for i := range 8 {
		c := netip.AddrPortFrom(cli.Addr(), cli.Port()+uint16(i))
		segs = append(segs,
			packet.Segment{Src: c, Dst: srv, Seq: 100, Flags: packet.SYN, Window: 64240, Options: opts},
			packet.Segment{Src: srv, Dst: c, Seq: 900, Ack: 101, Flags: packet.SYN | packet.ACK, Window: 64240, Options: opts},
			packet.Segment{Src: cli6, Dst: srv6, Seq: 7 + uint32(i), Flags: packet.SYN, Window: 64240},
			packet.Segment{Src: c, Dst: srv, Seq: 101, Ack: 901, Flags: packet.ACK, Window: 502},
			packet.Segment{Src: c, Dst: srv, Seq: 101, Ack: 901, Flags: packet.ACK | packet.PSH, Window: 502, PayloadLen: 100},
			packet.Segment{Src: c, Dst: srv, Seq: 201, Ack: 901, Flags: packet.ACK, Window: 502},
		)
	}
	cut := map[int]int{}
	for i := range segs {
		if segs[i].Src.Addr().Is4() && i%7 == 3 {
			cut[i] = []int{2, 6, 12}[i%3] // no ports; ports; ports and sequence numbers
		}
	}
	data := rawCapture(t, segs, cut)
	data[len(data)-1] ^= 0x55 // a wrong checksum on the last ACK
	return data
}

// TestParallelOddPackets: the packets the parallel reader builds itself
// (truncated headers) and the ones it hands over as bytes come out as on
// one worker, in every format and with batches of every size; with the
// ICMP errors of icmpCapture too, and the checksum knob on and off.
func TestParallelOddPackets(t *testing.T) {
	defer func(b int) { batchLen = b }(batchLen)
	for _, c := range []struct {
		name string
		data []byte
		knob string
	}{
		{"odd", oddCapture(t), "checksum=0"},
		{"odd, checksum=1", oddCapture(t), "checksum=1"},
		{"icmp", icmpCapture(t), "checksum=0"},
	} {
		for _, format := range []string{"summary", "jsonl", "conntrack"} {
			batchLen = batchSize
			code, want, errs := runCmd(t, c.data, "replay", "-j", "1", "-sysctl", c.knob, "-format", format, "-")
			if code != 0 {
				t.Fatalf("%s -format %s -j 1: status %d: %s", c.name, format, code, errs)
			}
			want = throughputLine.ReplaceAllString(want, "")
			if c.name == "odd, checksum=1" && format == "summary" && (!strings.Contains(want, "  truncated packet\n") || !strings.Contains(want, "  bad checksum\n")) {
				t.Fatalf("the capture lacks truncated headers or a wrong checksum:\n%s", want)
			}
			for _, bl := range []int{1, 2, 5, batchSize} {
				for _, j := range []string{"2", "3"} {
					batchLen = bl
					_, out, _ := runCmd(t, c.data, "replay", "-j", j, "-sysctl", c.knob, "-format", format, "-")
					if out = throughputLine.ReplaceAllString(out, ""); out != want {
						t.Errorf("%s -format %s -j %s, batches of %d: differs from -j 1\n%s", c.name, format, j, bl, firstDiff(want, out))
					}
				}
			}
		}
	}
}
