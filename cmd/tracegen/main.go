// Command tracegen writes a generated multi-connection TCP trace (see
// package internal/conformance/tracegen) as a LinkRaw pcap, gzip-compressed if the
// output name ends in .gz.
//
//	tracegen -seed 1 -packets 3000 [-pause 1.5s] -o trace.pcap.gz
package main

import (
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/fdac824a/tcpct/internal/conformance/tracegen"
)

func main() {
	var cfg tracegen.Config
	flag.Uint64Var(&cfg.Seed, "seed", 1, "random seed")
	flag.IntVar(&cfg.Packets, "packets", 2000, "approximate number of packets")
	flag.IntVar(&cfg.Parallel, "parallel", 8, "connections interleaved at a time")
	flag.Float64Var(&cfg.IPv6, "ipv6", 0.3, "share of IPv6 connections (negative: none)")
	flag.DurationVar(&cfg.Pause, "pause", 0, "length of the long pauses (0: none)")
	flag.IntVar(&cfg.MaxPauses, "pauses", 8, "at most this many pauses")
	flag.Float64Var(&cfg.ICMP, "icmp", 0, "share of packets followed by an ICMP/ICMPv6 error about a packet (0: none)")
	out := flag.String("o", "-", "output file (- for stdout; .gz compresses)")
	notes := flag.String("notes", "", "also write one line per packet (index, connection, generator's note, packet summary) to this file")
	flag.Parse()
	if err := run(cfg, *out, *notes); err != nil {
		fmt.Fprintln(os.Stderr, "tracegen:", err)
		os.Exit(1)
	}
}

func run(cfg tracegen.Config, out, notes string) error {
	pkts := tracegen.Generate(cfg)
	if notes != "" {
		f, err := os.Create(notes)
		if err != nil {
			return err
		}
		for i, p := range pkts {
			fmt.Fprintf(f, "%d c%d %s %s\n", i, p.Conn, p.Note, tracegen.Summary(p.Data))
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	var w io.Writer = os.Stdout
	if out != "-" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	if strings.HasSuffix(out, ".gz") {
		gz := gzip.NewWriter(w)
		defer gz.Close()
		w = gz
	}
	return tracegen.WritePcap(w, pkts)
}
