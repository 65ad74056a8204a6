package conformance

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/conformance/gen"
	"github.com/fdac824a/tcpct/conformance/kernel"
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
			cfg := gen.Config{Seed: seed + uint64(i), Packets: 3000, IPv6: 0.3}
			pkts := gen.Generate(cfg)
			var kernSys []string
			for _, s := range sysctls {
				kernSys = append(kernSys, "nf_conntrack_"+s)
			}
			r, err := kernel.New(kernel.Options{Sysctls: sysctlMap(kernSys)})
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
			if err := gen.WritePcap(&pcap, pkts); err != nil {
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
