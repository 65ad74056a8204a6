// Command ktrace runs a capture through the real Linux connection tracker
// (in a throw-away network namespace, see package internal/conformance/kernel) and
// prints the kernel's verdict on every TCP packet as jsonl, in the format
// of `tcpct replay -format jsonl`.
//
//	ktrace [-sysctl NAME=VALUE ...] [-nopace] trace.pcap[.gz] > trace.jsonl
//
// The capture may be pcap or pcapng, gzip compressed or not, of any link
// type package capture decodes; every TCP packet in it is injected.
// It needs root, nft and ip (iproute2). Packets are injected at the pace
// of their capture timestamps; a summary (packets, time, packets/s) goes
// to stderr.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/fdac824a/tcpct/internal/conformance/kernel"
)

type sysctlFlag map[string]string

func (s sysctlFlag) String() string { return fmt.Sprint(map[string]string(s)) }
func (s sysctlFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" || val == "" {
		return fmt.Errorf("want NAME=VALUE, got %q", v)
	}
	s[k] = val
	return nil
}

func main() {
	sys := sysctlFlag{}
	flag.Var(sys, "sysctl", "a conntrack sysctl `NAME=VALUE` to set in the namespace (repeatable; nf_conntrack_ prefix optional)")
	nopace := flag.Bool("nopace", false, "inject back to back, ignoring capture timestamps")
	quiet := flag.Bool("q", false, "no summary on stderr")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: ktrace [-sysctl NAME=VALUE ...] [-nopace] trace.pcap > trace.jsonl\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(1)
	}
	pkts, err := kernel.ReadCapture(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "ktrace:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	t0 := time.Now()
	out, err := kernel.Run(ctx, pkts, kernel.Options{Sysctls: sys, NoPace: *nopace})
	el := time.Since(t0)
	w := bufio.NewWriter(os.Stdout)
	var b []byte
	for i := range out {
		b = out[i].AppendJSON(b[:0])
		b = append(b, '\n')
		w.Write(b)
	}
	if werr := w.Flush(); werr != nil && err == nil {
		err = werr
	}
	if !*quiet {
		fmt.Fprintf(os.Stderr, "ktrace: %d packets in %v (%.0f packets/s including pauses)\n", len(out), el.Round(time.Millisecond), float64(len(out))/el.Seconds())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ktrace:", err)
		os.Exit(3)
	}
}
