package main

import (
	"bytes"
	"net/netip"
	"os"
	"testing"

	"github.com/fdac824a/tcpct/packet"
)

// FuzzReplay runs the whole replay command over arbitrary bytes on
// standard input, in every format and on one and two workers: it must
// never panic, must exit 0, 2 or 4 (never a usage error for input), and the
// two worker counts must print the same jsonl.
func FuzzReplay(f *testing.F) {
	seed, err := os.ReadFile(seedPcap)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:24])
	f.Add(seed[:100])
	f.Add(multiConnCapture(f, 20, 1)[:3000])
	f.Add([]byte{})
	// Tunnels (read with -decap when the length is odd), a cut header.
	cli, srv := netip.MustParseAddrPort("192.168.7.1:40000"), netip.MustParseAddrPort("192.168.7.2:22")
	vx := vxlanCapture(f, []packet.Segment{
		{Src: cli, Dst: srv, Seq: 100, Flags: packet.SYN, Window: 64240},
		{Src: srv, Dst: cli, Seq: 900, Ack: 101, Flags: packet.SYN | packet.ACK, Window: 64240},
	})
	f.Add(vx)
	f.Add(vx[:len(vx)-1])
	f.Add(rawCapture(f, []packet.Segment{
		{Src: cli, Dst: srv, Seq: 100, Flags: packet.SYN, Window: 64240},
		{Src: cli, Dst: srv, Seq: 101, Ack: 901, Flags: packet.ACK, Window: 502},
	}, map[int]int{1: 12}))
	f.Add([]byte("\x1f\x8b\x08\x00garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		var jsonl [2]string
		for i, j := range []string{"1", "2"} {
			for _, format := range []string{"jsonl", "summary", "events", "proc"} {
				var out, errb bytes.Buffer
				args := []string{"replay", "-format", format, "-j", j, "-sysctl", "max=64"}
				if len(data)%2 == 1 {
					args = append(args, "-decap")
				}
				if len(data)%3 == 0 {
					args = append(args, "-sysctl", "checksum=1")
				}
				code := run(append(args, "-"), bytes.NewReader(data), &out, &errb)
				if code != exitOK && code != exitInput && code != exitNoTCP {
					t.Fatalf("-format %s -j %s: status %d, stderr %q", format, j, code, errb.String())
				}
				if format == "jsonl" {
					jsonl[i] = out.String()
				}
			}
		}
		if jsonl[0] != jsonl[1] {
			t.Errorf("jsonl differs between -j 1 and -j 2")
		}
	})
}
