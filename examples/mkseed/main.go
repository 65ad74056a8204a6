// Command mkseed writes examples/telnet-seed.pcap: the connection the
// Iptables Tutorial's "TCP connections" section walks through
// (192.168.1.5:1031 → 192.168.1.35:23), as an Ethernet capture.
//
//	go run ./examples/mkseed            # rewrite examples/telnet-seed.pcap
//	go run ./examples/mkseed -o FILE    # write elsewhere ("-" for stdout)
//
// The capture is deterministic (fixed times, sequence numbers and
// payloads), so the golden outputs in cmd/tcpct/testdata can rely on it.
//
// Timeline (2006-11-24, UTC): the client ARPs for the server, sends its SYN
// at 10:00:00, the SYN/ACK comes back at 10:00:05 and the handshake ACK at
// 10:00:10 — gaps long enough to take the seed's three /proc snapshots (3 s
// after the SYN: 117 SYN_SENT; 3 s after the SYN/ACK: 57 SYN_RECV; 1 s
// after the ACK: 431999 ESTABLISHED [ASSURED]). Then telnet option
// negotiation and a login banner, and at 10:00:20 the client closes: FIN,
// the server's ACK, its FIN, the last ACK.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/packet"
)

var (
	client    = netip.MustParseAddrPort("192.168.1.5:1031")
	server    = netip.MustParseAddrPort("192.168.1.35:23")
	clientMAC = [6]byte{0x00, 0x50, 0xda, 0x1c, 0x2e, 0x05}
	serverMAC = [6]byte{0x00, 0x0c, 0x29, 0x4a, 0x11, 0x23}
	start     = time.Date(2006, 11, 24, 10, 0, 0, 0, time.UTC)
)

const (
	isnClient = 0x5a3e1c07
	isnServer = 0x9b1f7a2c
)

func main() {
	out := flag.String("o", "examples/telnet-seed.pcap", "output file (- for stdout)")
	flag.Parse()
	b, err := Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkseed:", err)
		os.Exit(1)
	}
	if *out == "-" {
		_, err = os.Stdout.Write(b)
	} else {
		err = os.WriteFile(*out, b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkseed:", err)
		os.Exit(1)
	}
}

func ether(dst, src [6]byte, typ uint16, payload []byte) []byte {
	f := make([]byte, 0, 14+len(payload)+18)
	f = append(f, dst[:]...)
	f = append(f, src[:]...)
	f = append(f, byte(typ>>8), byte(typ))
	f = append(f, payload...)
	for len(f) < 60 { // minimum frame without FCS; the padding is on the wire
		f = append(f, 0)
	}
	return f
}

func arp(op uint16, sha [6]byte, spa netip.Addr, tha [6]byte, tpa netip.Addr) []byte {
	b := []byte{0, 1, 8, 0, 6, 4, byte(op >> 8), byte(op)}
	b = append(b, sha[:]...)
	s4 := spa.As4()
	b = append(b, s4[:]...)
	b = append(b, tha[:]...)
	t4 := tpa.As4()
	return append(b, t4[:]...)
}

// Build returns the capture's bytes.
func Build() ([]byte, error) {
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func write(w io.Writer) error {
	pw, err := capture.NewWriter(w, capture.LinkEthernet, 65535)
	if err != nil {
		return err
	}
	at := func(d string) time.Time {
		x, err := time.ParseDuration(d)
		if err != nil {
			panic(err)
		}
		return start.Add(x)
	}
	bcast := [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	// ARP: not TCP; tcpct counts these records and skips them.
	if err := pw.WritePacket(at("-400us"), ether(bcast, clientMAC, 0x0806, arp(1, clientMAC, client.Addr(), [6]byte{}, server.Addr()))); err != nil {
		return err
	}
	if err := pw.WritePacket(at("-200us"), ether(clientMAC, serverMAC, 0x0806, arp(2, serverMAC, server.Addr(), clientMAC, client.Addr()))); err != nil {
		return err
	}

	const (
		S = packet.SYN
		A = packet.ACK
		P = packet.PSH
		F = packet.FIN
	)
	// Telnet (RFC 854): the server asks for TERMINAL-TYPE, TERMINAL-SPEED,
	// X-DISPLAY-LOCATION and NEW-ENVIRON; the client refuses all four; the
	// server prints its banner.
	do := []byte{0xff, 0xfd, 0x18, 0xff, 0xfd, 0x20, 0xff, 0xfd, 0x23, 0xff, 0xfd, 0x27}
	wont := []byte{0xff, 0xfc, 0x18, 0xff, 0xfc, 0x20, 0xff, 0xfc, 0x23, 0xff, 0xfc, 0x27}
	banner := []byte("Debian GNU/Linux 3.1\r\nlogin: ")

	c, s := uint32(isnClient), uint32(isnServer) // next sequence numbers
	synOpts := func(ts uint32, ecr uint32) packet.Options {
		return packet.Options{MSS: 1460, SACKPermitted: true, Timestamps: true, TSVal: ts, TSEcr: ecr, HasWScale: true, WScale: 0}
	}
	ts := func(v, e uint32) packet.Options { return packet.Options{Timestamps: true, TSVal: v, TSEcr: e} }
	type seg struct {
		at  string
		out bool // client → server
		s   packet.Segment
	}
	segs := []seg{
		{"0s", true, packet.Segment{Seq: c, Flags: S, Window: 5840, Options: synOpts(1000, 0)}},
		{"5s", false, packet.Segment{Seq: s, Ack: c + 1, Flags: S | A, Window: 5792, Options: synOpts(7000, 1000)}},
		{"10s", true, packet.Segment{Seq: c + 1, Ack: s + 1, Flags: A, Window: 5840, Options: ts(2000, 7000)}},
		{"12s", false, packet.Segment{Seq: s + 1, Ack: c + 1, Flags: P | A, Window: 5792, Options: ts(7200, 2000), Payload: do}},
		{"12.04s", true, packet.Segment{Seq: c + 1, Ack: s + 1 + 12, Flags: P | A, Window: 5840, Options: ts(2004, 7200), Payload: wont}},
		{"12.08s", false, packet.Segment{Seq: s + 13, Ack: c + 13, Flags: P | A, Window: 5792, Options: ts(7208, 2004), Payload: banner}},
		{"12.28s", true, packet.Segment{Seq: c + 13, Ack: s + 13 + uint32(len(banner)), Flags: A, Window: 5840, Options: ts(2028, 7208)}},
		{"20s", true, packet.Segment{Seq: c + 13, Ack: s + 13 + uint32(len(banner)), Flags: F | A, Window: 5840, Options: ts(2800, 7208)}},
		{"20.001s", false, packet.Segment{Seq: s + 13 + uint32(len(banner)), Ack: c + 14, Flags: A, Window: 5792, Options: ts(8000, 2800)}},
		{"20.002s", false, packet.Segment{Seq: s + 13 + uint32(len(banner)), Ack: c + 14, Flags: F | A, Window: 5792, Options: ts(8000, 2800)}},
		{"20.042s", true, packet.Segment{Seq: c + 14, Ack: s + 14 + uint32(len(banner)), Flags: A, Window: 5840, Options: ts(2804, 8000)}},
	}
	for i, sg := range segs {
		sg.s.Src, sg.s.Dst = client, server
		src, dst := clientMAC, serverMAC
		if !sg.out {
			sg.s.Src, sg.s.Dst = server, client
			src, dst = serverMAC, clientMAC
		}
		sg.s.IPID = uint16(0x1000 + i)
		ip, err := sg.s.Append(nil)
		if err != nil {
			return err
		}
		if err := pw.WritePacket(at(sg.at), ether(dst, src, 0x0800, ip)); err != nil {
			return err
		}
	}
	return nil
}
