// Command mkwindow writes examples/out-of-window.pcap: one HTTP-like
// connection (10.1.0.2:40112 → 10.1.0.80:80) in which a single client
// segment lies beyond the window the server offered, so that the Linux
// tracker calls it INVALID ("SEQ is over the upper bound (over the window
// of the receiver)") and a firewall with `ct state invalid drop` drops it,
// while every other packet is ESTABLISHED. It is the example of
// `tcpct explain -o` (the window picture).
//
//	go run ./examples/mkwindow            # rewrite examples/out-of-window.pcap
//	go run ./examples/mkwindow -o FILE    # write elsewhere ("-" for stdout)
//
// -client and -server move the connection to other addresses: the kernel
// runner (cmd/ktrace) needs IPv4 addresses in 127.0.0.0/8, and with
//
//	go run ./examples/mkwindow -client 127.1.0.2:40112 -server 127.1.0.80:80 -o w.pcap
//	go run ./cmd/ktrace w.pcap
//
// Linux 6.18 gives the same verdict as tcpct on every packet (checked
// 2026-12-06: INVALID on record 10 only, with the same reason).
//
// The capture is deterministic (fixed times, sequence numbers and
// payload lengths). Neither SYN carries window scaling, so every window
// is the raw 16-bit field: the server offers 4096 bytes, the client
// 8192.
//
// Timeline (2026-03-02, UTC, from 09:15:00): handshake in the first
// 20 ms; the client sends 1000-byte segments, which the server
// acknowledges, each ACK moving the upper bound of the client's window
// (td_maxend = ack + window); at +60 ms a segment 5000 bytes past that
// bound arrives (as if a middlebox had rewritten its sequence number);
// the server answers, and both sides close with FINs.
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
	client    = netip.MustParseAddrPort("10.1.0.2:40112")
	server    = netip.MustParseAddrPort("10.1.0.80:80")
	clientMAC = [6]byte{0x02, 0x00, 0x0a, 0x01, 0x00, 0x02}
	serverMAC = [6]byte{0x02, 0x00, 0x0a, 0x01, 0x00, 0x50}
	start     = time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)
)

const (
	isnClient = 0x1c2d3e4f
	isnServer = 0x70605040
)

func main() {
	out := flag.String("o", "examples/out-of-window.pcap", "output file (- for stdout)")
	flag.Func("client", "the client's `ADDR:PORT` (IPv4)", setAddr(&client))
	flag.Func("server", "the server's `ADDR:PORT` (IPv4)", setAddr(&server))
	flag.Parse()
	b, err := Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkwindow:", err)
		os.Exit(1)
	}
	if *out == "-" {
		_, err = os.Stdout.Write(b)
	} else {
		err = os.WriteFile(*out, b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkwindow:", err)
		os.Exit(1)
	}
}

func setAddr(p *netip.AddrPort) func(string) error {
	return func(s string) error {
		a, err := netip.ParseAddrPort(s)
		if err == nil && !a.Addr().Is4() {
			err = fmt.Errorf("%s: want an IPv4 address", s)
		}
		*p = a
		return err
	}
}

// Build returns the capture's bytes.
func Build() ([]byte, error) {
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func ether(dst, src [6]byte, payload []byte) []byte {
	f := make([]byte, 0, 14+len(payload))
	f = append(f, dst[:]...)
	f = append(f, src[:]...)
	f = append(f, 0x08, 0x00) // IPv4
	f = append(f, payload...)
	for len(f) < 60 {
		f = append(f, 0)
	}
	return f
}

func write(w io.Writer) error {
	pw, err := capture.NewWriter(w, capture.LinkEthernet, 65535)
	if err != nil {
		return err
	}
	const (
		S = packet.SYN
		A = packet.ACK
		P = packet.PSH
		F = packet.FIN
	)
	c, s := uint32(isnClient), uint32(isnServer)
	syn := packet.Options{MSS: 1460, SACKPermitted: true}
	type seg struct {
		ms  float64 // milliseconds after start
		out bool    // client → server
		s   packet.Segment
	}
	segs := []seg{
		{0, true, packet.Segment{Seq: c, Flags: S, Window: 8192, Options: syn}},
		{10, false, packet.Segment{Seq: s, Ack: c + 1, Flags: S | A, Window: 4096, Options: syn}},
		{20, true, packet.Segment{Seq: c + 1, Ack: s + 1, Flags: A, Window: 8192}},
		// The request, 1000 bytes at a time; the server's window is 4096.
		{30, true, packet.Segment{Seq: c + 1, Ack: s + 1, Flags: A, Window: 8192, PayloadLen: 1000}},
		{31, true, packet.Segment{Seq: c + 1001, Ack: s + 1, Flags: A, Window: 8192, PayloadLen: 1000}},
		{32, true, packet.Segment{Seq: c + 2001, Ack: s + 1, Flags: A, Window: 8192, PayloadLen: 1000}},
		{42, false, packet.Segment{Seq: s + 1, Ack: c + 2001, Flags: A, Window: 4096}},
		{44, true, packet.Segment{Seq: c + 3001, Ack: s + 1, Flags: A, Window: 8192, PayloadLen: 1000}},
		{45, true, packet.Segment{Seq: c + 4001, Ack: s + 1, Flags: P | A, Window: 8192, PayloadLen: 1000}},
		{55, false, packet.Segment{Seq: s + 1, Ack: c + 4001, Flags: A, Window: 4096}},
		// Out of window: the client's upper bound is now c+4001+4096, and
		// this segment starts 5000 bytes beyond it (an overshoot of up to
		// one receiver window would only be ignored, "bytes more than expected").
		{60, true, packet.Segment{Seq: c + 13097, Ack: s + 1, Flags: P | A, Window: 8192, PayloadLen: 1000}},
		{65, false, packet.Segment{Seq: s + 1, Ack: c + 5001, Flags: P | A, Window: 4096, PayloadLen: 1200}},
		{66, false, packet.Segment{Seq: s + 1201, Ack: c + 5001, Flags: P | A, Window: 4096, PayloadLen: 800}},
		{75, true, packet.Segment{Seq: c + 5001, Ack: s + 2001, Flags: A, Window: 8192}},
		{80, true, packet.Segment{Seq: c + 5001, Ack: s + 2001, Flags: F | A, Window: 8192}},
		{90, false, packet.Segment{Seq: s + 2001, Ack: c + 5002, Flags: F | A, Window: 4096}},
		{100, true, packet.Segment{Seq: c + 5002, Ack: s + 2002, Flags: A, Window: 8192}},
	}
	for i, sg := range segs {
		sg.s.Src, sg.s.Dst = client, server
		src, dst := clientMAC, serverMAC
		if !sg.out {
			sg.s.Src, sg.s.Dst = server, client
			src, dst = serverMAC, clientMAC
		}
		sg.s.IPID = uint16(0x2000 + i)
		ip, err := sg.s.Append(nil)
		if err != nil {
			return err
		}
		at := start.Add(time.Duration(sg.ms * float64(time.Millisecond)))
		if err := pw.WritePacket(at, ether(dst, src, ip)); err != nil {
			return err
		}
	}
	return nil
}
