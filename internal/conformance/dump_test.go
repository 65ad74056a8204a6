package conformance

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/internal/conformance/kernel"
	"github.com/fdac824a/tcpct/internal/conformance/tracegen"
)

// TestKernelTableDump compares the whole table, as text, with the
// kernel's: a generated trace goes through the kernel and through tcpct,
// and then the kernel's /proc/net/nf_conntrack and `conntrack -L` (IPv4
// and IPv6) must list the same lines as tcpct's -format proc and
// -format conntrack, apart from the seconds left, which the per-packet
// differential checks and which here depend on how long the dump came
// after the last packet. Four variants: defaults, acct=1 (every entry's
// packet and byte counters then compared too), tcp_loose=0, and acct=1
// with tcp_be_liberal=1. Root, nft and conntrack-tools; skips without
// them.
func TestKernelTableDump(t *testing.T) {
	needConntrack(t)
	seed := seedFrom("TCPCT_DUMP_SEED")
	for i, sysctls := range [][]string{nil, {"acct=1"}, {"tcp_loose=0"}, {"acct=1", "tcp_be_liberal=1"}} {
		name := "defaults"
		if len(sysctls) > 0 {
			name = strings.Join(sysctls, ",")
		}
		t.Run(name, func(t *testing.T) {
			cfg := tracegen.Config{Seed: seed + uint64(i), Packets: 3000, IPv6: 0.3}
			pkts := tracegen.Generate(cfg)
			r, err := kernel.New(kernel.Options{Sysctls: sysctlMap(sysctls)})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			start := time.Now()
			if _, err := r.Run(ctx, kernelPackets(pkts), true); err != nil {
				t.Fatal(err)
			}
			kproc := nsOutput(t, r.Namespace(), "cat", "/proc/net/nf_conntrack")
			// The kernel's clock ran on while the runner fell behind the
			// trace's pace (a netlink round trip per packet): its entries
			// may show that many seconds less, plus one for the rounding.
			lag := time.Since(start) - pkts[len(pkts)-1].TS.Sub(pkts[0].TS)
			slack := 1 + int(math.Ceil(lag.Seconds()))
			kct := nsOutput(t, r.Namespace(), "conntrack", "-L", "-f", "ipv4") +
				nsOutput(t, r.Namespace(), "conntrack", "-L", "-f", "ipv6")

			var pcap bytes.Buffer
			if err := tracegen.WritePcap(&pcap, pkts); err != nil {
				t.Fatal(err)
			}
			tr := newTracker(t, sysctls)
			var last int64
			trackCapture(t, tr, &pcap, func(p *capture.Packet, _ *tcpct.Verdict) { last = max(last, p.Time) })
			var oproc, oct []byte
			tr.Range(time.Unix(0, last), func(e *tcpct.Entry) bool {
				oproc = e.AppendProc(oproc, time.Unix(0, last))
				oct = e.AppendConntrack(oct, time.Unix(0, last))
				return true
			})
			if slices.Contains(sysctls, "acct=1") && (strings.Count(kproc, "packets=") < 2*strings.Count(kproc, "\n") || !strings.Contains(string(oproc), "packets=")) {
				t.Fatalf("acct=1, but not every line counts packets:\n%.400s", kproc)
			}
			seedNote := fmt.Sprintf("seed %d, TCPCT_DUMP_SEED reproduces", cfg.Seed-uint64(i))
			compareDump(t, "/proc/net/nf_conntrack", kproc, string(oproc), slack, seedNote)
			compareDump(t, "conntrack -L", kct, string(oct), slack, seedNote)
		})
	}
}

// needConntrack skips the test unless the kernel oracle can run here and
// conntrack-tools is installed.
func needConntrack(t *testing.T) {
	t.Helper()
	if err := kernel.Available(); err != nil {
		t.Skipf("kernel oracle unavailable: %v", err)
	}
	if _, err := exec.LookPath("conntrack"); err != nil {
		t.Skip("needs conntrack (conntrack-tools)")
	}
}

// nsOutput runs a command inside the namespace and returns its standard
// output.
func nsOutput(t *testing.T, ns string, args ...string) string {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return string(out)
}

// secondsLeft is the seconds-left field of a /proc or conntrack -L line:
// the number after the protocol number.
var secondsLeft = regexp.MustCompile(`^((?:ipv[46] +\d+ +)?tcp +6 )(\d+) `)

// compareDump compares two table dumps as sorted sets of lines, the
// seconds left masked, and then the seconds left of each entry: the
// kernel's dump came a little after the last packet, so its count may be
// up to slack lower than tcpct's at that packet, never higher.
func compareDump(t *testing.T, what, kern, ours string, slack int, note string) {
	t.Helper()
	norm := func(s string) ([]string, map[string]int) {
		var lines []string
		left := map[string]int{}
		for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
			m := secondsLeft.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			masked := m[1] + "T " + l[len(m[0]):]
			lines = append(lines, masked)
			left[masked], _ = strconv.Atoi(m[2])
		}
		slices.Sort(lines)
		return lines, left
	}
	k, kleft := norm(kern)
	o, oleft := norm(ours)
	if len(k) < 20 {
		t.Fatalf("%s: the kernel listed only %d entries (%s)", what, len(k), note)
	}
	onlyK, onlyO := diffSorted(k, o)
	if len(onlyK)+len(onlyO) > 0 {
		const most = 5
		t.Errorf("%s: %d entries, %d only in the kernel's dump, %d only in tcpct's (%s)\nkernel only:\n  %s\ntcpct only:\n  %s",
			what, len(k), len(onlyK), len(onlyO), note,
			strings.Join(onlyK[:min(most, len(onlyK))], "\n  "), strings.Join(onlyO[:min(most, len(onlyO))], "\n  "))
	}
	for _, l := range k {
		if ol, ok := oleft[l]; ok && (kleft[l] > ol || kleft[l] < ol-slack) {
			t.Errorf("%s: the kernel shows %d seconds left, tcpct %d (%s): %s", what, kleft[l], ol, note, l)
		}
	}
}

// diffSorted returns the lines only in a and only in b, both sorted.
func diffSorted(a, b []string) (onlyA, onlyB []string) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i] < b[j]):
			onlyA = append(onlyA, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			onlyB = append(onlyB, b[j])
			j++
		default:
			i++
			j++
		}
	}
	return onlyA, onlyB
}

// TestKernelAcctPerPacket compares the acct counters packet by packet: a
// generated trace goes through the kernel with nf_conntrack_acct=1, which
// reports the packet's entry after each packet (ctnetlink, CTA_COUNTERS),
// and through tcpct with acct=1; after every packet whose entry both
// hold, the packets and bytes of each direction must be equal. Unlike
// the dump comparison, this also covers connections that are gone by the
// end (closed by RSTs, re-created by SYNs, expired in pauses). Every
// recorded variant's settings, 3,000 packets each (750 with pauses). Root
// and nft; skips without.
func TestKernelAcctPerPacket(t *testing.T) {
	if err := kernel.Available(); err != nil {
		t.Skipf("kernel oracle unavailable: %v", err)
	}
	seed := seedFrom("TCPCT_ACCT_SEED")
	for i, v := range tracegen.Recordings {
		t.Run(v.Name, func(t *testing.T) {
			cfg := v.Config
			cfg.Seed, cfg.Packets = seed+uint64(i), 3000
			if cfg.Pause > 0 || cfg.Cells {
				cfg.Packets = 750
			}
			acctPerPacket(t, cfg, append([]string{"acct=1"}, v.Sysctls...), seed)
		})
	}
}

// acctPerPacket runs one trace through the kernel and tcpct with the
// knobs sysctls and compares the counters after every packet.
func acctPerPacket(t *testing.T, cfg tracegen.Config, sysctls []string, seed uint64) {
	pkts := tracegen.Generate(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	recs, err := kernel.Run(ctx, kernelPackets(pkts), kernel.Options{Sysctls: sysctlMap(sysctls)})
	if err != nil {
		t.Fatal(err)
	}
	byIndex := make(map[int]*kernel.Record, len(recs))
	for i := range recs {
		byIndex[recs[i].I] = &recs[i]
	}

	var pcap bytes.Buffer
	if err := tracegen.WritePcap(&pcap, pkts); err != nil {
		t.Fatal(err)
	}
	tr := newTracker(t, sysctls)
	compared, differ := 0, 0
	var counted uint64
	trackCapture(t, tr, &pcap, func(p *capture.Packet, v *tcpct.Verdict) {
		k := byIndex[p.Index]
		if v == nil || k == nil || !k.HasEntry || !v.Entry {
			return
		}
		e, _, ok := tr.Lookup(netip.AddrPortFrom(p.Src, p.SrcPort), netip.AddrPortFrom(p.Dst, p.DstPort), time.Unix(0, p.Time))
		if !ok {
			return
		}
		compared++
		counted += k.Packets[0] + k.Packets[1]
		if e.Counters.Packets != k.Packets || e.Counters.Bytes != k.Bytes {
			if differ++; differ <= 5 {
				t.Errorf("packet %d (%s): kernel packets %v bytes %v, tcpct packets %v bytes %v",
					p.Index, pkts[p.Index].Note, k.Packets, k.Bytes, e.Counters.Packets, e.Counters.Bytes)
			}
		}
	})
	t.Logf("seed %d: %d of %d packets compared, %d differ", seed, compared, len(pkts), differ)
	if compared < len(pkts)/4 || counted == 0 {
		t.Fatalf("only %d of %d packets compared (%d counted by the kernel): is acct on?", compared, len(pkts), counted)
	}
	if differ > 0 {
		t.Errorf("%d packets differ (TCPCT_ACCT_SEED=%d reproduces)", differ, seed)
	}
}
