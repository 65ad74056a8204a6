// Command ctcompare compares two per-packet jsonl streams (the kernel's
// from cmd/ktrace and the tracker's from `tcpct replay -format jsonl`)
// field by field and prints agreement and the first disagreements with
// the previous lines of the same connection (given the capture).
//
//	ctcompare [-pcap trace.pcap] [-n 10] [-context 4] [-tolerance 1] kernel.jsonl tracker.jsonl
//
// Exit status: 0 all agree, 1 disagreements, 2 unreadable input.
package main

import (
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/internal/conformance/compare"
)

func main() {
	pcap := flag.String("pcap", "", "the capture both streams came from (to show context per connection)")
	n := flag.Int("n", 10, "disagreements to show")
	ctx := flag.Int("context", 4, "earlier lines of the same connection to show")
	tol := flag.Int64("tolerance", 1, "timeout tolerance in seconds (negative: exact)")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: ctcompare [-pcap trace.pcap] [-n 10] [-context 4] [-tolerance 1] kernel.jsonl tracker.jsonl")
		os.Exit(2)
	}
	a, err := readFile(flag.Arg(0))
	if err != nil {
		fail(err)
	}
	b, err := readFile(flag.Arg(1))
	if err != nil {
		fail(err)
	}
	o := compare.Options{TimeoutTolerance: *tol, MaxDiffs: *n, Context: *ctx}
	if *pcap != "" {
		ps, err := readPackets(*pcap)
		if err != nil {
			fail(err)
		}
		o.Keys = compare.FlowKeys(ps)
	}
	rep := compare.Compare(a, b, o)
	rep.NameA, rep.NameB = "kernel", "tracker"
	if flag.Arg(0) != "" {
		rep.NameA, rep.NameB = short(flag.Arg(0)), short(flag.Arg(1))
	}
	rep.WriteText(os.Stdout)
	if !rep.Agree() {
		os.Exit(1)
	}
}

func short(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		p = p[i+1:]
	}
	return p
}

// readPackets returns the IP packet of every record of a capture, nil for
// a record without one, so that index i is the jsonl line's i.
func readPackets(path string) ([][]byte, error) {
	r, err := capture.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var ps [][]byte
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			return ps, nil
		}
		if err != nil {
			return nil, err
		}
		ps = append(ps, append([]byte(nil), p.IP...)) // p is reused by Next
	}
}

func readFile(p string) ([]compare.Line, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(p, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		r = gz
	}
	ls, err := compare.Read(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return ls, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "ctcompare:", err)
	os.Exit(2)
}
