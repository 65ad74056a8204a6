package tcpct_test

import (
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/packet"
)

// raw builds an IPv4 TCP packet for the examples.
func raw(src, dst string, flags packet.Flags, seq, ack uint32) []byte {
	s := packet.Segment{Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst),
		Seq: seq, Ack: ack, Flags: flags, Window: 5840}
	b, err := s.Append(nil)
	if err != nil {
		panic(err)
	}
	return b
}

// The Iptables Tutorial's connection through the 2.4 tracker, and the
// /proc/net/ip_conntrack line it shows 3 s after the SYN.
func Example() {
	tr, err := tcpct.New(tcpct.Config{Profile: "tutorial"})
	if err != nil {
		panic(err)
	}
	t0 := time.Date(2006, 11, 24, 10, 0, 0, 0, time.UTC)
	v, _ := tr.Track(raw("192.168.1.5:1031", "192.168.1.35:23", packet.SYN, 1000, 0), t0)
	fmt.Println(v.CT, v.Dir, v.StateName(), v.SecondsLeft())

	at := t0.Add(3 * time.Second)
	for _, e := range tr.Entries(at) {
		os.Stdout.Write(e.AppendProc24(nil, at))
	}
	// Output:
	// NEW original SYN_SENT 120
	// tcp 6 117 SYN_SENT src=192.168.1.5 dst=192.168.1.35 sport=1031 dport=23 [UNREPLIED] src=192.168.1.35 dst=192.168.1.5 sport=23 dport=1031 use=1
}

// An INVALID packet says why, and which cell of the spec decided it,
// with the RFC sections behind the cell.
func ExampleVerdict_Doc() {
	tr, _ := tcpct.New(tcpct.Config{Knobs: []string{"max=1024"}})
	t0 := time.Unix(0, 0)
	tr.Track(raw("10.0.0.1:40000", "10.0.0.2:80", packet.SYN, 1000, 0), t0)
	v, _ := tr.Track(raw("10.0.0.2:80", "10.0.0.1:40000", packet.FIN|packet.ACK, 5000, 1001), t0)
	fmt.Println(v.CT, "-", v.ReasonText())
	fmt.Printf("cell %s/%s in %s: %s\n", v.Dir, v.ClassName(), v.OldName(), v.CellName())
	d, _ := v.Doc()
	fmt.Println("RFC", d.RFC+":", d.Reason)
	fmt.Println("entry kept:", v.StateName(), v.SecondsLeft())
	// Output:
	// INVALID - invalid state transition
	// cell reply/fin in SYN_SENT: INVALID
	// RFC 793 §3.5; 9293 §3.6: a FIN before the handshake completed is invalid: the sender cannot have synchronized yet
	// entry kept: SYN_SENT 120
}

// Callers that parsed the headers themselves use TrackSegment.
func ExampleTracker_TrackSegment() {
	tr, _ := tcpct.New(tcpct.Config{Knobs: []string{"nf_conntrack_tcp_timeout_syn_sent=20", "max=1024"}})
	seg := fsm.Segment{Seq: 1000, Flags: packet.SYN, Win: 65535, HdrLen: 20}
	v := tr.TrackSegment(netip.MustParseAddrPort("[2001:db8::1]:40000"), netip.MustParseAddrPort("[2001:db8::2]:443"), &seg, time.Unix(0, 0))
	fmt.Println(v.String())
	// Output:
	// NEW original syn NONE->SYN_SENT 20s
}

// Subscribe delivers the conntrack -E stream.
func ExampleTracker_Subscribe() {
	tr, _ := tcpct.New(tcpct.Config{Knobs: []string{"max=1024"}})
	sub := tr.Subscribe(16)
	t0 := time.Unix(0, 0)
	tr.Track(raw("10.0.0.1:40000", "10.0.0.2:80", packet.SYN, 1000, 0), t0)
	tr.Track(raw("10.0.0.2:80", "10.0.0.1:40000", packet.SYN|packet.ACK, 5000, 1001), t0.Add(time.Second))
	for {
		ev, ok := sub.Poll()
		if !ok {
			break
		}
		os.Stdout.Write(ev.Append(nil))
	}
	// Output:
	//     [NEW] tcp      6 120 SYN_SENT src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=80 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=80 dport=40000
	//  [UPDATE] tcp      6 60 SYN_RECV src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=80 src=10.0.0.2 dst=10.0.0.1 sport=80 dport=40000
}

// A caller holding several packets (a capture read ahead, a NIC ring)
// tracks them with one TrackBatch call, which overlaps their table
// memory loads.
func ExampleTracker_TrackBatch() {
	tr, _ := tcpct.New(tcpct.Config{Knobs: []string{"max=1024"}})
	cli, srv := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:80")
	t0 := time.Unix(0, 0)
	batch := []tcpct.Packet{
		{Key: tcpct.KeyOf(cli, srv), Segment: tcpct.Segment{Seq: 1000, Flags: packet.SYN, Win: 65535, HdrLen: 20}, Time: t0},
		{Key: tcpct.KeyOf(srv, cli), Segment: tcpct.Segment{Seq: 5000, Ack: 1001, Flags: packet.SYN | packet.ACK, Win: 65535, HdrLen: 20}, Time: t0},
		{Key: tcpct.KeyOf(cli, srv), Segment: tcpct.Segment{Seq: 1001, Ack: 5001, Flags: packet.ACK, Win: 65535, HdrLen: 20}, Time: t0},
	}
	out := make([]tcpct.Verdict, len(batch))
	tr.TrackBatch(batch, out)
	for _, v := range out {
		fmt.Println(v.String())
	}
	// Output:
	// NEW original syn NONE->SYN_SENT 120s
	// ESTABLISHED reply synack SYN_SENT->SYN_RECV 60s
	// ESTABLISHED original ack SYN_RECV->ESTABLISHED 432000s [ASSURED]
}
