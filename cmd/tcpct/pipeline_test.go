package main

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/capture"
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
			// From a file, each worker of the summary and of the table
			// dump reads it itself (runReaders) and sorts the odd
			// packets out on its own; jsonl reads it as it reads stdin.
			path := filepath.Join(t.TempDir(), "odd.pcap")
			if err := os.WriteFile(path, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			for _, j := range []string{"2", "3"} {
				workersRead = readAlways
				_, out, _ := runCmd(t, nil, "replay", "-j", j, "-sysctl", c.knob, "-format", format, path)
				workersRead = readWhenCores
				out = strings.ReplaceAll(throughputLine.ReplaceAllString(out, ""), path, "-")
				if out != want {
					t.Errorf("%s -format %s -j %s, from a file: differs from -j 1\n%s", c.name, format, j, firstDiff(want, out))
				}
			}
		}
	}
}

// TestRunReadersEdges: a worker that cannot open the capture again leaves
// the replay to the pipeline, with the same counts; a worker that reads a
// different capture (a file changed while it was read) makes the replay
// an error that says so, rather than a summary of two captures.
func TestRunReadersEdges(t *testing.T) {
	data := oddCapture(t)
	open := func() (*capture.Reader, error) { return capture.NewReader(bytes.NewReader(data)) }
	replay := func(reopen func() (*capture.Reader, error)) (walkResult, []int) {
		t.Helper()
		eng, err := newEngine(&trackerFlags{profile: profileFlag{name: "linux"}}, 2)
		if err != nil {
			t.Fatal(err)
		}
		eng.reopen = reopen
		counts := make([]int, 2)
		fns := []func(*pktInfo, *tcpct.Verdict){
			func(pi *pktInfo, _ *tcpct.Verdict) { counts[pi.shard]++ },
			func(pi *pktInfo, _ *tcpct.Verdict) { counts[pi.shard]++ },
		}
		r, err := open()
		if err != nil {
			t.Fatal(err)
		}
		defer func(wr int) { workersRead = wr }(workersRead)
		workersRead = readAlways
		return eng.runSharded(r, atSpec{}, fns), counts
	}

	want, wantCounts := replay(nil) // the pipeline
	if want.err != nil || want.tcp == 0 || wantCounts[0] == 0 || wantCounts[1] == 0 {
		t.Fatalf("pipeline: %+v, per shard %v", want, wantCounts)
	}
	got, counts := replay(open)
	if got.err != nil || got.records != want.records || got.tcp != want.tcp || !slices.Equal(counts, wantCounts) {
		t.Errorf("workers reading: %d records, %d TCP, per shard %v, err %v; pipeline %d, %d, %v",
			got.records, got.tcp, counts, got.err, want.records, want.tcp, wantCounts)
	}
	got, counts = replay(func() (*capture.Reader, error) { return nil, errors.New("gone") })
	if got.err != nil || got.records != want.records || !slices.Equal(counts, wantCounts) {
		t.Errorf("reopen failing: %d records, per shard %v, err %v; want the pipeline's %d, %v", got.records, counts, got.err, want.records, wantCounts)
	}
	// The second reader's copy lost its last record, whole.
	r, err := open()
	if err != nil {
		t.Fatal(err)
	}
	var last int64
	for p, err := r.Next(); err == nil; p, err = r.Next() {
		last = p.Offset
	}
	cut := data[:last]
	got, _ = replay(func() (*capture.Reader, error) { return capture.NewReader(bytes.NewReader(cut)) })
	if got.err == nil || !strings.Contains(got.err.Error(), "changed while it was read") {
		t.Errorf("a second reader reading less: err %v, want the capture named as changed", got.err)
	}
}
