// Command mkload writes a large synthetic capture for throughput
// measurements: -conns connections (default 100000), -concurrent of them
// (default 1000) open at a time and interleaved, each a handshake, data
// both ways with ACKs and a FIN close: ten packets (SYN, SYN/ACK, ACK,
// data, data, ACK, ACK, FIN, FIN, ACK). Packets are -gap apart (default
// 1µs). Clients spread over 10.0.0.0/8, servers over -servers addresses
// (default 1) on port 80. Raw-IPv4 link type, deterministic.
//
//	go run ./examples/mkload -o /tmp/load.pcap   # 1,000,000 packets, ~90 MB
//	tcpct replay -format summary /tmp/load.pcap
//
// scripts/bench-replay.sh writes the large one: 10,000,000 packets,
// 100,000 connections open at a time, 120 µs apart (20 minutes of
// traffic, so that closed connections leave TIME_WAIT and the table stays
// under its default 262144 entries).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/packet"
)

func main() {
	out := flag.String("o", "load.pcap", "output file")
	conns := flag.Int("conns", 100000, "number of connections (10 packets each)")
	concurrent := flag.Int("concurrent", 1000, "connections open at a time")
	gap := flag.Duration("gap", time.Microsecond, "time between two packets")
	servers := flag.Int("servers", 1, "number of server addresses")
	flag.Parse()
	if *concurrent < 1 || *servers < 1 || *servers > 65535 {
		fmt.Fprintln(os.Stderr, "mkload: -concurrent and -servers must be positive (servers at most 65535)")
		os.Exit(2)
	}
	if err := write(*out, *conns, *concurrent, *servers, *gap); err != nil {
		fmt.Fprintln(os.Stderr, "mkload:", err)
		os.Exit(1)
	}
}

func write(path string, conns, batch, servers int, gap time.Duration) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	pw, err := capture.NewWriter(bw, capture.LinkRaw, 0)
	if err != nil {
		return err
	}
	const (
		S, A, P, F = packet.SYN, packet.ACK, packet.PSH, packet.FIN
	)
	t := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	buf := make([]byte, 0, 256)
	for b := 0; b < conns; b += batch {
		for step := 0; step < 10; step++ {
			for c := b; c < b+batch && c < conns; c++ {
				cli := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(c >> 16), byte(c >> 8), byte(c)}), uint16(10000+c%50000))
				sn := c % servers
				srv := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 255, byte(sn >> 8), byte(sn + 1)}), 80)
				ci, si := uint32(c)*7919, uint32(c)*104729
				s := packet.Segment{Src: cli, Dst: srv, Window: 64240}
				rev := func() { s.Src, s.Dst = srv, cli }
				switch step {
				case 0:
					s.Flags, s.Seq = S, ci
					s.Options = packet.Options{MSS: 1460, SACKPermitted: true, HasWScale: true, WScale: 7}
				case 1:
					rev()
					s.Flags, s.Seq, s.Ack = S|A, si, ci+1
					s.Options = packet.Options{MSS: 1460, SACKPermitted: true, HasWScale: true, WScale: 7}
				case 2:
					s.Flags, s.Seq, s.Ack = A, ci+1, si+1
				case 3:
					s.Flags, s.Seq, s.Ack, s.PayloadLen = P|A, ci+1, si+1, 100
				case 4:
					rev()
					s.Flags, s.Seq, s.Ack, s.PayloadLen = P|A, si+1, ci+101, 300
				case 5:
					s.Flags, s.Seq, s.Ack = A, ci+101, si+301
				case 6:
					rev()
					s.Flags, s.Seq, s.Ack = A, si+301, ci+101
				case 7:
					s.Flags, s.Seq, s.Ack = F|A, ci+101, si+301
				case 8:
					rev()
					s.Flags, s.Seq, s.Ack = F|A, si+301, ci+102
				case 9:
					s.Flags, s.Seq, s.Ack = A, ci+102, si+302
				}
				if buf, err = s.Append(buf[:0]); err != nil {
					return err
				}
				t = t.Add(gap)
				if err := pw.WritePacket(t, buf); err != nil {
					return err
				}
			}
		}
	}
	return bw.Flush()
}
