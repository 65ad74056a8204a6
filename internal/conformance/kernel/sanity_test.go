package kernel_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/fdac824a/tcpct/internal/conformance/kernel"
	"github.com/fdac824a/tcpct/internal/conformance/tracegen"
)

// tcpInfo is what the properties need to know about a generated packet.
type tcpInfo struct {
	key   string // connection, both directions
	flags byte
}

func info(p []byte) tcpInfo {
	var s, d []byte
	var t []byte
	if p[0]>>4 == 4 {
		s, d, t = p[12:16], p[16:20], p[int(p[0]&15)*4:]
	} else {
		s, d, t = p[8:24], p[24:40], p[40:]
	}
	a := fmt.Sprintf("%x:%d", s, binary.BigEndian.Uint16(t))
	b := fmt.Sprintf("%x:%d", d, binary.BigEndian.Uint16(t[2:]))
	if b < a {
		a, b = b, a
	}
	return tcpInfo{key: a + "-" + b, flags: t[13]}
}

const (
	fFIN = 0x01
	fSYN = 0x02
	fRST = 0x04
	fACK = 0x10
)

// TestKernelSanity runs generated traces through the kernel and checks
// properties that must hold of the kernel's answers whatever the trace.
func TestKernelSanity(t *testing.T) {
	if err := kernel.Available(); err != nil {
		t.Skipf("kernel oracle unavailable: %v", err)
	}
	for _, v := range []struct {
		name    string
		seed    uint64
		sysctls map[string]string
		synT    int64
	}{
		{"default", 11, nil, 120},
		{"loose0-synsent30", 12, map[string]string{"tcp_loose": "0", "tcp_timeout_syn_sent": "30"}, 30},
	} {
		t.Run(v.name, func(t *testing.T) {
			pkts := tracegen.Generate(tracegen.Config{Seed: v.seed, Packets: 3000})
			in := make([]kernel.Packet, len(pkts))
			for i, p := range pkts {
				in[i] = kernel.Packet{TS: p.TS, Data: p.Data}
			}
			t0 := time.Now()
			recs, err := kernel.Run(context.Background(), in, kernel.Options{Sysctls: v.sysctls})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d packets in %v", len(recs), time.Since(t0))
			if len(recs) != len(pkts) {
				t.Fatalf("%d records for %d packets", len(recs), len(pkts))
			}
			type conn struct {
				entry, seenReply bool
			}
			conns := map[string]*conn{}
			fails := 0
			fail := func(i int, format string, args ...any) {
				t.Helper()
				if fails++; fails <= 10 {
					t.Errorf("packet %d (%s, %s): %s", i, pkts[i].Note, tracegen.Summary(pkts[i].Data), fmt.Sprintf(format, args...))
				}
			}
			counts := map[string]int{}
			for i, r := range recs {
				if r.I != i {
					t.Fatalf("record %d has index %d", i, r.I)
				}
				pi := info(pkts[i].Data)
				c := conns[pi.key]
				if c == nil {
					c = &conn{}
					conns[pi.key] = c
				}
				counts[r.CT+" "+r.Dir]++
				switch {
				case r.CT == "INVALID" && r.Dir != "":
					fail(i, "INVALID with a direction %q", r.Dir)
				case r.CT != "INVALID" && r.Dir != "original" && r.Dir != "reply":
					fail(i, "ct %s with direction %q", r.CT, r.Dir)
				case r.Dir == "reply" && r.CT == "NEW":
					fail(i, "a reply packet is NEW")
				}
				if !c.entry && pi.flags&(fSYN|fACK|fRST|fFIN) == fSYN {
					// The first SYN of a fresh connection.
					if r.CT != "NEW" || r.Dir != "original" || r.State != "SYN_SENT" || !r.HasEntry ||
						int64(r.Timeout) < v.synT-1 || int64(r.Timeout) > v.synT || r.SeenReply || r.Assured {
						fail(i, "fresh SYN gave %s", r.AppendJSON(nil))
					}
				}
				if c.entry && !c.seenReply && pi.flags&fRST != 0 && r.CT != "INVALID" && r.Reason == "" && r.HasEntry {
					fail(i, "an accepted RST before any reply left an entry: %s", r.AppendJSON(nil))
				}
				if r.Assured && !r.SeenReply {
					fail(i, "ASSURED without SEEN_REPLY")
				}
				if r.HasEntry && r.State == "NONE" {
					fail(i, "entry in state NONE")
				}
				c.entry, c.seenReply = r.HasEntry, r.SeenReply
			}
			t.Logf("ct/dir counts: %v", counts)
			if v.sysctls["tcp_loose"] == "0" {
				return
			}
			for _, k := range []string{"NEW original", "ESTABLISHED original", "ESTABLISHED reply", "INVALID "} {
				if counts[k] == 0 {
					t.Errorf("no %q packet at all: the trace is not varied enough", k)
				}
			}
		})
	}
	if ns := kernel.Namespaces(); len(ns) != 0 {
		t.Errorf("namespaces left behind: %v", ns)
	}
}
