//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fdac824a/tcpct/internal/conformance/kernel"
	"github.com/fdac824a/tcpct/internal/conformance/tracegen"
)

// TestFiltersMatchConntrackL asks the kernel. A generated trace (IPv4 and
// IPv6, about 1500 packets) goes through nf_conntrack in a namespace
// (the conformance runner) and through tcpct; then each filter is given
// to conntrack -L in the namespace and, in tcpct's words, to replay
// -format conntrack. For every entry both tables list (timeouts masked:
// the kernel's dump comes later), conntrack's filter and tcpct's must
// agree on whether it passes. Root, nft and conntrack-tools; skips
// without them.
func TestFiltersMatchConntrackL(t *testing.T) {
	if err := kernel.Available(); err != nil {
		t.Skipf("kernel oracle unavailable: %v", err)
	}
	if _, err := exec.LookPath("conntrack"); err != nil {
		t.Skip("needs conntrack (conntrack-tools)")
	}
	pkts := tracegen.Generate(tracegen.Config{Seed: 17, Packets: 1500, IPv6: 0.3})
	r, err := kernel.New(kernel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	in := make([]kernel.Packet, len(pkts))
	for i, p := range pkts {
		in[i] = kernel.Packet{TS: p.TS, Data: p.Data}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := r.Run(ctx, in, true); err != nil {
		t.Fatal(err)
	}
	var pcap bytes.Buffer
	if err := tracegen.WritePcap(&pcap, pkts); err != nil {
		t.Fatal(err)
	}
	data := pcap.Bytes()

	masked := regexp.MustCompile(`^(tcp +6 )\d+ `)
	lines := func(s string) map[string]bool {
		m := map[string]bool{}
		sc := bufio.NewScanner(strings.NewReader(s))
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "tcp ") {
				m[masked.ReplaceAllString(l, "${1}N ")] = true
			}
		}
		return m
	}
	kernelL := func(args ...string) map[string]bool {
		all := map[string]bool{}
		for _, fam := range []string{"ipv4", "ipv6"} {
			cmd := exec.Command("ip", append([]string{"netns", "exec", r.Namespace(), "conntrack", "-L", "-f", fam}, args...)...)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("conntrack -L -f %s %v: %v", fam, args, err)
			}
			for l := range lines(string(out)) {
				all[l] = true
			}
		}
		return all
	}
	tcpctL := func(args ...string) map[string]bool {
		code, out, errs := runCmd(t, data, append(append([]string{"replay", "-format", "conntrack"}, args...), "-")...)
		if code != 0 {
			t.Fatalf("replay %v: status %d, stderr %q", args, code, errs)
		}
		return lines(out)
	}
	kAll, tAll := kernelL(), tcpctL()
	var common []string
	for l := range kAll {
		if tAll[l] {
			common = append(common, l)
		}
	}
	sort.Strings(common)
	if len(common) < len(kAll)/2 {
		t.Fatalf("the tables share only %d of the kernel's %d entries", len(common), len(kAll))
	}
	for _, c := range []struct {
		tcpct, conntrack []string
	}{
		{[]string{"-src", "127.1.0.0/26"}, []string{"-s", "127.1.0.0/26"}},
		{[]string{"-dst", "fd7c:7c7c::2:0:0/112"}, []string{"-d", "fd7c:7c7c::2:0:0/112"}},
		{[]string{"-dport", "443"}, []string{"-p", "tcp", "--dport", "443"}},
		{[]string{"-sport", "20007"}, []string{"-p", "tcp", "--sport", "20007"}},
		{[]string{"-state", "ESTABLISHED"}, []string{"-p", "tcp", "--state", "ESTABLISHED"}},
		{[]string{"-state", "TIME_WAIT"}, []string{"-p", "tcp", "--state", "TIME_WAIT"}},
		{[]string{"-status", "ASSURED"}, []string{"-u", "ASSURED"}},
		{[]string{"-status", "SEEN_REPLY", "-dport", "80"}, []string{"-u", "SEEN_REPLY", "-p", "tcp", "--dport", "80"}},
	} {
		var k, o map[string]bool
		if strings.Contains(strings.Join(c.conntrack, " "), ":") {
			// An IPv6 address: conntrack -L -f ipv4 would refuse it.
			cmd := exec.Command("ip", append([]string{"netns", "exec", r.Namespace(), "conntrack", "-L", "-f", "ipv6"}, c.conntrack...)...)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("conntrack -L -f ipv6 %v: %v", c.conntrack, err)
			}
			k = lines(string(out))
		} else if strings.Contains(strings.Join(c.conntrack, " "), ".") {
			cmd := exec.Command("ip", append([]string{"netns", "exec", r.Namespace(), "conntrack", "-L", "-f", "ipv4"}, c.conntrack...)...)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("conntrack -L -f ipv4 %v: %v", c.conntrack, err)
			}
			k = lines(string(out))
		} else {
			k = kernelL(c.conntrack...)
		}
		o = tcpctL(c.tcpct...)
		passed := 0
		for _, l := range common {
			if k[l] != o[l] {
				t.Errorf("%v (conntrack %v): kernel %v, tcpct %v for\n%s", c.tcpct, c.conntrack, k[l], o[l], l)
			}
			if k[l] {
				passed++
			}
		}
		if passed == 0 || passed == len(common) {
			t.Errorf("%v: %d of %d common entries pass: the case does not discriminate", c.tcpct, passed, len(common))
		}
	}
}

// TestEventsTimestampFormatMatchesConntrack: conntrack -E -o timestamp
// in a namespace prefixes an event made there by hand exactly as tcpct's
// -timestamp does: [SECONDS.MICROSECONDS], six digits, then a tab.
func TestEventsTimestampFormatMatchesConntrack(t *testing.T) {
	if _, err := exec.LookPath("conntrack"); err != nil {
		t.Skip("needs conntrack (conntrack-tools)")
	}
	v := newVethNetns(t, "t", 201)
	ev := exec.Command("ip", "netns", "exec", v.ns, "conntrack", "-E", "-o", "timestamp")
	var out syncBuffer
	ev.Stdout = &out
	if err := ev.Start(); err != nil {
		t.Skipf("conntrack -E: %v", err)
	}
	t.Cleanup(func() { ev.Process.Kill(); ev.Wait() })
	probe := func() bool { return strings.Contains(out.String(), "sport=1 dport=2 ") }
	for i := 0; i < 50 && !probe(); i++ {
		shell("", "ip", "netns", "exec", v.ns, "conntrack", "-I", "-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2",
			"--sport", "1", "--dport", "2", "--state", "ESTABLISHED", "-t", "5")
		waitFor(100*time.Millisecond, probe)
		shell("", "ip", "netns", "exec", v.ns, "conntrack", "-D", "-p", "tcp", "-s", "192.0.2.1", "--sport", "1")
	}
	if !probe() {
		t.Fatalf("conntrack -E printed nothing for an entry made by hand:\n%s", out.String())
	}
	prefix := regexp.MustCompile(`^\[(\d+)\.(\d{6})\]\t( {4}\[NEW\]|\[DESTROY\]| \[UPDATE\]) tcp `)
	first, _, _ := strings.Cut(out.String(), "\n")
	m := prefix.FindStringSubmatch(first)
	if m == nil {
		t.Fatalf("conntrack -E -o timestamp printed %q: not the format tcpct copies", first)
	}
	if d := time.Since(time.Unix(atoi(t, m[1]), 0)); d < 0 || d > time.Minute {
		t.Errorf("conntrack's timestamp %s is not now (%v off)", m[1], d)
	}
	_, ours, _ := runCmd(t, nil, "replay", "-format", "events", "-timestamp", seedPcap)
	for _, l := range strings.Split(strings.TrimSuffix(ours, "\n"), "\n") {
		if !prefix.MatchString(l) {
			t.Errorf("tcpct's event %q does not have conntrack's prefix", l)
		}
	}
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	for _, c := range s {
		n = n*10 + int64(c-'0')
	}
	return n
}
